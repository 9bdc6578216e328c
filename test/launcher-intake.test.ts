/**
 * Issue #19's launcher, against aws-sdk-client-mock answering in AWS's documented shapes (and a DynamoDB table in
 * memory with DynamoDB's conditional-write semantics, test/helpers/fake-dynamodb.ts):
 *  - intake records (the SQS event source mapping's batches): every record's jobs queued; records whose jobs were not
 *    queued (or, per-job, not started because RunTask was throttled) in `batchItemFailures`; on a record's last
 *    allowed receive, its jobs dead-lettered by the launcher with the reason and a `Job Failed`;
 *  - the gate: at most one decision a second across invocations, a lost window handed to the next one, the lease,
 *    the ledger of recent starts, a table that fails;
 *  - per-job pacing, and service mode's wake behind the same gate.
 */
import { expect } from "chai";

import { DynamoDBClient, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { DescribeClustersCommand, DescribeServicesCommand, ECSClient, RunTaskCommand, RunTaskCommandInput, UpdateServiceCommand } from "@aws-sdk/client-ecs";
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { GetQueueAttributesCommand, SendMessageBatchCommand, SendMessageBatchCommandInput, SQSClient } from "@aws-sdk/client-sqs";
import { AwsClientStub, mockClient } from "aws-sdk-client-mock";

import { createHandler, launchStep, parseLauncherSettings } from "../functions/launcher";
import { FakeTable } from "./helpers/fake-dynamodb";
import { LAUNCHER_TEST_ENV, s3Event, s3Record, sqsEvent, TEST_REGION } from "./helpers/launcher-events";

const REGION = TEST_REGION;
const ENV = {
    ...LAUNCHER_TEST_ENV,
    MAX_TASKS: "10",
    STATE_TABLE: "render-launcher-state",
    INTAKE_MAX_RECEIVE_COUNT: "10",
    INTAKE_CONCURRENCY: "1",
};
const TASK = (i: number) => ({ taskArn: `arn:aws:ecs:us-east-1:123456789012:task/render/${String(i).padStart(32, "0")}` });
const THROTTLED = Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException", $metadata: { httpStatusCode: 400 } });

interface World {
    sqs: AwsClientStub<SQSClient>;
    ecs: AwsClientStub<ECSClient>;
    eb: AwsClientStub<EventBridgeClient>;
    db: AwsClientStub<DynamoDBClient>;
    table: FakeTable;
    logs: any[];
    sleeps: number[];
    /** Tasks running (DescribeClusters' runningTasksCount), raised by each RunTask. */
    running: number;
    backlog: number;
    handler: (env?: Record<string, string>) => (event: unknown) => Promise<any>;
    sent: (queueUrl: string) => any[];
    events: () => any[];
}

let w: World;

beforeEach(function () {
    if (!this.currentTest?.fullTitle().startsWith("launcher (issue #19)")) return;
    const sqs = mockClient(SQSClient);
    const ecs = mockClient(ECSClient);
    const eb = mockClient(EventBridgeClient);
    const db = mockClient(DynamoDBClient);
    const table = new FakeTable();
    db.on(UpdateItemCommand).callsFake(table.updateItem);
    const world: World = {
        sqs, ecs, eb, db, table, logs: [], sleeps: [], running: 0, backlog: 0,
        handler: (env = {}) => {
            const s = parseLauncherSettings({ ...ENV, ...env });
            const clients = { sqs: new SQSClient(REGION), ecs: new ECSClient(REGION), events: new EventBridgeClient(REGION), dynamodb: new DynamoDBClient(REGION) };
            return createHandler(s, clients, {
                step: launchStep(s.mode),
                sleep: async (ms) => void world.sleeps.push(ms),
                random: () => 0,
                log: (l) => world.logs.push(l),
                metrics: () => undefined,
            });
        },
        sent: (queueUrl) => sqs.commandCalls(SendMessageBatchCommand).filter((c) => c.args[0].input.QueueUrl === queueUrl).flatMap((c) => c.args[0].input.Entries!.map((e) => JSON.parse(e.MessageBody!))),
        events: () => eb.commandCalls(PutEventsCommand).flatMap((c) => c.args[0].input.Entries!).map((e) => ({ ...e, Detail: JSON.parse(e.Detail!) })),
    };
    sqs.on(SendMessageBatchCommand).callsFake((i: SendMessageBatchCommandInput) => {
        if (i.QueueUrl === ENV.QUEUE_URL) world.backlog += i.Entries!.length;
        return { Successful: i.Entries!.map((e) => ({ Id: e.Id })), Failed: [] };
    });
    sqs.on(GetQueueAttributesCommand).callsFake(() => ({ Attributes: { ApproximateNumberOfMessages: String(world.backlog), ApproximateNumberOfMessagesNotVisible: "0" } }));
    ecs.on(DescribeClustersCommand).callsFake(() => ({ clusters: [{ clusterArn: ENV.CLUSTER, runningTasksCount: world.running, pendingTasksCount: 0 }], failures: [] }));
    ecs.on(RunTaskCommand).callsFake((i: RunTaskCommandInput) => {
        const tasks = Array.from({ length: i.count ?? 1 }, () => TASK(world.running++));
        return { tasks, failures: [] };
    });
    eb.on(PutEventsCommand).callsFake((i) => ({ FailedEntryCount: 0, Entries: i.Entries.map((_: unknown, n: number) => ({ EventId: `e${n}` })) }));
    w = world;
});
afterEach(function () {
    if (!this.currentTest?.fullTitle().startsWith("launcher (issue #19)")) return;
    for (const m of [w.sqs, w.ecs, w.eb, w.db]) m.restore();
});

/** One intake record per key, each body an S3 notification of that one object (as S3 sends them to the intake). */
function intake(keys: string[], receives = 1) {
    return sqsEvent(keys.map((k, i) => ({ body: s3Event([s3Record(k, { eTag: `e${i}` })]), id: `m-${k}`, receives })));
}
const nowSecond = () => Math.floor(Date.now() / 1000);

describe("launcher (issue #19): intake records", function () {
    it("queues the jobs of every record (one SendMessageBatch per 10), ignores the rest, retries none", async function () {
        const event = intake(Array.from({ length: 12 }, (_, i) => `inbox/s${i}.zip`));
        (event.Records as any[]).push({ ...(sqsEvent([{ body: { Service: "Amazon S3", Event: "s3:TestEvent", Bucket: "bucket" } }]).Records[0] as object), messageId: "test-event" });
        (event.Records as any[]).push({ ...(sqsEvent([{ body: "not json" }]).Records[0] as object), messageId: "garbage" });
        const summary = await w.handler()(event);
        expect(summary).to.deep.include({ accepted: 12, ignored: 2, queued: 12, batchItemFailures: [] });
        expect(w.sqs.commandCalls(SendMessageBatchCommand).map((c) => c.args[0].input.Entries!.length)).to.deep.equal([10, 2]);
        expect(w.logs.filter((l) => l.msg === "ignored").map((l) => [l.messageId, l.reason])).to.deep.equal([
            ["test-event", "s3:TestEvent"],
            ["garbage", "not an S3 notification (no Records array)"],
        ]);
    });

    it("a record whose job was not queued is retried by the mapping (batchItemFailures), neither dead-lettered nor failed", async function () {
        w.sqs.on(SendMessageBatchCommand).callsFake((i: SendMessageBatchCommandInput) => ({
            Successful: i.Entries!.filter((e) => !e.MessageBody!.includes("bad")).map((e) => ({ Id: e.Id })),
            Failed: i.Entries!.filter((e) => e.MessageBody!.includes("bad")).map((e) => ({ Id: e.Id, SenderFault: false, Code: "InternalError" })),
        }));
        const summary = await w.handler()(intake(["inbox/good.zip", "inbox/bad.zip"], 3));
        expect(summary).to.deep.include({ queued: 1, deadLettered: 0, batchItemFailures: [{ itemIdentifier: "m-inbox/bad.zip" }] });
        expect(w.sent(ENV.DLQ_URL)).to.deep.equal([]);
        expect(w.events()).to.deep.equal([]);
    });

    it("on its last allowed receive, the launcher dead-letters the record's job itself: reason, jobId, one Job Failed", async function () {
        w.sqs.on(SendMessageBatchCommand).callsFake((i: SendMessageBatchCommandInput) =>
            i.QueueUrl === ENV.QUEUE_URL ? { Successful: [], Failed: i.Entries!.map((e) => ({ Id: e.Id, SenderFault: false, Code: "ServiceUnavailable" })) } : { Successful: i.Entries!.map((e) => ({ Id: e.Id })), Failed: [] },
        );
        const summary = await w.handler()(intake(["inbox/a.zip"], 10));
        expect(summary).to.deep.include({ queued: 0, deadLettered: 1, batchItemFailures: [] });
        const [dead] = w.sent(ENV.DLQ_URL);
        expect(dead).to.deep.include({ bucket: "bucket", key: "inbox/a.zip", reason: "not queued: m0: ServiceUnavailable (gave up after 10 deliveries)" });
        expect(dead.jobId).to.match(/^[0-9a-f]{32}$/);
        const [event] = w.events();
        expect(event).to.deep.include({ DetailType: "Job Failed", Source: "lambda-ecs-worker.render" });
        expect(event.Detail).to.deep.include({ key: "inbox/a.zip", failureClass: "launcher", attempts: 10, jobId: dead.jobId });
    });

    it("when that dead-letter fails too, the record stays with the mapping (its redrive is the safety net): nothing lost, nothing thrown", async function () {
        w.sqs.on(SendMessageBatchCommand).rejects(Object.assign(new Error("denied"), { name: "AccessDenied", $metadata: { httpStatusCode: 403 } }));
        const summary = await w.handler()(intake(["inbox/a.zip"], 10));
        expect(summary).to.deep.include({ deadLettered: 0, batchItemFailures: [{ itemIdentifier: "m-inbox/a.zip" }] });
        expect(w.events()).to.deep.equal([]);
    });
});

describe("launcher (issue #19): the gate — at most one decision a second across invocations", function () {
    it("the first decision after idle happens at once (no wait) and releases its lease with its starts in the ledger", async function () {
        const summary = await w.handler()(intake(["inbox/a.zip", "inbox/b.zip"]));
        expect(summary).to.include({ queued: 2, tasksStarted: 2 });
        expect(w.sleeps).to.deep.equal([]);
        const item = w.table.item()!;
        expect(item.lease).to.deep.equal({ N: "0" });
        expect(Number(item.win.N)).to.be.within(nowSecond() - 1, nowSecond());
        expect(item.starts.S).to.match(/^\d+:2$/);
    });

    it("a window claimed after the jobs were queued: that decision sees them; no second decision, no ECS call", async function () {
        w.table.put("gate", { win: nowSecond() + 5, lease: 0, began: Date.now() + 5000 });
        const summary = await w.handler()(intake(["inbox/a.zip"]));
        expect(summary).to.include({ queued: 1, tasksStarted: 0 });
        expect(w.ecs.calls()).to.have.length(0);
        expect(w.logs.find((l) => l.msg === "decided by another")).to.be.an("object");
    });

    it("a window claimed before the jobs were queued, another invocation holding the next window's turn: it decides then, not this one", async function () {
        w.table.put("gate", { win: nowSecond(), lease: 0, began: Date.now() - 100, nxt: nowSecond() + 1 });
        const summary = await w.handler()(intake(["inbox/a.zip"]));
        expect(summary).to.include({ queued: 1, tasksStarted: 0 });
        expect(w.ecs.calls()).to.have.length(0);
        expect(w.logs.find((l) => l.msg === "decided next window")).to.be.an("object");
    });

    it("a window claimed before the jobs were queued, and nobody's turn next: this invocation takes the turn, waits for the next window and decides", async function () {
        this.timeout(5000);
        const claimed = nowSecond();
        w.table.put("gate", { win: claimed, lease: 0, began: Date.now() - 100 });
        const real = w.handler();
        // This test waits for the real next second (the gate reads the clock): the sleep is real here.
        const h = createHandler(parseLauncherSettings(ENV), { sqs: new SQSClient(REGION), ecs: new ECSClient(REGION), events: new EventBridgeClient(REGION), dynamodb: new DynamoDBClient(REGION) }, {
            step: launchStep("drain"),
            sleep: (ms) => (w.sleeps.push(ms), new Promise((r) => setTimeout(r, ms))),
            log: (l) => w.logs.push(l),
            metrics: () => undefined,
        });
        void real;
        const summary = await h(intake(["inbox/a.zip"]));
        expect(summary).to.include({ queued: 1, tasksStarted: 1 });
        expect(w.sleeps).to.have.length(1);
        expect(w.sleeps[0]).to.be.within(1, 1020);
        const item = w.table.item()!;
        expect(Number(item.nxt.N)).to.equal(claimed + 1);
        expect(Number(item.win.N)).to.be.at.least(claimed + 1);
    });

    it("a lease held by a decision in progress blocks the window even when it is older: never two decisions at once", async function () {
        w.table.put("gate", { win: nowSecond() - 3, lease: Date.now() + 20000, began: Date.now() + 1000 });
        await w.handler()(intake(["inbox/a.zip"]));
        expect(w.ecs.calls()).to.have.length(0);
        expect(w.table.calls[0].ConditionExpression).to.equal("attribute_not_exists(win) OR (win < :w AND lease < :n)");
    });

    it("concurrent invocations: at most one decision per window; each invocation's jobs seen by a decision that began after they were queued", async function () {
        this.timeout(5000);
        const logs: any[] = [];
        const h = createHandler(parseLauncherSettings(ENV), { sqs: new SQSClient(REGION), ecs: new ECSClient(REGION), events: new EventBridgeClient(REGION), dynamodb: new DynamoDBClient(REGION) }, {
            step: launchStep("drain"),
            sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
            log: (l) => logs.push(l),
            metrics: () => undefined,
        });
        const all = await Promise.all(["a", "b", "c", "d", "e", "f"].map((k) => h(intake([`inbox/${k}.zip`]))));
        expect(all.map((x) => x.queued)).to.deep.equal([1, 1, 1, 1, 1, 1]);
        const claims = w.table.calls.filter((c) => c.UpdateExpression.startsWith("SET win")).map((c) => Number(c.ExpressionAttributeValues[":w"].N));
        const decisions = logs.filter((l) => l.msg === "drain decision");
        // One decision in the first window, at most one more in the next (the invocation that took the turn).
        expect(decisions.length).to.be.within(1, 2);
        expect(w.ecs.commandCalls(DescribeClustersCommand)).to.have.length(decisions.length);
        expect(new Set(claims).size).to.be.within(1, 2);
        const ends = logs.filter((l) => ["decided by another", "decided next window"].includes(l.msg));
        expect(ends.length + decisions.length).to.equal(6);
        expect(w.running).to.equal(6);
    });

    it("a release that finds its decision taken over (lease expired) changes nothing and is logged", async function () {
        w.db.on(UpdateItemCommand).callsFake(async (input: any) => {
            if (input.ConditionExpression === "began = :n") w.table.put("gate", { began: 1 }); // someone else claimed meanwhile
            return w.table.updateItem(input);
        });
        const summary = await w.handler()(intake(["inbox/a.zip"]));
        expect(summary.tasksStarted).to.equal(1);
        expect(w.logs.find((l) => l.msg === "lease not released")?.reason).to.match(/ConditionalCheckFailed/);
    });

    it("the table failing: the jobs stay queued and no upload decides; the reconcile decides (uncoordinated), both logged", async function () {
        w.table.failWith = Object.assign(new Error("Service unavailable"), { name: "InternalServerError", $metadata: { httpStatusCode: 500 } });
        const upload = await w.handler()(intake(["inbox/a.zip"]));
        expect(upload).to.include({ queued: 1, tasksStarted: 0 });
        expect(w.logs.find((l) => l.msg === "not decided")).to.deep.include({ decides: false });
        const tick = await w.handler()({ "detail-type": "Scheduled Event", source: "aws.events", detail: {} });
        expect(tick.tasksStarted).to.equal(1);
        expect(w.logs.filter((l) => l.msg === "not decided").map((l) => l.decides)).to.deep.equal([false, true]);
    });
});

describe("launcher (issue #19): drain's ledger of recent starts", function () {
    it("starts of the last 120 s count toward maxTasks before ECS's counts show them; those of the last 30 s as still starting", async function () {
        const t = nowSecond();
        w.table.put("gate", { win: t - 10, lease: 0, began: Date.now() - 10000, starts: `${t - 200}:5 ${t - 60}:4 ${t - 10}:3` });
        w.backlog = 20;
        const summary = await w.handler({ MAX_TASKS: "10" })(intake(["inbox/a.zip"]));
        // ECS shows no task yet; the ledger counts 7 (the 200 s old start no longer), 3 of them still starting.
        expect(w.logs.find((l) => l.msg === "drain decision")).to.deep.include({ running: 7, pending: 3, backlog: 21, toStart: 3 });
        expect(summary.tasksStarted).to.equal(3);
        const starts = w.table.item()!.starts.S!.split(" ");
        expect(starts).to.have.length(3);
        expect(starts.slice(0, 2)).to.deep.equal([`${t - 60}:4`, `${t - 10}:3`]);
        expect(starts[2]).to.match(/^\d+:3$/);
    });

    it("a burst across invocations never starts more than maxTasks, though ECS's counts lag (they show nothing)", async function () {
        w.ecs.on(DescribeClustersCommand).resolves({ clusters: [{ runningTasksCount: 0, pendingTasksCount: 0 }] });
        const h = w.handler({ MAX_TASKS: "4" });
        for (let i = 0; i < 5; i++) {
            w.table.put("gate", { win: 0, lease: 0, began: 0 }); // a new window for each invocation (as if a second passed)
            await h(intake([`inbox/${i}-a.zip`, `inbox/${i}-b.zip`]));
        }
        expect(w.running).to.equal(4);
    });

    it("at most MAX_STARTS (20) tasks per decision, in RunTask calls of ≤ 10", async function () {
        w.backlog = 500;
        const summary = await w.handler({ MAX_TASKS: "1000" })(intake(["inbox/a.zip"]));
        expect(summary.tasksStarted).to.equal(20);
        expect(w.ecs.commandCalls(RunTaskCommand).map((c) => c.args[0].input.count)).to.deep.equal([10, 10]);
    });
});

describe("launcher (issue #19): per-job pacing and throttling", function () {
    it("paces RunTask to 10 a second shared by INTAKE_CONCURRENCY invocations (5: one each 500 ms)", async function () {
        const summary = await w.handler({ LAUNCH_MODE: "per-job", INTAKE_CONCURRENCY: "5" })(intake(["inbox/a.zip", "inbox/b.zip", "inbox/c.zip"]));
        expect(summary.tasksStarted).to.equal(3);
        // Starts at 0, 500 and 1000 ms (this test's sleep does not advance the clock, so the waits add up).
        expect(w.sleeps).to.have.length(2);
        expect(w.sleeps[0]).to.be.within(450, 500);
        expect(w.sleeps[1]).to.be.within(950, 1000);
    });

    it("a throttled start stays in the intake (batchItemFailures), not dead-lettered; the job's other records still start", async function () {
        w.ecs.on(RunTaskCommand).callsFake((i: RunTaskCommandInput) => {
            if (i.overrides?.containerOverrides?.[0].environment?.some((e) => e.value === "inbox/busy.zip")) throw THROTTLED;
            return { tasks: [TASK(w.running++)], failures: [] };
        });
        const summary = await w.handler({ LAUNCH_MODE: "per-job" })(intake(["inbox/ok.zip", "inbox/busy.zip"], 2));
        expect(summary).to.deep.include({ tasksStarted: 1, deadLettered: 0, batchItemFailures: [{ itemIdentifier: "m-inbox/busy.zip" }] });
        expect(w.sent(ENV.DLQ_URL)).to.deep.equal([]);
    });

    it("throttled on its last allowed receive: dead-lettered with the reason and a Job Failed (not-started)", async function () {
        w.ecs.on(RunTaskCommand).rejects(THROTTLED);
        const summary = await w.handler({ LAUNCH_MODE: "per-job" })(intake(["inbox/busy.zip"], 10));
        expect(summary).to.deep.include({ deadLettered: 1, batchItemFailures: [] });
        expect(w.sent(ENV.DLQ_URL)[0].reason).to.equal("task could not be started: ThrottlingException: Rate exceeded (gave up after 10 deliveries)");
        expect(w.events()[0].Detail).to.deep.include({ failureClass: "not-started", attempts: 10 });
    });

    it("a start that fails for good (not throttling) is dead-lettered at once, whatever the receive count", async function () {
        w.ecs.on(RunTaskCommand).resolves({ tasks: [], failures: [{ reason: "MISSING" }] });
        const summary = await w.handler({ LAUNCH_MODE: "per-job" })(intake(["inbox/a.zip"], 1));
        expect(summary).to.deep.include({ deadLettered: 1, batchItemFailures: [] });
        expect(w.sent(ENV.DLQ_URL)[0].reason).to.equal("task could not be started: MISSING");
    });
});

describe("launcher (issue #19): service mode's wake behind the gate", function () {
    it("concurrent invocations of one second wake the service once", async function () {
        w.ecs.on(DescribeServicesCommand).resolves({ services: [{ serviceName: "render-service", desiredCount: 0 }], failures: [] });
        w.ecs.on(UpdateServiceCommand).resolves({});
        const h = w.handler({ LAUNCH_MODE: "service", SERVICE_NAME: "render-service" });
        const all = await Promise.all(["a", "b", "c"].map((k) => h(intake([`inbox/${k}.zip`]))));
        expect(all.map((x) => x.queued)).to.deep.equal([1, 1, 1]);
        expect(w.ecs.commandCalls(DescribeServicesCommand)).to.have.length(1);
        expect(w.ecs.commandCalls(UpdateServiceCommand).map((c) => c.args[0].input.desiredCount)).to.deep.equal([3]);
        expect(w.table.item()!.starts).to.equal(undefined);
    });
});
