/**
 * Issue #11's launcher parts against aws-sdk-client-mock, following AWS's documented behaviour where moto has none:
 * RunTask's clientToken (ECS idempotency: the same token and parameters replay the first answer, so a retry after an
 * answer needs the next token, a retry after a thrown call the same one), the Fargate Spot capacity failure
 * ("Capacity is unavailable at this time...") retried on FARGATE, the service wake (DescribeServices +
 * UpdateService), Job Failed events for jobs that end in the launcher or are routed to it, and the EMF line.
 */
import { expect } from "chai";

import { DescribeClustersCommand, DescribeServicesCommand, ECSClient, RunTaskCommand, UpdateServiceCommand } from "@aws-sdk/client-ecs";
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { GetQueueAttributesCommand, SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";

import { createHandler, launcherJobId, launcherMetrics, launchStep, parseLauncherSettings, routedFailures, spotFallback } from "../functions/launcher";
import { METRICS, ROUTED_EVENTS, SETTLED_EXIT_CODES, WORKER_EXIT_CODES } from "../functions/launcher-settings";
import { jobId } from "../worker-image/src/binding";
import { EXIT_CODES, SETTLED_EXIT_CODES as WORKER_SETTLED_EXIT_CODES } from "../worker-image/src/exit-codes";
import { LAUNCHER_TEST_ENV, s3Event, s3Record, TEST_REGION } from "./helpers/launcher-events";

const REGION = TEST_REGION;
const ENV = LAUNCHER_TEST_ENV;
const SPOT = JSON.stringify([{ capacityProvider: "FARGATE_SPOT", weight: 1 }]);
const CAPACITY = "Capacity is unavailable at this time. Please try again later or in a different availability zone";
const TASK = (i: number) => ({ taskArn: `arn:aws:ecs:us-east-1:123456789012:task/render/${i}` });

function world(env: Record<string, string>) {
    const sqs = mockClient(SQSClient);
    const ecs = mockClient(ECSClient);
    const eb = mockClient(EventBridgeClient);
    ecs.on(DescribeClustersCommand).resolves({ clusters: [{ runningTasksCount: 0, pendingTasksCount: 0 }] });
    sqs.on(SendMessageBatchCommand).callsFake((i) => ({ Successful: i.Entries.map((e: any) => ({ Id: e.Id })), Failed: [] }));
    eb.on(PutEventsCommand).callsFake((i) => ({ FailedEntryCount: 0, Entries: i.Entries.map((_: unknown, n: number) => ({ EventId: `e${n}` })) }));
    const logs: any[] = [];
    const metrics: any[] = [];
    const s = parseLauncherSettings({ ...ENV, ...env });
    const handler = createHandler(
        s,
        { sqs: new SQSClient(REGION), ecs: new ECSClient(REGION), events: new EventBridgeClient(REGION) },
        { sleep: async () => undefined, random: () => 0, log: (l) => logs.push(l), metrics: (r) => metrics.push(r), step: launchStep(s.mode) },
    );
    const restore = () => [sqs, ecs, eb].forEach((m) => m.restore());
    const events = () => eb.commandCalls(PutEventsCommand).flatMap((c) => c.args[0].input.Entries!);
    return { sqs, ecs, eb, handler, logs, metrics, restore, events };
}

describe("launcher (issue #11): clientToken, Spot fallback, service wake, job events, metrics", function () {
    it("per-job: one token per job, stable across invocations of the same upload, different for another upload", async function () {
        const w = world({ LAUNCH_MODE: "per-job" });
        w.ecs.on(RunTaskCommand).resolves({ tasks: [TASK(1)], failures: [] });
        await w.handler(s3Event([s3Record("inbox/a.zip"), s3Record("inbox/b.zip")]));
        await w.handler(s3Event([s3Record("inbox/a.zip")])); // S3 delivered the same event again
        await w.handler(s3Event([s3Record("inbox/a.zip", { eTag: "v2", eventTime: "2026-01-02T00:00:00.000Z" })]));
        const tokens = w.ecs.commandCalls(RunTaskCommand).map((c) => c.args[0].input.clientToken!);
        w.restore();
        for (const t of tokens) expect(t).to.match(/^j[0-9a-f]{40}-0$/).and.have.length.at.most(64);
        expect(tokens[0]).not.to.equal(tokens[1]);
        expect(tokens.filter((t) => t === tokens.find((_, i) => i === 0) || t === tokens[1])).to.have.length(3);
        expect(tokens[3]).not.to.be.oneOf(tokens.slice(0, 3));
    });

    it("a call that threw is retried with the same token (it may have started the task); an answered one with the next", async function () {
        const w = world({ LAUNCH_MODE: "per-job" });
        w.ecs
            .on(RunTaskCommand)
            .rejectsOnce(Object.assign(new Error("socket hang up"), { name: "TimeoutError", $metadata: {} }))
            .resolvesOnce({ tasks: [], failures: [{ reason: "AGENT" }] })
            .resolves({ tasks: [TASK(1)], failures: [] });
        const summary = await w.handler(s3Event([s3Record("inbox/a.zip")]));
        const tokens = w.ecs.commandCalls(RunTaskCommand).map((c) => c.args[0].input.clientToken!);
        w.restore();
        expect(summary).to.include({ tasksStarted: 1, notStarted: 0 });
        expect(tokens.map((t) => t.slice(-2))).to.deep.equal(["-0", "-0", "-1"]);
        expect(new Set(tokens.map((t) => t.slice(0, -2))).size).to.equal(1);
    });

    it("drain: a fresh token per RunTask batch", async function () {
        const w = world({ LAUNCH_MODE: "drain", MAX_TASKS: "4" });
        w.sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: "2" } });
        w.ecs.on(RunTaskCommand).resolves({ tasks: [TASK(1), TASK(2)], failures: [] });
        await w.handler(s3Event([s3Record("inbox/a.zip"), s3Record("inbox/b.zip")]));
        // A second invocation decides again (no coordination table here): its RunTask batch gets a token of its own.
        w.ecs.on(DescribeClustersCommand).resolves({ clusters: [{ runningTasksCount: 0, pendingTasksCount: 0 }] });
        w.sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: "4" } });
        const other = createHandler(parseLauncherSettings({ ...ENV, LAUNCH_MODE: "drain" }), { sqs: new SQSClient(REGION), ecs: new ECSClient(REGION) }, { log: () => undefined, metrics: () => undefined, step: launchStep("drain") });
        await other(s3Event([s3Record("inbox/c.zip"), s3Record("inbox/d.zip")]));
        const tokens = w.ecs.commandCalls(RunTaskCommand).map((c) => c.args[0].input.clientToken!);
        w.restore();
        expect(tokens).to.have.length(2);
        for (const t of tokens) expect(t).to.match(/^d[0-9a-f]{32}-0$/);
        expect(tokens[0]).not.to.equal(tokens[1]);
    });

    for (const mode of ["drain", "per-job"]) {
        it(`${mode}: a Spot capacity failure is retried at once on FARGATE with a new token, logged and counted`, async function () {
            const w = world({ LAUNCH_MODE: mode, CAPACITY_PROVIDER_STRATEGY: SPOT, MAX_TASKS: "1" });
            w.sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: "1" } });
            w.ecs.on(RunTaskCommand).resolvesOnce({ tasks: [], failures: [{ arn: "x", reason: CAPACITY }] }).resolves({ tasks: [TASK(1)], failures: [] });
            const summary = await w.handler(s3Event([s3Record("inbox/a.zip")]));
            const inputs = w.ecs.commandCalls(RunTaskCommand).map((c) => c.args[0].input);
            w.restore();
            expect(inputs.map((i) => i.capacityProviderStrategy)).to.deep.equal([
                [{ capacityProvider: "FARGATE_SPOT", weight: 1 }],
                [{ capacityProvider: "FARGATE", weight: 1 }],
            ]);
            expect(inputs[0].clientToken).not.to.equal(inputs[1].clientToken);
            expect(summary).to.include({ tasksStarted: 1, notStarted: 0, spotFallbacks: 1 });
            expect(w.logs.filter((l) => l.msg === "spot fallback")).to.have.length(1);
            expect(w.metrics).to.have.length(1);
            expect(w.metrics[0]).to.include({ SpotFallbacks: 1, TasksNotStarted: 0, Worker: "render" });
        });
    }

    it("SPOT_FALLBACK=false: no fallback; other failures and strategies without FARGATE_SPOT never fall back", async function () {
        const w = world({ LAUNCH_MODE: "per-job", CAPACITY_PROVIDER_STRATEGY: SPOT, SPOT_FALLBACK: "false" });
        w.ecs.on(RunTaskCommand).resolves({ tasks: [], failures: [{ reason: CAPACITY }] });
        const summary = await w.handler(s3Event([s3Record("inbox/a.zip")]));
        const strategies = w.ecs.commandCalls(RunTaskCommand).map((c) => c.args[0].input.capacityProviderStrategy![0].capacityProvider);
        w.restore();
        expect(new Set(strategies)).to.deep.equal(new Set(["FARGATE_SPOT"]));
        expect(summary).to.include({ notStarted: 1, deadLettered: 1 });
        expect(summary).not.to.have.property("spotFallbacks");
        const s = { spotFallback: true };
        expect(spotFallback(s, [{ capacityProvider: "FARGATE" }], [{ reason: CAPACITY }])).to.equal(undefined);
        expect(spotFallback(s, [{ capacityProvider: "FARGATE_SPOT" }], [{ reason: "MISSING" }])).to.equal(undefined);
        expect(spotFallback(s, [{ capacityProvider: "FARGATE_SPOT" }], [])).to.equal(undefined);
        expect(spotFallback(s, [{ capacityProvider: "FARGATE_SPOT" }, { capacityProvider: "FARGATE", base: 1 }], [{ reason: CAPACITY }])).to.deep.equal([
            { capacityProvider: "FARGATE", weight: 1 },
        ]);
    });

    it("per-job: a job whose task cannot start is dead-lettered and gets one Job Failed (not-started) with the worker's jobId", async function () {
        const w = world({ LAUNCH_MODE: "per-job" });
        w.ecs.on(RunTaskCommand).resolves({ tasks: [], failures: [{ reason: "MISSING" }] });
        const summary = await w.handler(s3Event([s3Record("inbox/a.zip", { eTag: "abc" })]));
        const events = w.events();
        w.restore();
        expect(summary).to.include({ deadLettered: 1 });
        expect(events).to.have.length(1);
        expect(events[0]).to.include({ EventBusName: "default", Source: "lambda-ecs-worker.render", DetailType: "Job Failed" });
        expect(JSON.parse(events[0].Detail!)).to.deep.equal({
            worker: "render",
            bucket: "bucket",
            key: "inbox/a.zip",
            outputs: [],
            seconds: 0,
            attempts: 1,
            reason: "task could not be started: MISSING",
            failureClass: "not-started",
            jobId: jobId({ bucket: "bucket", key: "inbox/a.zip", etag: "abc" }),
        });
        expect(w.metrics[0]).to.include({ TasksNotStarted: 1, SpotFallbacks: 0 });
    });

    it("a failed PutEvents entry is retried; a publish that keeps failing is logged and never fails the invocation", async function () {
        const w = world({ LAUNCH_MODE: "per-job" });
        w.ecs.on(RunTaskCommand).resolves({ tasks: [], failures: [{ reason: "MISSING" }] });
        w.eb.on(PutEventsCommand).rejects(Object.assign(new Error("down"), { name: "InternalException" }));
        const summary = await w.handler(s3Event([s3Record("inbox/a.zip")]));
        const calls = w.eb.commandCalls(PutEventsCommand).length;
        w.restore();
        expect(summary).to.include({ deadLettered: 1 });
        expect(calls).to.equal(3);
        expect(w.logs.find((l) => l.msg === "job events")).to.include({ published: 0, of: 1 });
    });

    /** ECS's "ECS Task State Change" of a stopped per-job task, shaped as ECS sends it (Amazon ECS Developer Guide, "Amazon ECS task state change events"). */
    const ecsEvent = (stopCode: string, container: Record<string, unknown> = {}, stoppedReason = "CannotPullContainerError: pull access denied") => ({
        version: "0",
        id: "3317b2af-7005-947d-b652-f55e762e571a",
        "detail-type": "ECS Task State Change",
        source: "aws.ecs",
        account: "123456789012",
        time: "2026-01-01T00:00:00Z",
        region: "us-east-1",
        resources: ["arn:aws:ecs:us-east-1:123456789012:task/render/0123456789abcdef0123456789abcdef"],
        detail: {
            clusterArn: ENV.CLUSTER,
            taskArn: "arn:aws:ecs:us-east-1:123456789012:task/render/0123456789abcdef0123456789abcdef",
            taskDefinitionArn: ENV.TASK_DEFINITION,
            startedBy: "lew-render",
            launchType: "FARGATE",
            lastStatus: "STOPPED",
            desiredStatus: "STOPPED",
            stopCode,
            stoppedReason,
            containers: [{ containerArn: "arn:aws:ecs:us-east-1:123456789012:container/render/0123/c", lastStatus: "STOPPED", name: "worker", ...container }],
            overrides: {
                containerOverrides: [
                    { name: "worker", environment: [{ name: "JOB_BUCKET", value: "b" }, { name: "JOB_KEY", value: "in/x.zip" }, { name: "JOB_ETAG", value: "0123abcd" }] },
                ],
            },
        },
    });

    it("ROUTED: ECS TaskFailedToStart → Job Failed per job (not-started, ECS's reason; its rule dead-letters it); never queues or starts", async function () {
        const w = world({ LAUNCH_MODE: "per-job" });
        const summary = await w.handler(ecsEvent("TaskFailedToStart"));
        const events = w.events();
        const work = w.ecs.commandCalls(RunTaskCommand).length + w.sqs.commandCalls(SendMessageBatchCommand).length;
        w.restore();
        expect(work).to.equal(0);
        expect(summary).to.include({ deadLettered: 0, tasksStarted: 0, queued: 0 });
        expect(events.map((e) => JSON.parse(e.Detail!))).to.deep.equal([
            {
                worker: "render",
                bucket: "b",
                key: "in/x.zip",
                outputs: [],
                seconds: 0,
                attempts: 1,
                reason: "task failed to start: CannotPullContainerError: pull access denied",
                failureClass: "not-started",
                jobId: jobId({ bucket: "b", key: "in/x.zip", etag: "0123abcd" }),
            },
        ]);
    });

    it("ROUTED: a per-job task stopped without settling its job (OOM, exit 137) → one dead-letter entry naming ECS's reason, stop code, exit code and container reason, then one Job Failed (task-stopped)", async function () {
        const w = world({ LAUNCH_MODE: "per-job" });
        const oom = ecsEvent("EssentialContainerExited", { exitCode: 137, reason: "OutOfMemoryError: Container killed due to memory usage" }, "Essential container in task exited");
        const summary = await w.handler(oom);
        const events = w.events();
        const sends = w.sqs.commandCalls(SendMessageBatchCommand).map((c) => c.args[0].input);
        const starts = w.ecs.commandCalls(RunTaskCommand).length;
        w.restore();
        const id = jobId({ bucket: "b", key: "in/x.zip", etag: "0123abcd" });
        const reason =
            "the task running it stopped without finishing: Essential container in task exited (stop code EssentialContainerExited, exit code 137, OutOfMemoryError: Container killed due to memory usage)";
        expect(starts).to.equal(0);
        expect(summary).to.include({ deadLettered: 1, queued: 0, tasksStarted: 0 });
        expect(sends).to.have.length(1);
        expect(sends[0].QueueUrl).to.equal(ENV.DLQ_URL);
        expect(sends[0].Entries!.map((e) => JSON.parse(e.MessageBody!))).to.deep.equal([{ bucket: "b", key: "in/x.zip", etag: "0123abcd", jobId: id, reason }]);
        expect(events.map((e) => [e.DetailType, JSON.parse(e.Detail!)])).to.deep.equal([
            ["Job Failed", { worker: "render", bucket: "b", key: "in/x.zip", outputs: [], seconds: 0, attempts: 1, reason, failureClass: "task-stopped", jobId: id }],
        ]);
    });

    it("ROUTED: a stopped per-job task whose worker settled its job (exit 0, 3 or 4) causes nothing; any other exit code, or none, ends the job", async function () {
        const s = parseLauncherSettings({ ...ENV, LAUNCH_MODE: "per-job" });
        for (const exitCode of SETTLED_EXIT_CODES) {
            for (const stopCode of ["EssentialContainerExited", "UserInitiated", "SpotInterruption"]) {
                expect(routedFailures(ecsEvent(stopCode, { exitCode }), s), `${stopCode} ${exitCode}`).to.deep.equal([]);
            }
        }
        for (const container of [{ exitCode: 1 }, { exitCode: 2 }, { exitCode: 143 }, { exitCode: 137 }, {}]) {
            const failed = routedFailures(ecsEvent("UserInitiated", container, "Task stopped by user"), s)!;
            expect(failed.map((f) => [f.failureClass, f.job]), JSON.stringify(container)).to.deep.equal([["task-stopped", { bucket: "b", key: "in/x.zip", etag: "0123abcd" }]]);
            expect(failed[0].reason).to.equal(`the task running it stopped without finishing: Task stopped by user (stop code UserInitiated, exit code ${container.exitCode ?? "none"})`);
        }
        // Another container's exit code says nothing about the worker's.
        const sidecar = ecsEvent("EssentialContainerExited", {}, "Essential container in task exited");
        sidecar.detail.containers.push({ containerArn: "arn:aws:ecs:us-east-1:123456789012:container/render/0123/s", lastStatus: "STOPPED", name: "sidecar", exitCode: 0 } as any);
        expect(routedFailures(sidecar, s)!.map((f) => f.failureClass)).to.deep.equal(["task-stopped"]);
    });

    it("ROUTED: a dead-letter send that fails fails the invocation (Lambda retries it) and publishes no Job Failed", async function () {
        const w = world({ LAUNCH_MODE: "per-job" });
        w.sqs.on(SendMessageBatchCommand).rejects(Object.assign(new Error("denied"), { name: "AccessDenied", $metadata: { httpStatusCode: 403 } }));
        const err = await w.handler(ecsEvent("EssentialContainerExited", { exitCode: 137 })).then(() => undefined, (e) => e);
        const events = w.events();
        w.restore();
        expect(err?.message).to.equal("1 stopped task job(s) not dead-lettered: AccessDenied: denied");
        expect(events).to.deep.equal([]);
    });

    it("ROUTED: Lambda's on-failure event of a launcher invocation → Job Failed per job of its S3 event (launcher)", async function () {
        const s = parseLauncherSettings({ ...ENV, LAUNCH_MODE: "drain", INPUT_PREFIX: "inbox/" });
        const failure = {
            source: "lambda",
            "detail-type": "Lambda Function Invocation Result - Failure",
            detail: {
                requestContext: { condition: "RetriesExhausted", approximateInvokeCount: 3 },
                requestPayload: s3Event([s3Record("inbox/a.zip"), s3Record("outside/b.zip")]),
                responsePayload: { errorType: "Error", errorMessage: "1 of 1 message(s) not sent" },
            },
        };
        expect(routedFailures(failure, s)).to.deep.equal([
            { job: { bucket: "bucket", key: "inbox/a.zip", size: 1, etag: "etag", eventTime: "2026-01-01T00:00:00.000Z" }, reason: "launcher failed: 1 of 1 message(s) not sent", failureClass: "launcher", attempts: 3 },
        ]);
        expect(routedFailures(s3Event([s3Record("inbox/a.zip")]), s)).to.equal(undefined);
        expect(routedFailures({ "detail-type": "Scheduled Event", source: "aws.events" }, s)).to.equal(undefined);
    });

    it("the literals match the contracts: ROUTED_EVENTS, METRICS, and the worker's jobId", function () {
        expect([ROUTED_EVENTS.ecsStartFailure, ROUTED_EVENTS.ecsTaskStopped, ROUTED_EVENTS.launcherFailure].map((r) => [r.source, r.detailType, r.failureClass])).to.deep.equal([
            ["aws.ecs", "ECS Task State Change", "not-started"],
            ["aws.ecs", "ECS Task State Change", "task-stopped"],
            ["lambda", "Lambda Function Invocation Result - Failure", "launcher"],
        ]);
        const rec = launcherMetrics({ metricsNamespace: METRICS.namespace, workerName: "w" }, { [METRICS.tasksNotStarted]: 2, [METRICS.spotFallbacks]: 1 }, 1234.5);
        expect(rec).to.deep.equal({
            msg: "metrics",
            _aws: {
                Timestamp: 1234,
                CloudWatchMetrics: [{ Namespace: "LambdaEcsWorker", Dimensions: [[METRICS.workerDimension]], Metrics: [{ Name: "TasksNotStarted", Unit: "Count" }, { Name: "SpotFallbacks", Unit: "Count" }] }],
            },
            Worker: "w",
            TasksNotStarted: 2,
            SpotFallbacks: 1,
        });
        for (const etag of [undefined, "abc", '"abc"', 'W/"abc"']) {
            expect(launcherJobId({ bucket: "b", key: "k", etag })).to.equal(jobId({ bucket: "b", key: "k", etag }));
        }
    });

    it("the per-job worker's exit codes are the launcher's contract: 0 done, 3 failed and settled, 4 stopped and dead-lettered; 1, 2, 143 not settled", function () {
        expect(WORKER_EXIT_CODES).to.deep.equal({ done: EXIT_CODES.done, failed: EXIT_CODES.failed, stopped: EXIT_CODES.stopped });
        expect([...SETTLED_EXIT_CODES]).to.deep.equal([...WORKER_SETTLED_EXIT_CODES]);
        expect([...SETTLED_EXIT_CODES]).to.deep.equal([0, 3, 4]);
        for (const unsettled of [EXIT_CODES.crashed, EXIT_CODES.configuration, EXIT_CODES.forced, 137]) expect(SETTLED_EXIT_CODES).not.to.include(unsettled);
    });

    describe("service wake", function () {
        const service = (desiredCount: number) => ({ services: [{ serviceName: "render-service", desiredCount }], failures: [] });
        for (const [title, attrs, desired, wanted, perTask] of [
            ["an idle service (0) wakes to what the backlog needs", { ApproximateNumberOfMessages: "3", ApproximateNumberOfMessagesNotVisible: "0" }, 0, 3, "1"],
            ["never above MAX_TASKS", { ApproximateNumberOfMessages: "50", ApproximateNumberOfMessagesNotVisible: "2" }, 1, 4, "1"],
            ["BACKLOG_PER_TASK: ceil(backlog / per task)", { ApproximateNumberOfMessages: "5", ApproximateNumberOfMessagesNotVisible: "0" }, 0, 2, "3"],
            ["never lowers it", { ApproximateNumberOfMessages: "1", ApproximateNumberOfMessagesNotVisible: "0" }, 3, undefined, "1"],
        ] as const) {
            it(title, async function () {
                const w = world({ LAUNCH_MODE: "service", SERVICE_NAME: "render-service", BACKLOG_PER_TASK: perTask });
                w.sqs.on(GetQueueAttributesCommand).resolves({ Attributes: attrs });
                w.ecs.on(DescribeServicesCommand).resolves(service(desired));
                w.ecs.on(UpdateServiceCommand).resolves({});
                const summary = await w.handler(s3Event([s3Record("inbox/a.zip")]));
                const describe = w.ecs.commandCalls(DescribeServicesCommand).map((c) => c.args[0].input);
                const updates = w.ecs.commandCalls(UpdateServiceCommand).map((c) => c.args[0].input);
                const runs = w.ecs.commandCalls(RunTaskCommand).length;
                w.restore();
                expect(describe).to.deep.equal([{ cluster: ENV.CLUSTER, services: ["render-service"] }]);
                expect(updates).to.deep.equal(wanted === undefined ? [] : [{ cluster: ENV.CLUSTER, service: "render-service", desiredCount: wanted }]);
                expect(summary).to.include({ queued: 1, tasksStarted: 0, desiredCount: wanted ?? desired });
                expect(runs).to.equal(0);
            });
        }

        it("a failed wake is logged; the job stays queued and the invocation succeeds", async function () {
            const w = world({ LAUNCH_MODE: "service", SERVICE_NAME: "render-service" });
            w.sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: "1" } });
            w.ecs.on(DescribeServicesCommand).rejects(Object.assign(new Error("not authorized"), { name: "AccessDeniedException", $metadata: { httpStatusCode: 400 } }));
            const summary = await w.handler(s3Event([s3Record("inbox/a.zip")]));
            w.restore();
            expect(summary).to.include({ queued: 1 });
            expect(summary).not.to.have.property("desiredCount");
            expect(w.logs.find((l) => l.msg === "wake failed").reason).to.match(/AccessDeniedException/);
        });

        it("without SERVICE_NAME the service launcher only queues (no ECS call)", async function () {
            const w = world({ LAUNCH_MODE: "service" });
            await w.handler(s3Event([s3Record("inbox/a.zip")]));
            const ecsCalls = w.ecs.calls().length;
            w.restore();
            expect(ecsCalls).to.equal(0);
        });
    });
});
