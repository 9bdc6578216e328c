/**
 * `npm run local`: renders scene zips end to end on an embedded AWS emulator (moto_server), with the stack's own
 * resources (evaluated from index.ts under the Pulumi mocks), the launcher's own serialized code, and the worker as a
 * podman container or a local process per ECS task.
 */
import { DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { DescribeTasksCommand, ListTasksCommand, RunTaskCommand, StopTaskCommand } from "@aws-sdk/client-ecs";
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import { startMoto, Moto, MOTO_ENV } from "../../harness/moto";
import { decodeS3Key } from "../../functions/launcher";
import { outputKeys } from "../../worker-image/src/keys";
import { Clients, makeClients, provision, Provisioned } from "./emulator";
import { LocalLauncher } from "./launcher";
import { JobResult, Progress, summaryTable } from "./progress";
import { DEFAULT_IMAGE, imageStaleness, podmanAvailable, podmanRunner, processRunner, Runner, RunningTask } from "./runners";
import { DeclaredStack, evaluateStack } from "./stack";

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
}

export interface LocalSummary {
    ok: boolean;
    /** Marker of this run: in the argv of every worker process (`--lew-local-run=<id>`) and launcher process, and the
     * `lew-local=<id>` label of every container. */
    runId: string;
    /** The emulator's endpoint (stopped by now). */
    endpoint: string;
    runner: string;
    outDir: string;
    logsDir: string;
    seconds: number;
    /** Where the time went: stack + emulator + launcher + uploads; until every job settled; stopping everything. */
    phases: { setupSeconds: number; jobsSeconds: number; shutdownSeconds: number };
    tasksStarted: number;
    launcherInvocations: number;
    /** Scheduled (reconcile) events handed to the launcher. */
    scheduledInvocations: number;
    jobs: JobResult[];
    notes: string[];
}

interface Job {
    name: string;
    input: string;
    key: string;
    png: string;
    error: string;
    uploadedAt: number;
    result?: JobResult;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * The job keys and the reason of one dead-letter message: a job `{bucket,key,reason}` from a worker or a launcher,
 * an S3 event the worker could not handle, or Lambda's on-failure record of a launcher invocation that failed for
 * good (the S3 event in `requestPayload`, the error in `responsePayload`). SQS's own redrive carries no reason.
 */
export function deadLetteredJobs(messageBody: string, reasonAttribute?: string): { keys: string[]; reason: string } {
    let body: any = {};
    try {
        body = JSON.parse(messageBody);
    } catch {}
    const keys: string[] = [];
    if (typeof body?.key === "string") keys.push(body.key);
    for (const rec of [...(body?.Records ?? []), ...(body?.requestPayload?.Records ?? [])]) {
        const raw = rec?.s3?.object?.key;
        if (typeof raw !== "string") continue;
        try {
            keys.push(decodeS3Key(raw));
        } catch {}
    }
    const launcherError = body?.responsePayload?.errorMessage;
    const reason = body?.reason ?? (launcherError && `launcher failed: ${launcherError}`) ?? reasonAttribute ?? "dead-lettered (maxReceiveCount reached)";
    return { keys, reason };
}

/** Everything to undo on exit, whatever the reason (normal end, error, SIGINT/SIGTERM). */
class Cleanup {
    /** Set on SIGINT/SIGTERM: the run loop stops and reports unfinished jobs as "interrupted". */
    interrupted?: string;
    moto?: Moto;
    launcher?: LocalLauncher;
    tasks = new Map<string, RunningTask>();
    /** Temp dirs of the run (launcher code, local workers' scratch), removed last. */
    dirs: string[] = [];
    /**
     * Text in the command line of every process of the run (the run's temp dir prefix): a worker killed outright
     * leaves its POV-Ray (its own process group) behind, and this finds it.
     */
    marker?: string;
    private done?: Promise<void>;

    run(): Promise<void> {
        this.done ??= (async () => {
            await Promise.all([...this.tasks.values()].map((t) => t.stop(5).catch(() => undefined)));
            await this.launcher?.stop().catch(() => undefined);
            await this.moto?.stop().catch(() => undefined);
            this.killStragglers();
            this.removeDirs();
        })();
        return this.done;
    }

    /** Synchronous last resort (process 'exit'): kill what is still alive. */
    killNow(): void {
        for (const t of this.tasks.values()) t.killNow();
        this.launcher?.killNow();
        this.moto?.killNow();
        this.killStragglers();
        this.removeDirs();
    }

    private killStragglers(): void {
        if (this.marker) spawnSync("pkill", ["-KILL", "-f", this.marker], { stdio: "ignore" });
    }

    private removeDirs(): void {
        for (const d of this.dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
    }
}

export const cleanup = new Cleanup();

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

    for (const f of o.inputs) if (!fs.existsSync(f) || !fs.statSync(f).isFile()) throw new Error(`no such file: ${f}`);

    // ---------------------------------------------------------------- runner
    let runner: Runner;
    if (o.runner === "podman" || (o.runner === "auto" && podmanAvailable(o.image))) runner = podmanRunner(runId, o.image);
    else runner = processRunner(runId, path.join(tmp, "scratch"));

    // ---------------------------------------------------------------- stack → emulator
    const overrides = { ...o.config, ...(o.maxTasks !== undefined ? { maxTasks: String(o.maxTasks) } : {}) };
    progress.log("evaluating the stack (index.ts) under the Pulumi mocks and starting moto_server...");
    const motoStarting = startMoto().then((m) => (cleanup.moto = m));
    const [declared, moto]: [DeclaredStack, Moto] = await Promise.all([
        evaluateStack(overrides).catch(async (e) => {
            await motoStarting.catch(() => undefined);
            throw e;
        }),
        motoStarting,
    ]);
    const region = MOTO_ENV.AWS_REGION;
    const c: Clients = makeClients(moto.endpoint, region);
    const p: Provisioned = await provision(c, moto.endpoint, region, declared);
    const notes = [...p.notes, `WORKER_WAIT_SECONDS=${o.workerWaitSeconds} for quick drain-and-exit`];
    for (const sch of declared.schedules) notes.push(`schedule ${sch.rule} (${sch.scheduleExpression}) invokes the launcher every ${o.reconcileSeconds} s`);
    if (p.launcherEnv.LAUNCH_MODE === "service") notes.push("launchMode service: the local runner stands in for the ECS service's queue-depth scaling");
    const stale = runner.kind === "podman" ? imageStaleness(o.image) : undefined;
    if (stale) {
        notes.push(stale);
        progress.log(`warning: ${stale}`);
    }
    if (runner.kind === "process") notes.push("WORKER_SCRATCH_DIR: a temp dir per task (local processes)");
    progress.log(`emulator ${moto.endpoint} · run ${runId} · bucket ${p.bucket} · max tasks ${declared.launcher.environment.MAX_TASKS} · workers: ${runner.describe}`);

    const launcher = new LocalLauncher(
        path.join(tmp, "launcher"),
        runId,
        declared.launcher.indexJs,
        {
            PATH: process.env.PATH ?? "/usr/bin:/bin",
            ...p.launcherEnv,
            ...moto.env,
            AWS_LAMBDA_FUNCTION_NAME: declared.launcher.name,
            LEW_LOCAL_RUN: runId,
        },
        declared.launcher.timeoutSeconds,
        path.join(logsDir, "launcher.log"),
    );
    cleanup.launcher = launcher;
    await launcher.start();

    // ---------------------------------------------------------------- upload the jobs
    const prefix = declared.config.inputPrefix ?? "";
    const keyOpts = { inputPrefix: prefix, outputPrefix: declared.config.outputPrefix ?? "" };
    const jobs: Job[] = [];
    const used = new Set<string>();
    for (const input of o.inputs) {
        const ext = path.extname(input);
        const stem = path.basename(input, ext);
        let name = stem;
        for (let i = 2; used.has(name.toLowerCase()); i++) name = `${stem}-${i}`;
        used.add(name.toLowerCase());
        const key = `${prefix}${name}${ext}`;
        const k = outputKeys(key, keyOpts);
        jobs.push({ name, input, key, png: k.png, error: k.error, uploadedAt: 0 });
    }
    const byKey = new Map(jobs.map((j) => [j.key, j]));
    // Only keys the bucket notification matches reach the launcher: fail the others now rather than time out.
    const suffixes = declared.notifications.map((n) => n.filterSuffix ?? "");
    for (const j of jobs) {
        if (!suffixes.some((sfx) => j.key.endsWith(sfx))) {
            const reason = `not a job: the bucket notification only fires for keys ending in ${suffixes.join(", ")}`;
            j.result = { job: j.name, input: j.input, status: "failed", reason, seconds: 0 };
            progress.log(`failed  ${j.name}: ${reason}`);
        }
    }
    await Promise.all(
        jobs.filter((j) => !j.result).map(async (j) => {
            await c.s3.send(new PutObjectCommand({ Bucket: p.bucket, Key: j.key, Body: fs.readFileSync(j.input) }));
            j.uploadedAt = Date.now();
        }),
    );
    progress.log(`uploaded ${jobs.filter((j) => !j.result).length} job(s) to s3://${p.bucket}/${prefix}`);
    const setupSeconds = (Date.now() - started) / 1000;

    // ---------------------------------------------------------------- the loop
    const taskEnvBase = (container: any): Record<string, string> =>
        Object.fromEntries((container?.environment ?? []).map((e: any) => [e.name, e.value]));
    const container = declared.taskDefinition.containerDefinitions[0];
    const containerEnv = taskEnvBase(JSON.parse(JSON.stringify(container)));
    // The registered (emulator) task definition carries the emulator's queue URLs: take the env from there.
    for (const [from, to] of p.replacements) for (const k of Object.keys(containerEnv)) containerEnv[k] = containerEnv[k].split(from).join(to);

    let tasksStarted = 0;
    let invocations = 0;
    const seenTasks = new Set<string>();
    const settled = () => jobs.every((j) => j.result);
    const deadline = started + o.timeoutSeconds * 1000;
    let inFlight = 0;
    let visible = 0;
    let stopping = false;
    let settledAt = 0;

    const shown = (file: string) => {
        const rel = path.relative(process.cwd(), file);
        return rel.startsWith("..") || rel === "" ? file : rel;
    };
    const finish = (j: Job, status: "done" | "failed", output?: string, reason?: string) => {
        if (j.result) return;
        j.result = { job: j.name, input: j.input, status, output, reason, seconds: (Date.now() - j.uploadedAt) / 1000 };
        progress.log(status === "done" ? `done    ${j.name} → ${output}` : `failed  ${j.name}: ${reason}`);
    };
    const download = async (key: string, file: string) => {
        const obj = await c.s3.send(new GetObjectCommand({ Bucket: p.bucket, Key: key }));
        fs.writeFileSync(file, Buffer.from(await obj.Body!.transformToByteArray()));
    };

    // S3 events → the launcher's code (one at a time, with Lambda's async retries, then the on-failure destination).
    const handleEvent = async (body: string) => {
        let event: any;
        try {
            event = JSON.parse(body);
        } catch {
            return;
        }
        const attempts = 1 + declared.launcher.maximumRetryAttempts;
        for (let attempt = 1; attempt <= attempts; attempt++) {
            if (stopping || cleanup.interrupted) return;
            invocations++;
            const r = await launcher.invoke(event);
            if (r.ok || stopping || cleanup.interrupted) return;
            progress.log(`launcher invocation failed (attempt ${attempt} of ${attempts}): ${r.error}`);
            if (attempt === attempts) {
                // Lambda's on-failure destination of the async invocation: the dead-letter queue, with Lambda's record.
                const record = {
                    version: "1.0",
                    timestamp: new Date().toISOString(),
                    requestContext: { requestId: crypto.randomUUID(), functionArn: declared.launcher.name, condition: "RetriesExhausted", approximateInvokeCount: attempts },
                    requestPayload: event,
                    responseContext: { statusCode: 200, executedVersion: "$LATEST", functionError: "Unhandled" },
                    responsePayload: { errorType: "Error", errorMessage: r.error },
                };
                await c.sqs
                    .send(new SendMessageCommand({ QueueUrl: p.dlqUrl, MessageBody: JSON.stringify(record) }))
                    .catch((e) => progress.log(`could not dead-letter the event: ${errText(e)}`));
            }
        }
    };
    const eventsLoop = (async () => {
        while (!settled() && Date.now() < deadline && !stopping && !cleanup.interrupted) {
            try {
                const r = await c.sqs.send(new ReceiveMessageCommand({ QueueUrl: p.eventsQueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
                for (const m of r.Messages ?? []) {
                    await handleEvent(m.Body ?? "");
                    await c.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: p.eventsQueueUrl, Entries: [{ Id: "0", ReceiptHandle: m.ReceiptHandle! }] }));
                }
            } catch (e) {
                if (stopping || cleanup.interrupted) break;
                progress.log(`events queue: ${errText(e)} (retrying)`);
                await sleep(1000);
            }
        }
    })();

    // Tasks the launcher started (RunTask in the emulator) → a worker each; StopTask when it exits.
    const startTask = (arn: string, overrides: any) => {
        const id = arn.slice(arn.lastIndexOf("/") + 1);
        const ov = (overrides?.containerOverrides ?? []).find((x: any) => x.name === container.name);
        const env: Record<string, string> = {
            ...containerEnv,
            ...Object.fromEntries((ov?.environment ?? []).map((e: any) => [e.name, e.value])),
            ...moto.env,
            WORKER_WAIT_SECONDS: String(o.workerWaitSeconds),
        };
        const t = runner.start({ id, env, container }, path.join(logsDir, `task-${id}.log`));
        cleanup.tasks.set(arn, t);
        tasksStarted++;
        progress.log(`task ${id} started (${runner.kind}${t.pid ? ` pid ${t.pid}` : ""})`);
        t.exited.then(async (code) => {
            cleanup.tasks.delete(arn);
            if (!stopping) progress.log(`task ${id} exited with ${code}`);
            await c.ecs
                .send(new StopTaskCommand({ cluster: p.clusterArn, task: arn, reason: `worker exited with ${code}` }))
                .catch(() => undefined);
        });
    };

    const pollTasks = async () => {
        const arns: string[] = [];
        let nextToken: string | undefined;
        do {
            const page = await c.ecs.send(new ListTasksCommand({ cluster: p.clusterArn, desiredStatus: "RUNNING", nextToken }));
            arns.push(...(page.taskArns ?? []));
            nextToken = page.nextToken;
        } while (nextToken);
        const fresh = arns.filter((a) => !seenTasks.has(a));
        for (let i = 0; i < fresh.length; i += 100) {
            const d = await c.ecs.send(new DescribeTasksCommand({ cluster: p.clusterArn, tasks: fresh.slice(i, i + 100) }));
            for (const t of d.tasks ?? []) {
                if (seenTasks.has(t.taskArn!)) continue;
                seenTasks.add(t.taskArn!);
                if (!stopping) startTask(t.taskArn!, t.overrides);
            }
        }
    };

    const pollDlq = async () => {
        const r = await c.sqs.send(
            new ReceiveMessageCommand({ QueueUrl: p.dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageAttributeNames: ["All"] }),
        );
        const msgs = r.Messages ?? [];
        for (const m of msgs) {
            const { keys, reason } = deadLetteredJobs(m.Body ?? "", m.MessageAttributes?.reason?.StringValue);
            for (const k of keys) {
                const j = byKey.get(k);
                if (j && !j.result) dlqReasons.set(j.key, reason);
            }
        }
        if (msgs.length > 0) {
            await c.sqs.send(
                new DeleteMessageBatchCommand({ QueueUrl: p.dlqUrl, Entries: msgs.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }),
            );
        }
    };
    const dlqReasons = new Map<string, string>();

    const pollOutputs = async () => {
        const keys = new Set<string>();
        let token: string | undefined;
        do {
            const page = await c.s3.send(new ListObjectsV2Command({ Bucket: p.bucket, ContinuationToken: token }));
            for (const obj of page.Contents ?? []) keys.add(obj.Key!);
            token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
        for (const j of jobs) {
            if (j.result) continue;
            if (keys.has(j.png)) {
                const file = path.join(outDir, `${j.name}.png`);
                await download(j.png, file);
                finish(j, "done", shown(file));
            } else if (keys.has(j.error)) {
                const file = path.join(outDir, `${j.name}.error.json`);
                await download(j.error, file);
                let reason = "failed";
                try {
                    reason = JSON.parse(fs.readFileSync(file, "utf8")).reason ?? reason;
                } catch {}
                finish(j, "failed", shown(file), reason);
            } else if (dlqReasons.has(j.key)) {
                finish(j, "failed", undefined, dlqReasons.get(j.key));
            }
        }
    };

    const pollQueue = async () => {
        const a = await c.sqs.send(
            new GetQueueAttributesCommand({ QueueUrl: p.queueUrl, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }),
        );
        visible = Number(a.Attributes?.ApproximateNumberOfMessages ?? 0);
        inFlight = Number(a.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
    };

    // The stack's EventBridge schedules invoke the launcher with a "Scheduled Event" (drain mode's reconcile run: jobs
    // left waiting, e.g. by an upload that raced the last task's exit, get a task). Emulated at a compressed interval.
    const schedules = declared.schedules;
    let nextTick = Date.now() + o.reconcileSeconds * 1000;
    let ticks = 0;
    const tickSchedules = () => {
        if (schedules.length === 0 || Date.now() < nextTick) return;
        nextTick = Date.now() + o.reconcileSeconds * 1000;
        for (const sch of schedules) {
            ticks++;
            const event = {
                version: "0",
                id: crypto.randomUUID(),
                "detail-type": "Scheduled Event",
                source: "aws.events",
                account: "123456789012",
                time: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
                region,
                resources: [`arn:aws:events:${region}:123456789012:rule/${sch.rule}`],
                detail: {},
            };
            // In the background, serialized with the S3 events like every invocation of the function.
            void handleEvent(JSON.stringify(event));
        }
    };

    // launchMode "service": the stack's ECS service scales on queue depth (CloudWatch alarms + Application Auto
    // Scaling, which the emulator doesn't run). Stand in for it: start tasks while jobs wait, up to maxTasks; its
    // workers don't exit when idle (WORKER_IDLE_EXIT=0) and are stopped at the end, like a scale-in to zero.
    const serviceMode = p.launcherEnv.LAUNCH_MODE === "service";
    const scaleService = async () => {
        if (!serviceMode || visible === 0) return;
        const want = Math.min(Number(p.launcherEnv.MAX_TASKS) || 1, visible + inFlight) - cleanup.tasks.size;
        if (want <= 0) return;
        await c.ecs.send(
            new RunTaskCommand({
                cluster: p.clusterArn,
                taskDefinition: p.taskDefinitionArn,
                count: Math.min(10, want),
                launchType: "FARGATE",
                startedBy: "ecs-svc/local",
                networkConfiguration: { awsvpcConfiguration: { subnets: p.subnets, securityGroups: p.securityGroups, assignPublicIp: "ENABLED" } },
            }),
        );
    };

    const counts = () => {
        const done = jobs.filter((j) => j.result?.status === "done").length;
        const failed = jobs.filter((j) => j.result?.status === "failed").length;
        const pending = jobs.length - done - failed;
        const running = Math.min(pending, inFlight);
        return {
            total: jobs.length,
            done,
            failed,
            running,
            queued: pending - running,
            tasksRunning: cleanup.tasks.size,
            tasksStarted,
            seconds: (Date.now() - started) / 1000,
        };
    };

    try {
        let errors = 0;
        while (!settled() && Date.now() < deadline && !cleanup.interrupted) {
            try {
                await pollTasks();
                await pollDlq();
                await pollOutputs();
                await pollQueue();
                tickSchedules();
                await scaleService();
                errors = 0;
            } catch (e) {
                if (cleanup.interrupted) break;
                if (++errors >= 5) throw e;
                progress.log(`emulator call failed: ${errText(e)} (retrying)`);
            }
            progress.update(counts());
            if (!settled()) await sleep(300);
        }
    } finally {
        stopping = true;
        settledAt = Date.now();
        for (const j of jobs) if (!j.result) finish(j, "failed", undefined, cleanup.interrupted ? `interrupted (${cleanup.interrupted})` : "timed out");
        progress.update(counts());
        progress.end();
        await eventsLoop.catch(() => undefined);
        await cleanup.run();
    }

    const results = jobs.map((j) => j.result!);
    return {
        ok: results.every((r) => r.status === "done"),
        runId,
        endpoint: moto.endpoint,
        runner: runner.kind,
        outDir,
        logsDir,
        seconds: (Date.now() - started) / 1000,
        phases: {
            setupSeconds,
            jobsSeconds: (settledAt - started) / 1000 - setupSeconds,
            shutdownSeconds: (Date.now() - settledAt) / 1000,
        },
        tasksStarted,
        launcherInvocations: invocations,
        scheduledInvocations: ticks,
        jobs: results,
        notes,
    };
}

export { summaryTable };

/**
 * `--plan`: evaluates the stack, applies it to a fresh emulator and returns what the emulator then holds, read back
 * through its APIs (queues' attributes, the bucket's notification, cluster, task definition) plus the launcher's
 * environment. Starts no launcher and no worker; stops the emulator before returning.
 */
export async function planLocal(o: LocalOptions): Promise<Record<string, unknown>> {
    const { GetBucketNotificationConfigurationCommand } = await import("@aws-sdk/client-s3");
    const { DescribeClustersCommand, DescribeTaskDefinitionCommand } = await import("@aws-sdk/client-ecs");
    const overrides = { ...o.config, ...(o.maxTasks !== undefined ? { maxTasks: String(o.maxTasks) } : {}) };
    const motoStarting = startMoto().then((m) => (cleanup.moto = m));
    try {
        const [declared, moto] = await Promise.all([evaluateStack(overrides), motoStarting]);
        const c = makeClients(moto.endpoint, MOTO_ENV.AWS_REGION);
        const p = await provision(c, moto.endpoint, MOTO_ENV.AWS_REGION, declared);
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
            eventsQueue: { url: p.eventsQueueUrl, attributes: await attrs(p.eventsQueueUrl) },
            notification,
            cluster: { arn: cluster?.clusterArn, name: cluster?.clusterName, settings: cluster?.settings },
            taskDefinition,
            subnets: p.subnets,
            securityGroups: p.securityGroups,
            schedules: declared.schedules,
            launcher: { environment: p.launcherEnv, maximumRetryAttempts: declared.launcher.maximumRetryAttempts, timeoutSeconds: declared.launcher.timeoutSeconds },
            notes: p.notes,
        };
    } finally {
        await motoStarting.catch(() => undefined);
        await cleanup.run();
    }
}
