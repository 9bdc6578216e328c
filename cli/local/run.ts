/**
 * `npm run local`: renders scene zips end to end on an embedded AWS emulator (moto_server), with the stack's own
 * resources (evaluated from index.ts under the Pulumi mocks), the launcher's own serialized code, and the worker as a
 * podman container or a local process per ECS task.
 *
 * The pieces: setup.ts (runner, stack → emulator, launcher instances, uploads), intake.ts (the intake's event source
 * mapping: S3's notifications → the launcher in batches), events.ts (schedules → the launcher, with Lambda's async
 * retries), aws-standin.ts (the launcher's endpoint: ECS task counts, atomic DynamoDB writes), tasks.ts (a worker per ECS task, its exit, service scaling), watch.ts (outputs,
 * DLQ, queue depth), jobs.ts (the jobs and their results), summary.ts, cleanup.ts. This file runs them in order.
 */
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import { cleanup } from "./cleanup";
import { errText, EventDelivery, Schedules } from "./events";
import { IntakeMapping } from "./intake";
import { jobCounts } from "./jobs";
import { Progress, summaryTable } from "./progress";
import { LocalSetup, setUp, stackOverrides, startEmulator } from "./setup";
import { StartFailures } from "./start-failures";
import { buildSummary, LocalSummary } from "./summary";
import { containerEnvironment, TaskFleet } from "./tasks";
import { jobEventsNote, JobEventFeed } from "./job-events";
import { EcsEvents } from "./ecs-events";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { motoClientConfig } from "./moto";
import { JobWatcher } from "./watch";

/** Service mode's CloudWatch path: jobs wait this long with no task before the scale-out alarm starts one. */
const SERVICE_ALARM_DELAY_MS = 60000;
/** Once every job settled, the run reads job events until none came for EVENTS_QUIET_MS, at most EVENTS_TAIL_MS. */
const EVENTS_QUIET_MS = 3000;
const EVENTS_TAIL_MS = 30000;

/** Per-job: once every job settled, how long the run waits for the tasks to exit and their stop events to be handled. */
const PER_JOB_TAIL_MS = 20000;

export { cleanup } from "./cleanup";
export type { LocalSummary } from "./summary";
export { summaryTable };

export interface LocalOptions {
    inputs: string[];
    outDir: string;
    maxTasks?: number;
    json: boolean;
    /** Only apply the stack to the emulator and print what it holds (see planLocal). */
    plan?: boolean;
    runner: "auto" | "process" | "podman";
    image: string;
    timeoutSeconds: number;
    workerWaitSeconds: number;
    /** Seconds between the emulated runs of the stack's launcher schedules (rate(1 minute) in AWS). */
    reconcileSeconds: number;
    /** Extra Pulumi config (`key=value`), as `pulumi config set` would give index.ts. */
    config: Record<string, string>;
    /** `--stack DIR`: the stack dir whose index.ts runs (default: the POV-Ray stack at the root). */
    stackDir?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runLocal(o: LocalOptions, progress: Progress): Promise<LocalSummary> {
    const runId = crypto.randomBytes(4).toString("hex");
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `lew-local-${runId}-`));
    cleanup.dirs.push(tmp);
    cleanup.marker = `lew-local-${runId}-`;
    try {
        return await run(o, progress, runId, tmp);
    } finally {
        await cleanup.run();
    }
}

async function run(o: LocalOptions, progress: Progress, runId: string, tmp: string): Promise<LocalSummary> {
    const started = Date.now();
    const outDir = path.resolve(o.outDir);
    const logsDir = path.join(outDir, ".logs", runId);
    fs.mkdirSync(logsDir, { recursive: true });

    const s = await setUp(o, progress, runId, tmp, logsDir, cleanup);
    const setUpAt = Date.now();
    const { fleet, delivery, mapping, schedules, settledAt, starts } = await settleJobs(s, o, progress, { started, outDir, logsDir, deadline: started + o.timeoutSeconds * 1000 });
    await cleanup.run();

    return buildSummary(
        {
            runId,
            endpoint: s.moto.endpoint,
            runner: s.runner.kind,
            outDir,
            logsDir,
            tasksStarted: fleet.started,
            launcherInvocations: delivery.invocations + mapping.invocations,
            scheduledInvocations: schedules.ticks,
            jobs: s.book.results(),
            startFailures: starts.failures,
            ...(starts.error ? { error: starts.error } : {}),
            notes: s.notes,
        },
        { started, setUp: setUpAt, settled: settledAt, ended: Date.now() },
    );
}

/**
 * Runs the jobs until each is settled, the deadline passes or the run is interrupted: S3 events go to the launcher
 * in the background while a poll loop starts a worker per new task, reads the DLQ and the outputs, the queue depth,
 * fires the schedules and (service mode) scales. Jobs left then fail as "timed out" or "interrupted".
 */
async function settleJobs(s: LocalSetup, o: LocalOptions, progress: Progress, at: { started: number; outDir: string; logsDir: string; deadline: number }) {
    const { declared, c, p, moto, book } = s;
    const log = (l: string) => progress.log(l);
    let stopping = false;
    const container = declared.taskDefinition.containerDefinitions[0];
    const fleet = new TaskFleet({
        ecs: c.ecs,
        clusterArn: p.clusterArn,
        runner: s.runner,
        container,
        // The registered (emulator) task definition carries the emulator's queue URLs: take the env from there.
        containerEnv: containerEnvironment(container, p.replacements),
        fixedEnv: { ...moto.env, WORKER_WAIT_SECONDS: String(o.workerWaitSeconds) },
        logsDir: at.logsDir,
        log,
        tasks: cleanup.tasks,
        stopping: () => stopping,
        // The CloudWatch path of service mode: SQS's metrics reach CloudWatch once a minute, the scale-out alarm
        // evaluates one 60 s period. The launcher's wake (the service's desiredCount) needs no such wait.
        serviceAlarmDelayMs: SERVICE_ALARM_DELAY_MS,
    });
    // Each job's event (Job Succeeded / Job Failed), read through a rule on the bus to a queue, as a user would.
    const containerEnv = containerEnvironment(container, p.replacements);
    const events = new EventBridgeClient({ ...motoClientConfig(moto.endpoint), region: s.region });
    const jobEvents = new JobEventFeed(
        { sqs: c.sqs, events },
        { busName: containerEnv.EVENT_BUS_NAME || "default", source: containerEnv.EVENT_SOURCE || "lambda-ecs-worker", name: `lew-local-job-events-${Date.now()}`, log },
    );
    await jobEvents.start().catch((e) => s.notes.push(`job events not shown: ${errText(e)}`));
    // A worker that exits before taking a job is reported at once; when every task so far did, the run stops (exit 1).
    const starts = new StartFailures(log);
    fleet.onExit((e) => starts.record(e, fleet.started, book.pending().length));
    // ECS puts a task state change event on the bus when a task stops: the stack's rules route it (per-job: to the
    // launcher, which ends a job its worker did not settle). Not for the tasks the run stops at its end.
    const ecsEvents = new EcsEvents(events, container.name, log);
    fleet.onExit((e) => {
        const task = fleet.describedTask(e.arn);
        if (!e.stopping && task) void ecsEvents.taskStopped(task, e.code);
    });
    const stopped = () => stopping || !!cleanup.interrupted;
    const delivery = new EventDelivery({
        launcher: s.launcher,
        sqs: c.sqs,
        ruleQueueUrls: p.lambdaTargetQueues,
        dlqUrl: p.dlqUrl,
        functionName: declared.launcher.name,
        maximumRetryAttempts: declared.launcher.maximumRetryAttempts,
        log,
        stopped,
    });
    const watcher = new JobWatcher({ s3: c.s3, sqs: c.sqs, bucket: p.bucket, queueUrl: p.queueUrl, dlqUrl: p.dlqUrl, outDir: at.outDir }, book);
    // The stack's EventBridge schedules invoke the launcher with a "Scheduled Event" (drain mode's reconcile run: jobs
    // left waiting, e.g. by an upload that raced the last task's exit, get a task). Emulated at a compressed interval.
    const schedules = new Schedules(declared.schedules.map((x) => x.rule), o.reconcileSeconds * 1000);
    const counts = () => ({ ...jobCounts(book.jobs, watcher.depth.inFlight), tasksRunning: fleet.running, tasksStarted: fleet.started, seconds: (Date.now() - at.started) / 1000 });

    let settledAt = 0;
    // The bucket's notifications land in the intake; its event source mapping (emulated) hands them to the launcher.
    // The stack's rules that target the launcher (per-job: ECS's task state changes) reach it through their stand-ins.
    const mapping = new IntakeMapping({ sqs: c.sqs, queueUrl: p.intakeQueueUrl, queueArn: p.intakeQueueArn, region: s.region, config: declared.mapping, instances: s.intake, log, stopped });
    let ended = false;
    const eventsLoop = Promise.all([mapping.run(() => !book.settled() && Date.now() < at.deadline), delivery.loop(() => !ended && Date.now() < at.deadline && !stopped())]);
    try {
        await pollUntil(() => book.settled() || Date.now() >= at.deadline || !!cleanup.interrupted || starts.error !== undefined, progress, async () => {
            await fleet.poll();
            await watcher.pollDlq();
            await watcher.pollOutputs();
            await jobEvents.poll();
            const depth = await watcher.pollQueue();
            for (const rule of schedules.due()) delivery.fireScheduled(rule, s.region);
            // launchMode "service": the stack's ECS service scales on queue depth (CloudWatch alarms + Application Auto
            // Scaling, which the emulator doesn't run). Stand in for it: start tasks while jobs wait, up to maxTasks; its
            // workers don't exit when idle (WORKER_IDLE_EXIT=0) and are stopped at the end, like a scale-in to zero.
            if (p.launcherEnv.LAUNCH_MODE === "service") {
                await fleet.scaleService({ ...p, maxTasks: p.launcherEnv.MAX_TASKS, serviceName: p.launcherEnv.SERVICE_NAME }, depth.visible, depth.inFlight);
            }
        }, () => progress.update(counts()));
        // Per-job: a task's stop is part of its job's life (its worker's exit code says whether it settled the job): let
        // the tasks exit and their events reach the launcher, which must then do nothing more for a settled job.
        if (p.launcherEnv.LAUNCH_MODE === "per-job" && book.settled() && !stopped() && starts.error === undefined) {
            const until = Math.min(at.deadline, Date.now() + PER_JOB_TAIL_MS);
            while (fleet.running > 0 && Date.now() < until && !stopped()) await sleep(100);
            await ecsEvents.idle();
            await delivery.idle(until);
            await watcher.pollDlq().catch(() => undefined);
        }
    } finally {
        ended = true;
        stopping = true;
        settledAt = Date.now();
        book.failPending(cleanup.interrupted ? `interrupted (${cleanup.interrupted})` : starts.error ?? "timed out");
        progress.update(counts());
        progress.end();
        await eventsLoop.catch(() => undefined);
        // A worker publishes a job's event just after settling it (before it exits): read until every job has had one,
        // or none came for EVENTS_QUIET_MS (at most EVENTS_TAIL_MS).
        for (let quietSince = Date.now(), until = Date.now() + EVENTS_TAIL_MS; jobEvents.seen.length < book.jobs.length; ) {
            const now = Date.now();
            if (now - quietSince >= EVENTS_QUIET_MS || now >= until) break;
            await sleep(500);
            if ((await jobEvents.poll().catch(() => [])).length > 0) quietSince = Date.now();
        }
        s.notes.push(jobEventsNote(jobEvents.countsByKey(), book.jobs.map((j) => j.key)));
        if (fleet.firstServiceTask && fleet.firstWaitingAt !== undefined) {
            const secs = ((fleet.firstServiceTask.at - fleet.firstWaitingAt) / 1000).toFixed(1);
            s.notes.push(`service: first task requested ${secs} s after jobs waited (${fleet.firstServiceTask.by === "wake" ? "the launcher's wake" : "the CloudWatch path"})`);
        }
        for (const late of watcher.lateDeadLetters) s.notes.push(`dead-lettered after it was done: ${late}`);
        if (watcher.dlqDuplicates > 0) {
            s.notes.push(`${watcher.dlqDuplicates} duplicate dead-letter message(s) counted once (same jobId: the DLQ is at-least-once)`);
        }
    }
    return { fleet, delivery, mapping, schedules, settledAt, starts };
}

/**
 * Runs `step`, then `after`, every 300 ms until `done()`; an emulator call that fails is logged and retried, the fifth
 * failure in a row is thrown. An interrupted run (SIGINT/SIGTERM) ends the loop at once.
 */
async function pollUntil(done: () => boolean, progress: Progress, step: () => Promise<void>, after: () => void): Promise<void> {
    let errors = 0;
    while (!done()) {
        try {
            await step();
            errors = 0;
        } catch (e) {
            if (cleanup.interrupted) break;
            if (++errors >= 5) throw e;
            progress.log(`emulator call failed: ${errText(e)} (retrying)`);
        }
        after();
        if (!done()) await sleep(300);
    }
}

/**
 * `--plan`: evaluates the stack, applies it to a fresh emulator and returns what the emulator then holds, read back
 * through its APIs (queues' attributes, the bucket's notification, cluster, task definition) plus the launcher's
 * environment. Starts no launcher and no worker; stops the emulator before returning.
 */
export async function planLocal(o: LocalOptions): Promise<Record<string, unknown>> {
    const { GetBucketNotificationConfigurationCommand } = await import("@aws-sdk/client-s3");
    const { DescribeClustersCommand, DescribeTaskDefinitionCommand } = await import("@aws-sdk/client-ecs");
    try {
        const { declared, moto, c, p } = await startEmulator(stackOverrides(o), cleanup, o.stackDir);
        const attrs = async (QueueUrl: string) =>
            (await c.sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["All"] }))).Attributes ?? {};
        const { $metadata: _n, ...notification } = await c.s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: p.bucket }));
        const cluster = (await c.ecs.send(new DescribeClustersCommand({ clusters: [p.clusterArn] }))).clusters?.[0];
        const taskDefinition = (await c.ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: p.taskDefinitionArn }))).taskDefinition;
        return {
            endpoint: moto.endpoint,
            config: declared.config,
            bucket: p.bucket,
            queue: { url: p.queueUrl, attributes: await attrs(p.queueUrl) },
            deadLetterQueue: { url: p.dlqUrl, attributes: await attrs(p.dlqUrl) },
            intakeQueue: { url: p.intakeQueueUrl, attributes: await attrs(p.intakeQueueUrl) },
            mapping: declared.mapping,
            notification,
            cluster: { arn: cluster?.clusterArn, name: cluster?.clusterName, settings: cluster?.settings },
            taskDefinition,
            subnets: p.subnets,
            securityGroups: p.securityGroups,
            schedules: declared.schedules,
            launcher: { environment: p.launcherEnv, maximumRetryAttempts: declared.launcher.maximumRetryAttempts, timeoutSeconds: declared.launcher.timeoutSeconds },
            notes: p.notes,
            resources: p.applied,
        };
    } finally {
        await cleanup.run();
    }
}
