/**
 * The worker runtime's parts alone (worker-image/src/settle.ts, job.ts, message.ts, receive-loop.ts, one-shot.ts), with
 * the SDK clients mocked by aws-sdk-client-mock and fake processors / jobs / settlers: no moto, no povray. The whole
 * worker against moto_server and the real povray is in worker.test.ts.
 */
import { expect } from "chai";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Readable } from "stream";

import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import {
    ChangeMessageVisibilityCommand,
    DeleteMessageCommand,
    GetQueueAttributesCommand,
    Message,
    ReceiveMessageCommand,
    SendMessageCommand,
    SQSClient,
} from "@aws-sdk/client-sqs";
import { AwsClientStub, mockClient } from "aws-sdk-client-mock";

import { jobId } from "../worker-image/src/binding";
import { FinishedJob } from "../worker-image/src/events";
import { AbortedError, JobTimeoutError, PermanentError } from "../worker-image/src/errors";
import { JobConfig, JobRunner, Outcome } from "../worker-image/src/job";
import { Job } from "../worker-image/src/keys";
import { MessageHandler, MessageHandlerDeps, RunJob } from "../worker-image/src/message";
import { runOneShot } from "../worker-image/src/one-shot";
import { Processor, ProcessorInput } from "../worker-image/src/processor";
import { ReceiveLoop, Stopper } from "../worker-image/src/receive-loop";
import {
    Delivery,
    HEARTBEAT_SETTLE_WAIT_MS,
    InFlight,
    QueueSettings,
    SettleConfig,
    Settler,
    configuredQueueSettings,
    resolveQueueSettings,
} from "../worker-image/src/settle";
import { makeZip } from "../harness/worker-env";
import { deferred } from "./helpers/deferred";
import { awsError, recorder } from "./helpers/log-recorder";

const QUEUE_URL = "https://sqs.us-east-1.example/123456789012/work";
const DLQ_URL = "https://sqs.us-east-1.example/123456789012/work-dlq";
const REGION = { region: "us-east-1", credentials: { accessKeyId: "test", secretAccessKey: "test" } };


/** An outcome without what the job measured (job events' stats; asserted on their own). */
function withoutStats(o: Outcome): Outcome {
    const { stats: _, ...rest } = o;
    // The bound job an ok outcome carries is checked by the job-event test (test/worker-operate-units.test.ts).
    if (rest.status === "ok") delete (rest as { job?: unknown }).job;
    return rest as Outcome;
}


/** Lets pending promise callbacks and mocked SDK calls run; fails if `cond` never holds (a bounded number of turns, no clock). */
async function until(cond: () => boolean, what: string): Promise<void> {
    for (let i = 0; i < 2000; i++) {
        if (cond()) return;
        await new Promise((r) => setImmediate(r));
    }
    throw new Error(`never happened: ${what}`);
}

function flight(): InFlight {
    return { receiptHandle: "rh-1", settled: false };
}

describe("worker runtime units", function () {
    let s3: AwsClientStub<S3Client>;
    let sqs: AwsClientStub<SQSClient>;
    let s3Client: S3Client;
    let sqsClient: SQSClient;
    /** S3 and SQS commands in the order they were sent, across both clients. */
    let order: string[];

    beforeEach(function () {
        s3Client = new S3Client(REGION);
        sqsClient = new SQSClient(REGION);
        s3 = mockClient(s3Client);
        sqs = mockClient(sqsClient);
        order = [];
    });
    afterEach(function () {
        s3.restore();
        sqs.restore();
    });

    /** Records each `command` sent as `name` in `order` and answers `out`. */
    function track<T extends object>(stub: AwsClientStub<S3Client> | AwsClientStub<SQSClient>, command: any, name: string, out: T = {} as T) {
        (stub as AwsClientStub<SQSClient>).on(command).callsFake(async () => {
            order.push(name);
            return out;
        });
    }

    describe("settle.ts: Settler", function () {
        const CFG: SettleConfig = { queueUrl: QUEUE_URL, dlqUrl: DLQ_URL, inputPrefix: "", outputPrefix: "" };
        let queue: QueueSettings;
        let rec: ReturnType<typeof recorder>;
        let ticks: Array<{ fn: () => void; ms: number; cancelled: boolean }>;

        function settler(cfg: SettleConfig = CFG): Settler {
            return new Settler(cfg, {
                s3: s3Client,
                sqs: sqsClient,
                log: rec.log,
                queue,
                processorName: "fake",
                every: (fn, ms) => {
                    const t = { fn, ms, cancelled: false };
                    ticks.push(t);
                    return () => void (t.cancelled = true);
                },
            });
        }
        const msg = (body: unknown): Message => ({ MessageId: "m-1", ReceiptHandle: "rh-1", Body: JSON.stringify(body) });
        const job: Job = { bucket: "b", key: "in/scene.zip" };

        beforeEach(function () {
            queue = { visibilityTimeout: 30, maxReceiveCount: 3 };
            rec = recorder();
            ticks = [];
            track(s3, PutObjectCommand, "PutObject");
            track(sqs, SendMessageCommand, "SendMessage");
            track(sqs, DeleteMessageCommand, "DeleteMessage");
            track(sqs, ChangeMessageVisibilityCommand, "ChangeMessageVisibility");
        });

        it("deletes a message by its receipt handle and marks it settled", async function () {
            const f = flight();
            await settler().deleteMessage(f, "m-1", { jobs: 1 });
            expect(sqs.commandCalls(DeleteMessageCommand).map((c) => c.args[0].input)).to.deep.equal([
                { QueueUrl: QUEUE_URL, ReceiptHandle: "rh-1" },
            ]);
            expect(f.settled).to.equal(true);
            expect(rec.lines).to.deep.equal([{ event: "deleted", messageId: "m-1", jobs: 1 }]);
        });

        /** A delivery: this receive count, the attempts and interruptions its attributes carry. */
        const d = (receiveCount: number, attempts = 0, interruptions = 0, lastReason?: string): Delivery => ({ receiveCount, attempts, interruptions, ...(lastReason ? { lastReason } : {}) });
        const sends = () => sqs.commandCalls(SendMessageCommand).map((c) => c.args[0].input);
        /** The copy of `job`'s message the worker sends back to the work queue: its delay and message attributes. */
        const copy = (DelaySeconds: number, attributes: Record<string, string | number>) => ({
            QueueUrl: QUEUE_URL,
            MessageBody: JSON.stringify(job),
            DelaySeconds,
            MessageAttributes: Object.fromEntries(
                Object.entries(attributes).map(([k, v]) => [k, typeof v === "number" ? { DataType: "Number", StringValue: String(v) } : { DataType: "String", StringValue: v }]),
            ),
        });

        it("re-sends a transient failure as a copy (attempts + 1, the reason, a 10 s x 2^(attempt-1) delay) and deletes the original: no release, no DLQ", async function () {
            const failures: Outcome[] = [{ status: "transient", job, reason: "503" }];
            await settler().settleFailures(msg(job), flight(), d(1), failures);
            await settler().settleFailures(msg(job), flight(), d(1, 1), failures);
            expect(order).to.deep.equal(["SendMessage", "DeleteMessage", "SendMessage", "DeleteMessage"]);
            expect(sends()).to.deep.equal([copy(10, { attempts: 1, interruptions: 0, lastReason: "503" }), copy(20, { attempts: 2, interruptions: 0, lastReason: "503" })]);
            expect(sqs.commandCalls(DeleteMessageCommand).map((c) => c.args[0].input)).to.deep.equal([
                { QueueUrl: QUEUE_URL, ReceiptHandle: "rh-1" },
                { QueueUrl: QUEUE_URL, ReceiptHandle: "rh-1" },
            ]);
            expect(rec.events()).to.deep.equal(["retry_later", "requeued", "retry_later", "requeued"]);
        });

        it("a transient failure wins over a permanent one in the same message: re-sent, not dead-lettered", async function () {
            const failures: Outcome[] = [
                { status: "permanent", job, reason: "no scene" },
                { status: "transient", job: { bucket: "b", key: "in/other.zip" }, reason: "503" },
            ];
            await settler().settleFailures(msg(job), flight(), d(1), failures);
            expect(order).to.deep.equal(["SendMessage", "DeleteMessage"]);
            expect(sends()[0].QueueUrl).to.equal(QUEUE_URL);
        });

        it("re-sends a timed-out job at once (DelaySeconds 0) while attempts remain, counting this receive's crashes too", async function () {
            // attempts 0 carried, received twice (one crash): attempt 2 of 3.
            await settler().settleFailures(msg(job), flight(), d(2), [{ status: "timeout", job, reason: "render took more than 1 s" }]);
            expect(sends()[0]).to.deep.include({ DelaySeconds: 0 });
            expect(sends()[0].MessageAttributes!.attempts).to.deep.equal({ DataType: "Number", StringValue: "2" });
            expect(rec.lines[0]).to.deep.equal({
                event: "retry_later",
                messageId: "m-1",
                attempt: 2,
                maxReceiveCount: 3,
                reason: "render took more than 1 s",
                inSeconds: 0,
            });
            expect(order).to.deep.equal(["SendMessage", "DeleteMessage"]);
        });

        it("dead-letters a permanent failure: error report, then the DLQ with the reason, then delete", async function () {
            const body = { bucket: "b", key: "in/scene.zip", size: 10 };
            const f = flight();
            await settler().settleFailures(msg(body), f, d(2), [{ status: "permanent", job, reason: "no scene" }]);
            expect(order).to.deep.equal(["PutObject", "SendMessage", "DeleteMessage"]);

            const put = s3.commandCalls(PutObjectCommand)[0].args[0].input;
            expect(put).to.include({ Bucket: "b", Key: "in/scene.error.json", ContentType: "application/json" });
            const report = JSON.parse(String(put.Body));
            expect(report).to.include({ reason: "no scene", sourceBucket: "b", sourceKey: "in/scene.zip", attempts: 2 });
            expect(report).to.include({ processor: "fake", messageId: "m-1" });

            const send = sqs.commandCalls(SendMessageCommand)[0].args[0].input;
            expect(send.QueueUrl).to.equal(DLQ_URL);
            const dlqBody = JSON.parse(send.MessageBody!);
            expect(dlqBody).to.include({ bucket: "b", key: "in/scene.zip", size: 10, reason: "in/scene.zip: no scene", attempts: 2 });
            expect(dlqBody.failedAt).to.be.a("string");
            expect(send.MessageAttributes).to.deep.include({
                reason: { DataType: "String", StringValue: "in/scene.zip: no scene" },
                attempts: { DataType: "Number", StringValue: "2" },
                sourceKey: { DataType: "String", StringValue: "in/scene.zip" },
                sourceMessageId: { DataType: "String", StringValue: "m-1" },
            });
            expect(sqs.commandCalls(DeleteMessageCommand)[0].args[0].input).to.deep.equal({ QueueUrl: QUEUE_URL, ReceiptHandle: "rh-1" });
            expect(f.settled).to.equal(true);
            expect(rec.events()).to.deep.equal(["error_report_written", "dead_lettered", "deleted"]);
        });

        it("a timeout or a transient failure on the last attempt (attempts carried + receives) is dead-lettered by the worker, its reason naming the attempt", async function () {
            expect(await settler().settleFailures(msg(job), flight(), d(1, 2), [{ status: "timeout", job, reason: "too slow" }])).to.equal(true);
            expect(await settler().settleFailures(msg(job), flight(), d(2, 1), [{ status: "transient", job, reason: "503" }])).to.equal(true);
            expect(order).to.deep.equal(["PutObject", "SendMessage", "DeleteMessage", "PutObject", "SendMessage", "DeleteMessage"]);
            expect(sends().map((i) => [i.QueueUrl, JSON.parse(i.MessageBody!).reason])).to.deep.equal([
                [DLQ_URL, "in/scene.zip: too slow (attempt 3 of 3)"],
                [DLQ_URL, "in/scene.zip: 503 (attempt 3 of 3)"],
            ]);
        });

        it("an interruption is re-sent at once with interruptions + 1, its own attributes kept and its crashes carried as attempts; the 6th in a row is dead-lettered saying so", async function () {
            const m: Message = {
                ...msg(job),
                MessageAttributes: {
                    team: { DataType: "String", StringValue: "render" },
                    attempts: { DataType: "Number", StringValue: "1" },
                    interruptions: { DataType: "Number", StringValue: "4" },
                },
            };
            // Received twice: once by a worker that crashed, now interrupted.
            expect(await settler().interrupted(m, flight(), d(2, 1, 4), [job])).to.equal(false);
            expect(sends()).to.deep.equal([copy(0, { team: "render", attempts: 2, interruptions: 5 })]);
            expect(order).to.deep.equal(["SendMessage", "DeleteMessage"]);
            expect(await settler().interrupted(m, flight(), d(1, 2, 5), [job])).to.equal(true);
            expect(order.slice(2)).to.deep.equal(["PutObject", "SendMessage", "DeleteMessage"]);
            const reason = "interrupted 6 times in a row: the task running it was stopped (SIGTERM: Spot reclaim, scale-in, deploy) before it finished each time";
            expect(JSON.parse(sends()[1].MessageBody!)).to.include({ reason: `in/scene.zip: ${reason}` });
            expect(sends()[1].QueueUrl).to.equal(DLQ_URL);
            expect(JSON.parse(String(s3.commandCalls(PutObjectCommand)[0].args[0].input.Body)).reason).to.equal(reason);
        });

        it("attempts used up by crashes (receives that ended without the worker settling them): dead-lettered with the crash reason, error report first", async function () {
            const s = settler();
            expect([s.attemptsUsedUp(d(1)), s.attemptsUsedUp(d(3)), s.attemptsUsedUp(d(4)), s.attemptsUsedUp(d(2, 2)), s.attemptsUsedUp(d(1, 3))]).to.deep.equal([false, false, true, true, false]);
            const reason = await s.deadLetterStopped(msg(job), flight(), d(4), [job]);
            expect(reason).to.equal("the task running it stopped 3 times without finishing: its worker was killed (SIGKILL, out of memory) or crashed before it could settle the job");
            expect(order).to.deep.equal(["PutObject", "SendMessage", "DeleteMessage"]);
            expect(JSON.parse(sends()[0].MessageBody!)).to.include({ reason: `in/scene.zip: ${reason}`, attempts: 3 });
            expect(await s.deadLetterStopped(msg(job), flight(), d(2, 2, 0, "503"), [job])).to.equal(
                "the task running it stopped 1 time without finishing: its worker was killed (SIGKILL, out of memory) or crashed before it could settle the job; earlier attempts failed: 503",
            );
        });

        it("a copy that cannot be sent: the original is released instead (its receive then counts); a copy sent whose original cannot be deleted is logged (two copies)", async function () {
            sqs.on(SendMessageCommand).rejects(awsError("AccessDenied", 403));
            await settler().requeue(msg(job), flight(), { attempts: 1, interruptions: 0 }, 10, "transient failure");
            expect(sqs.commandCalls(ChangeMessageVisibilityCommand).map((c) => c.args[0].input.VisibilityTimeout)).to.deep.equal([10]);
            expect(rec.events()).to.deep.equal(["requeue_failed", "released"]);

            sqs.on(SendMessageCommand).resolves({ MessageId: "copy-1" });
            sqs.on(DeleteMessageCommand).rejects(awsError("ReceiptHandleIsInvalid", 400));
            await settler().requeue(msg(job), flight(), { attempts: 1, interruptions: 0 }, 0, "timeout, retrying");
            expect(rec.lines.at(-1)).to.include({ event: "requeue_delete_failed", messageId: "m-1", copyId: "copy-1" });
        });

        it("dead-letters an unparseable message with its raw body and the reason alone (no job: no error report)", async function () {
            const m: Message = { MessageId: "m-2", ReceiptHandle: "rh-1", Body: "not json" };
            await settler().settleFailures(m, flight(), d(1), [{ status: "permanent", reason: "unrecognised message: \u0001" }]);
            expect(order).to.deep.equal(["SendMessage", "DeleteMessage"]);
            const send = sqs.commandCalls(SendMessageCommand)[0].args[0].input;
            // The control character SQS rejects becomes U+FFFD, in the body and in the attribute.
            expect(JSON.parse(send.MessageBody!)).to.include({ body: "not json", reason: "unrecognised message: \uFFFD", attempts: 1 });
            expect(send.MessageAttributes?.reason).to.deep.equal({ DataType: "String", StringValue: "unrecognised message: \uFFFD" });
            expect(send.MessageAttributes).not.to.have.property("sourceKey");
        });

        it("without DLQ_URL writes the error report and leaves the message to the queue's redrive policy", async function () {
            await settler({ ...CFG, dlqUrl: undefined }).settleFailures(msg(job), flight(), d(1), [{ status: "permanent", job, reason: "no scene" }]);
            expect(order).to.deep.equal(["PutObject"]);
            expect(rec.lines.at(-1)).to.include({ event: "failed", action: "left for the queue's redrive policy (no DLQ_URL)" });
        });

        it("never deletes a message whose DLQ send failed (it stays in the queue)", async function () {
            sqs.on(SendMessageCommand).rejects(awsError("AccessDenied", 403));
            let thrown: unknown;
            await settler()
                .settleFailures(msg(job), flight(), d(1), [{ status: "permanent", job, reason: "no scene" }])
                .catch((e) => (thrown = e));
            expect((thrown as Error)?.name).to.equal("AccessDenied");
            expect(sqs.commandCalls(DeleteMessageCommand)).to.have.length(0);
        });

        it("heartbeats every third of the visibility timeout, extending it by the visibility timeout, until stopped", async function () {
            const s = settler();
            const f = flight();
            const stop = s.startHeartbeat(f, "m-1");
            expect(ticks.map((t) => t.ms)).to.deep.equal([10000]);
            ticks[0].fn();
            await until(() => rec.events().includes("heartbeat"), "heartbeat");
            expect(sqs.commandCalls(ChangeMessageVisibilityCommand).map((c) => c.args[0].input)).to.deep.equal([
                { QueueUrl: QUEUE_URL, ReceiptHandle: "rh-1", VisibilityTimeout: 30 },
            ]);
            expect(rec.lines).to.deep.equal([{ event: "heartbeat", messageId: "m-1", visibilityTimeout: 30 }]);
            expect(ticks[0].cancelled).to.equal(false);
            stop();
            expect(ticks[0].cancelled).to.equal(true);
        });

        it("heartbeats at least every second for short visibility timeouts", function () {
            queue.visibilityTimeout = 1;
            settler().startHeartbeat(flight());
            expect(ticks.map((t) => t.ms)).to.deep.equal([1000]);
        });

        it("never asks SQS to hide a message past 12 h from its receipt: shortened to what is left, then no heartbeat (SQS refuses, it does not clamp)", async function () {
            // SQS as documented: ChangeMessageVisibility may hide a message at most 12 h from its receipt in total;
            // asking more is an error (InvalidParameterValue), never clamped to what is left.
            let clock = 1_000_000_000;
            const receipt = clock;
            sqs.on(ChangeMessageVisibilityCommand).callsFake(async (input) => {
                if (clock + input.VisibilityTimeout * 1000 > receipt + 43200 * 1000) {
                    throw awsError("InvalidParameterValue", 400);
                }
                order.push(`visibility ${input.VisibilityTimeout}`);
                return {};
            });
            queue.visibilityTimeout = 300;
            const s = new Settler(CFG, { s3: s3Client, sqs: sqsClient, log: rec.log, queue, processorName: "fake", now: () => clock });
            // The worker notes the receipt when it starts handling the message: a little after SQS's own.
            const f: InFlight = { ...flight(), receivedAt: receipt + 2000 };
            const at = (seconds: number) => (clock = receipt + seconds * 1000);
            // The mock answers as SQS: the full extension near the end is refused.
            at(43200 - 100);
            const asked = await sqsClient.send(new ChangeMessageVisibilityCommand({ QueueUrl: QUEUE_URL, ReceiptHandle: "rh-1", VisibilityTimeout: 300 })).catch((e) => e);
            expect(asked.name).to.equal("InvalidParameterValue");

            at(3600);
            await s.heartbeat(f, "m-1");
            at(43200 - 120);
            await s.heartbeat(f, "m-1");
            // 2 s after the worker's receipt, less the 30 s margin: 4 s left, asked for 4.
            at(43200 - 32);
            await s.heartbeat(f, "m-1");
            at(43200 - 28);
            await s.heartbeat(f, "m-1");
            await s.heartbeat(f, "m-1");
            expect(order).to.deep.equal(["visibility 300", "visibility 92", "visibility 4"]);
            expect(rec.events()).to.deep.equal(["heartbeat", "heartbeat", "heartbeat", "visibility_limit"]);
            expect(rec.lines[1]).to.deep.equal({ event: "heartbeat", messageId: "m-1", visibilityTimeout: 92 });
            expect(rec.lines[3]).to.deep.include({ event: "visibility_limit", messageId: "m-1", maxSeconds: 43200 });
        });

        it("sends no heartbeat for a settled message, but keeps an unsettled one hidden, also while the worker stops (its outputs may still be uploading: a message knows nothing of the stop)", async function () {
            const s = settler();
            const settled = flight();
            await s.release(settled, "m-1", 0, "test");
            await s.heartbeat(settled);
            await s.heartbeat(flight());
            expect(sqs.commandCalls(ChangeMessageVisibilityCommand).map((c) => c.args[0].input.VisibilityTimeout)).to.deep.equal([0, 30]);
        });

        it("a failed heartbeat is logged and not thrown", async function () {
            sqs.on(ChangeMessageVisibilityCommand).rejects(awsError("ReceiptHandleIsInvalid", 400));
            await settler().heartbeat(flight(), "m-1");
            expect(rec.lines).to.deep.equal([{ event: "heartbeat_failed", messageId: "m-1", reason: "ReceiptHandleIsInvalid (400)" }]);
        });

        it("release waits for a heartbeat still in flight, so that release(0) is the last visibility change", async function () {
            const heartbeatAnswer = deferred<object>();
            sqs.on(ChangeMessageVisibilityCommand).callsFake(async (input) => {
                order.push(`visibility ${input.VisibilityTimeout}`);
                return input.VisibilityTimeout === 0 ? {} : heartbeatAnswer.promise;
            });
            const s = settler();
            const f = flight();
            const beat = s.heartbeat(f, "m-1");
            await until(() => order.length === 1, "heartbeat sent");
            let released = false;
            const release = s.release(f, "m-1", 0, "worker stopping").then(() => (released = true));
            // A new heartbeat after release began is not sent at all.
            await s.heartbeat(f, "m-1");
            for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
            expect(order).to.deep.equal(["visibility 30"]);
            expect(released).to.equal(false);

            heartbeatAnswer.resolve({});
            await Promise.all([beat, release]);
            expect(order).to.deep.equal(["visibility 30", "visibility 0"]);
            expect(rec.events()).to.deep.equal(["heartbeat", "released"]);
            expect(HEARTBEAT_SETTLE_WAIT_MS).to.equal(10000);
        });

        it("a failed release is logged and not thrown (the message becomes visible when its timeout ends)", async function () {
            sqs.on(ChangeMessageVisibilityCommand).rejects(awsError("ReceiptHandleIsInvalid", 400));
            await settler().release(flight(), "m-1", 0, "worker stopping");
            expect(rec.lines).to.deep.equal([{ event: "release_failed", messageId: "m-1", reason: "ReceiptHandleIsInvalid (400)" }]);
        });

        describe("queue settings", function () {
            it("defaults to 300 s and 3 receives, configured values winning", function () {
                expect(configuredQueueSettings({})).to.deep.equal({ visibilityTimeout: 300, maxReceiveCount: 3 });
                const both = { visibilityTimeout: 60, maxReceiveCount: 5 };
                expect(configuredQueueSettings(both)).to.deep.equal(both);
            });

            it("fills the unset ones in from the queue's VisibilityTimeout and RedrivePolicy", async function () {
                sqs.on(GetQueueAttributesCommand).resolves({
                    Attributes: { VisibilityTimeout: "45", RedrivePolicy: JSON.stringify({ deadLetterTargetArn: "arn:dlq", maxReceiveCount: 7 }) },
                });
                const cfg = { queueUrl: QUEUE_URL, maxReceiveCount: 2 };
                const settings = configuredQueueSettings(cfg);
                await resolveQueueSettings(sqsClient, cfg, settings, rec.log);
                expect(settings).to.deep.equal({ visibilityTimeout: 45, maxReceiveCount: 2 });
                expect(sqs.commandCalls(GetQueueAttributesCommand)[0].args[0].input).to.deep.equal({
                    QueueUrl: QUEUE_URL,
                    AttributeNames: ["VisibilityTimeout", "RedrivePolicy"],
                });
            });

            it("asks nothing when both are configured, and keeps the defaults when the queue cannot be read", async function () {
                const both = { queueUrl: QUEUE_URL, visibilityTimeout: 60, maxReceiveCount: 5 };
                await resolveQueueSettings(sqsClient, both, configuredQueueSettings(both), rec.log);
                expect(sqs.commandCalls(GetQueueAttributesCommand)).to.have.length(0);

                sqs.on(GetQueueAttributesCommand).rejects(awsError("AccessDenied", 403));
                const settings = configuredQueueSettings({});
                await resolveQueueSettings(sqsClient, { queueUrl: QUEUE_URL }, settings, rec.log);
                expect(settings).to.deep.equal({ visibilityTimeout: 300, maxReceiveCount: 3 });
                expect(rec.lines).to.deep.equal([{ event: "queue_attributes_failed", reason: "AccessDenied (403)" }]);
            });
        });
    });

    describe("job.ts: JobRunner", function () {
        let scratch: string;
        let cfg: JobConfig;
        let rec: ReturnType<typeof recorder>;
        const job: Job = { bucket: "b", key: "in/scene.zip" };
        /** The job bound to the ETag serveZip answers (a job without an event ETag binds to the downloaded one). */
        const bound: Job = { ...job, etag: "etag-1" };

        /** A processor that checks its input, writes `scene.png` + `scene.log` in workDir, or throws `fail`. */
        function fakeProcessor(fail?: Error): Processor & { inputs: ProcessorInput[] } {
            const inputs: ProcessorInput[] = [];
            return {
                name: "fake",
                inputs,
                async process(input) {
                    inputs.push(input);
                    order.push("process");
                    if (fail) throw fail;
                    const scene = fs.readFileSync(path.join(input.inputDir, "scene.pov"), "utf8");
                    fs.writeFileSync(path.join(input.workDir, "out.png"), `png of ${scene}`);
                    fs.writeFileSync(path.join(input.workDir, "out.log"), "log");
                    return {
                        seconds: 1.5,
                        outputs: [
                            { suffix: ".png", path: path.join(input.workDir, "out.png"), contentType: "image/png" },
                            { suffix: ".log", path: path.join(input.workDir, "out.log"), contentType: "text/plain; charset=utf-8" },
                        ],
                    };
                },
            };
        }

        const runner = (processor: Processor, c: JobConfig = cfg) => new JobRunner(c, { s3: s3Client, processor, log: rec.log });
        const live = () => new AbortController().signal;

        async function serveZip(): Promise<void> {
            const zip = await makeZip([{ name: "scene.pov", data: "sphere" }]);
            s3.on(GetObjectCommand).callsFake(async () => {
                order.push("GetObject");
                return { Body: Readable.from([zip]), ContentLength: zip.length, ETag: '"etag-1"' };
            });
        }

        beforeEach(function () {
            scratch = fs.mkdtempSync(path.join(os.tmpdir(), "runtime-units-scratch-"));
            cfg = {
                scratchDir: scratch,
                inputPrefix: "",
                outputPrefix: "",
                maxInputBytes: 1024 * 1024,
                maxUnzippedBytes: 1024 * 1024,
                maxZipEntries: 10,
                jobTimeoutSeconds: 7,
                outputSuffixes: [".png", ".log"],
            };
            rec = recorder();
            track(s3, PutObjectCommand, "PutObject");
            track(s3, DeleteObjectCommand, "DeleteObject");
        });
        afterEach(function () {
            fs.rmSync(scratch, { recursive: true, force: true });
        });

        it("downloads, unpacks, processes and uploads each output next to the input, then removes its scratch dir", async function () {
            await serveZip();
            fs.writeFileSync(path.join(scratch, "stray.txt"), "left by a scene");
            const processor = fakeProcessor();
            let processedAt = -1;
            const outcome = await runner(processor).runJob(job, live(), 1, () => {
                processedAt = order.length;
            });
            expect(withoutStats(outcome)).to.deep.equal({ status: "ok" });
            // For the job's event and metrics: what it read, wrote and how long it took.
            expect(outcome.stats!.outputs.length).to.be.greaterThan(0);
            expect(outcome.stats!.bytesIn).to.be.greaterThan(0);
            expect(outcome.stats!.bytesOut).to.be.greaterThan(0);
            expect(outcome.stats!.seconds).to.be.at.least(0);

            const input = processor.inputs[0];
            expect(input).to.include({ baseName: "scene", sourceKey: "in/scene.zip", timeoutMs: 7000 });
            expect(path.dirname(path.dirname(input.inputDir))).to.equal(path.resolve(scratch));
            // `processed` fires after the processor and before the uploads.
            expect(order.slice(0, processedAt)).to.deep.equal(["GetObject", "process"]);
            expect(order.slice(processedAt).sort()).to.deep.equal(["DeleteObject", "PutObject", "PutObject"]);

            const puts = s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input);
            expect(puts.map((p) => [p.Key, String(p.Body), p.ContentType]).sort()).to.deep.equal([
                ["in/scene.log", "log", "text/plain; charset=utf-8"],
                ["in/scene.png", "png of sphere", "image/png"],
            ]);
            expect(puts[0].Metadata).to.deep.equal({
                "source-key": "in%2Fscene.zip",
                "source-etag": "%22etag-1%22",
                "job-id": jobId(bound),
                "processor-seconds": "1.500",
                processor: "fake",
            });
            // A success removes an earlier failure report.
            expect(s3.commandCalls(DeleteObjectCommand)[0].args[0].input).to.deep.equal({ Bucket: "b", Key: "in/scene.error.json" });
            // Its job dir and whatever else was in the scratch dir are gone.
            expect(fs.readdirSync(scratch)).to.deep.equal([]);
            expect(rec.events()).to.include.members(["downloaded", "unpacked", "uploaded", "job_done", "scratch_swept"]);
        });

        it("puts the outputs under OUTPUT_PREFIX, without INPUT_PREFIX", async function () {
            await serveZip();
            await runner(fakeProcessor(), { ...cfg, inputPrefix: "in/", outputPrefix: "out/" }).runJob(job, live(), 1);
            expect(s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input.Key).sort()).to.deep.equal(["out/scene.log", "out/scene.png"]);
            expect(s3.commandCalls(DeleteObjectCommand)[0].args[0].input.Key).to.equal("out/scene.error.json");
        });

        const processorFailures: Array<[string, Error, Outcome["status"]]> = [
            ["PermanentError", new PermanentError("no scene"), "permanent"],
            ["JobTimeoutError", new JobTimeoutError("render took more than 7 s"), "timeout"],
            ["any other error", new Error("povray crashed"), "transient"],
        ];
        for (const [what, err, status] of processorFailures) {
            it(`classifies a processor's ${what} as ${status}, uploads nothing and cleans up`, async function () {
                await serveZip();
                const outcome = await runner(fakeProcessor(err)).runJob(job, live(), 2);
                expect(withoutStats(outcome)).to.deep.equal({ status, job: bound, reason: err.message });
                expect(order).to.deep.equal(["GetObject", "process"]);
                expect(fs.readdirSync(scratch)).to.deep.equal([]);
                expect(rec.lines.find((l) => l.event === "failed")).to.deep.equal({
                    event: "failed",
                    bucket: "b",
                    key: "in/scene.zip",
                    jobId: jobId(bound),
                    status,
                    reason: err.message,
                    attempt: 2,
                });
            });
        }

        it("a processor's AbortedError, or an aborted signal, is aborted (the message goes back)", async function () {
            await serveZip();
            expect(await runner(fakeProcessor(new AbortedError())).runJob(job, live(), 1).then(withoutStats)).to.deep.equal({ status: "aborted" });
            const stopped = new AbortController();
            stopped.abort();
            expect(await runner(fakeProcessor()).runJob(job, stopped.signal, 1).then(withoutStats)).to.deep.equal({ status: "aborted" });
            expect(s3.commandCalls(PutObjectCommand)).to.have.length(0);
        });

        /** ListObjectsV2 answering as S3 does for Prefix = the key: the key (and what follows it) or nothing. */
        function listing(keys: string[] | Error) {
            s3.on(ListObjectsV2Command).callsFake(async (input) => {
                order.push(`ListObjectsV2 ${input.Prefix} ${input.MaxKeys}`);
                if (keys instanceof Error) throw keys;
                const found = keys.filter((k) => k.startsWith(input.Prefix)).sort().slice(0, input.MaxKeys);
                return { Name: input.Bucket, Prefix: input.Prefix, KeyCount: found.length, IsTruncated: false, ...(found.length ? { Contents: found.map((Key) => ({ Key })) } : {}) };
            });
        }
        /** S3's answer to a HeadObject it refuses: 403 without a body, so the SDK names it after the status. */
        const headForbidden = () => Object.assign(new Error("UnknownError"), { name: "Forbidden", $fault: "client", $metadata: { httpStatusCode: 403 } });

        const deletedInputs: Array<[string, () => void]> = [
            ["403 AccessDenied, as S3 answers a missing key to a caller without s3:ListBucket", () => s3.on(GetObjectCommand).rejects(awsError("AccessDenied", 403))],
            ["404 NoSuchKey", () => s3.on(GetObjectCommand).rejects(awsError("NoSuchKey", 404))],
        ];
        for (const [what, arrange] of deletedInputs) {
            it(`a download answered ${what}, of a key the listing does not show: deleted, no failure (stale), without calling the processor`, async function () {
                arrange();
                listing(["in/scene.zip.bak", "in/scenes/other.zip"]);
                const processor = fakeProcessor();
                const outcome = await runner(processor).runJob(job, live(), 1);
                expect(withoutStats(outcome)).to.deep.equal({ status: "stale", job, reason: "input deleted: s3://b/in/scene.zip no longer exists" });
                expect(processor.inputs).to.have.length(0);
                expect(order).to.deep.equal(["ListObjectsV2 in/scene.zip 1"]);
                expect(s3.commandCalls(ListObjectsV2Command)[0].args[0].input).to.deep.equal({ Bucket: "b", Prefix: "in/scene.zip", MaxKeys: 1 });
                expect(rec.lines.find((l) => l.event === "stale")).to.include({ key: "in/scene.zip", action: "nothing written" });
            });
        }

        it("a download refused (403 AccessDenied) of a key that exists: a permanent failure naming AccessDenied, bucketKmsKeyArn and the bucket policy", async function () {
            s3.on(GetObjectCommand).rejects(awsError("AccessDenied", 403));
            listing(["in/scene.zip"]);
            const outcome = await runner(fakeProcessor()).runJob(job, live(), 1);
            expect(withoutStats(outcome)).to.deep.equal({
                status: "permanent",
                job,
                reason:
                    "input not readable: s3://b/in/scene.zip exists but reading it was refused (AccessDenied): for an SSE-KMS bucket set " +
                    "bucketKmsKeyArn (the task role needs kms:Decrypt on its key), and check the bucket policy",
            });
        });

        it("a download refused (403) whose listing is refused too: a permanent failure naming s3:ListBucket", async function () {
            s3.on(GetObjectCommand).rejects(awsError("AccessDenied", 403));
            listing(awsError("AccessDenied", 403));
            const outcome = await runner(fakeProcessor()).runJob(job, live(), 1);
            expect(outcome.status).to.equal("permanent");
            expect((outcome as { reason: string }).reason).to.match(/^input not readable: s3:\/\/b\/in\/scene\.zip: AccessDenied, and listing it .* failed: AccessDenied \(403\) \(the task role needs s3:ListBucket/);
        });

        it("an input deleted while it renders (the version check's HeadObject: 403 without a body, not listed): nothing uploaded, stale", async function () {
            await serveZip();
            s3.on(HeadObjectCommand).rejects(headForbidden());
            listing([]);
            const outcome = await runner(fakeProcessor()).runJob({ ...job, etag: "etag-1" }, live(), 1);
            expect(withoutStats(outcome)).to.deep.equal({ status: "stale", job: bound, reason: "input deleted: s3://b/in/scene.zip (ETag etag-1) no longer exists" });
            expect(order).to.deep.equal(["GetObject", "process", "ListObjectsV2 in/scene.zip 1"]);
            expect(s3.commandCalls(PutObjectCommand)).to.have.length(0);
        });

        it("a version check refused (HeadObject 403 without a body) of an input that exists: permanent AccessDenied, nothing uploaded", async function () {
            await serveZip();
            s3.on(HeadObjectCommand).rejects(headForbidden());
            listing(["in/scene.zip"]);
            const outcome = await runner(fakeProcessor()).runJob({ ...job, etag: "etag-1" }, live(), 1);
            expect(outcome.status).to.equal("permanent");
            expect((outcome as { reason: string }).reason).to.match(/exists but reading it was refused \(AccessDenied\)/);
            expect(s3.commandCalls(PutObjectCommand)).to.have.length(0);
        });

        const downloadFailures: Array<[string, () => void, string]> = [
            [
                "an input over MAX_INPUT_BYTES",
                () => s3.on(GetObjectCommand).resolves({ Body: Readable.from([Buffer.alloc(10)]) as any, ContentLength: 2 * 1024 * 1024 }),
                "input is 2097152 bytes, more than MAX_INPUT_BYTES=1048576",
            ],
        ];
        for (const [what, arrange, reason] of downloadFailures) {
            it(`fails permanently on ${what}, without calling the processor`, async function () {
                arrange();
                const processor = fakeProcessor();
                const outcome = await runner(processor).runJob(job, live(), 1);
                expect(withoutStats(outcome)).to.deep.equal({ status: "permanent", job, reason });
                expect(processor.inputs).to.have.length(0);
            });
        }

        it("a non-retryable 4xx on an upload is permanent", async function () {
            await serveZip();
            s3.on(PutObjectCommand).rejects(awsError("InvalidArgument", 400));
            const outcome = await runner(fakeProcessor()).runJob(job, live(), 1);
            expect(withoutStats(outcome)).to.deep.equal({ status: "permanent", job: bound, reason: "InvalidArgument (400)" });
        });
    });

    describe("message.ts: MessageHandler", function () {
        type Call = [string, ...unknown[]];
        let calls: Call[];
        let rec: ReturnType<typeof recorder>;
        let heartbeatStopped: boolean;

        let ended: FinishedJob[];
        function handler(runJob: RunJob, settlerFails = false, o: { usedUp?: boolean; interruptedEnds?: boolean } = {}): MessageHandler {
            const settler: MessageHandlerDeps["settler"] = {
                startHeartbeat: (f) => {
                    calls.push(["startHeartbeat", f.receiptHandle]);
                    return () => void (heartbeatStopped = true);
                },
                deleteMessage: async (_f, id, fields) => void calls.push(["delete", id, fields]),
                settleFailures: async (_m, _f, delivery, failures) => {
                    if (settlerFails) throw new Error("SQS down");
                    calls.push(["settleFailures", delivery, failures]);
                },
                interrupted: async (m, _f, delivery, jobs) => {
                    calls.push(["interrupted", m.MessageId, delivery, jobs.map((j) => j.key)]);
                    return o.interruptedEnds === true;
                },
                attemptsUsedUp: () => o.usedUp === true,
                deadLetterStopped: async (m, _f, delivery, jobs) => {
                    calls.push(["deadLetterStopped", m.MessageId, delivery, jobs.map((j) => j.key)]);
                    return "the task running it stopped 3 times without finishing";
                },
            };
            return new MessageHandler({ runJob, settler, log: rec.log, finished: async (jobs) => void ended.push(...jobs) });
        }
        const delivery = (receiveCount: number, attempts = 0, interruptions = 0) => ({ receiveCount, attempts, interruptions });
        const ok: RunJob = async (job, _s, _r, processed) => {
            calls.push(["runJob", job.key, processed !== undefined]);
            processed?.();
            return { status: "ok" };
        };
        const s3Event = (...keys: string[]) =>
            JSON.stringify({ Records: keys.map((key) => ({ eventSource: "aws:s3", s3: { bucket: { name: "b" }, object: { key } } })) });
        const message = (body: string, receiveCount = "1", attributes: Record<string, string> = {}): Message => ({
            MessageId: "m-1",
            ReceiptHandle: "rh-1",
            Body: body,
            Attributes: { ApproximateReceiveCount: receiveCount },
            MessageAttributes: Object.fromEntries(Object.entries(attributes).map(([k, v]) => [k, { DataType: "Number", StringValue: v }])),
        });

        beforeEach(function () {
            calls = [];
            ended = [];
            rec = recorder();
            heartbeatStopped = false;
        });

        it("runs every job of an S3 event in order, passes `processed` to the last only, then deletes the message", async function () {
            let processed = 0;
            await handler(ok).handle(message(s3Event("in/a.zip", "in/my+b.zip")), new AbortController().signal, () => processed++);
            expect(calls).to.deep.equal([
                ["startHeartbeat", "rh-1"],
                ["runJob", "in/a.zip", false],
                ["runJob", "in/my b.zip", true],
                ["delete", "m-1", { jobs: 2 }],
            ]);
            expect(processed).to.equal(1);
            expect(heartbeatStopped).to.equal(true);
            expect(rec.lines).to.deep.equal([{ event: "received", messageId: "m-1", receiveCount: 1 }]);
        });

        it("deletes an s3:TestEvent without running anything", async function () {
            await handler(ok).handle(message(JSON.stringify({ Event: "s3:TestEvent" })), new AbortController().signal);
            expect(calls).to.deep.equal([["startHeartbeat", "rh-1"], ["delete", "m-1", { test: true }]]);
        });

        it("hands an unparseable message to settleFailures as permanent, with the parse error as the reason", async function () {
            await handler(ok).handle(message("{not json", "2"), new AbortController().signal);
            expect(calls.slice(1)).to.deep.equal([
                ["settleFailures", delivery(2), [{ status: "permanent", reason: 'unrecognised message: body is not JSON: "{not json"' }]],
            ]);
        });

        it("hands only the failed jobs' outcomes to settleFailures, with the delivery; runs each job as attempt attempts + receive count", async function () {
            const attempts: number[] = [];
            const failing: RunJob = async (job, _s, attempt) => {
                attempts.push(attempt);
                return job.key === "in/bad.zip" ? { status: "permanent", job, reason: "no scene" } : { status: "ok" };
            };
            await handler(failing).handle(message(s3Event("in/good.zip", "in/bad.zip"), "3", { attempts: "1", interruptions: "2" }), new AbortController().signal);
            expect(attempts).to.deep.equal([4, 4]);
            expect(rec.lines[0]).to.deep.equal({ event: "received", messageId: "m-1", receiveCount: 3, attempt: 4, interruptions: 2 });
            expect(calls.slice(1)).to.deep.equal([
                [
                    "settleFailures",
                    delivery(3, 1, 2),
                    [{ status: "permanent", job: { bucket: "b", key: "in/bad.zip", etag: undefined, size: undefined }, reason: "no scene" }],
                ],
            ]);
        });

        it("hands an aborted job's message to interrupted (re-sent, not released), running no further job", async function () {
            const stopping = new AbortController();
            const abortFirst: RunJob = async (job) => {
                calls.push(["runJob", job.key]);
                stopping.abort();
                return { status: "aborted" };
            };
            await handler(abortFirst).handle(message(s3Event("in/a.zip", "in/b.zip")), stopping.signal);
            expect(calls.slice(1)).to.deep.equal([["runJob", "in/a.zip"], ["interrupted", "m-1", delivery(1), ["in/a.zip", "in/b.zip"]]]);
            expect(ended).to.deep.equal([]);
        });

        it("a message received while stopping runs nothing and goes to interrupted; one dead-lettered there (6th in a row) ends its jobs as interrupted", async function () {
            const stopping = new AbortController();
            stopping.abort();
            await handler(ok).handle(message(s3Event("in/a.zip")), stopping.signal);
            expect(calls.slice(1)).to.deep.equal([["interrupted", "m-1", delivery(1), ["in/a.zip"]]]);
            await handler(ok, false, { interruptedEnds: true }).handle(message(s3Event("in/a.zip"), "1", { interruptions: "5" }), stopping.signal);
            expect(ended.map((f) => [f.job.key, f.failure?.failureClass, f.failure?.reason])).to.deep.equal([
                ["in/a.zip", "interrupted", "interrupted 6 times in a row: the task running it was stopped (SIGTERM: Spot reclaim, scale-in, deploy) before it finished each time"],
            ]);
        });

        it("attempts used up by crashes before this receive: dead-letters without running it, one Job Failed per job (task-stopped)", async function () {
            await handler(ok, false, { usedUp: true }).handle(message(s3Event("in/a.zip"), "4"), new AbortController().signal);
            expect(calls.slice(1)).to.deep.equal([["deadLetterStopped", "m-1", delivery(4), ["in/a.zip"]]]);
            expect(ended.map((f) => [f.job.key, f.attempts, f.failure])).to.deep.equal([
                ["in/a.zip", 3, { failureClass: "task-stopped", reason: "the task running it stopped 3 times without finishing", errorReport: true }],
            ]);
        });

        it("never throws: a failure while settling leaves the message for redelivery and stops the heartbeat", async function () {
            const transient: RunJob = async (job) => ({ status: "transient", job, reason: "503" });
            await handler(transient, true).handle(message(s3Event("in/a.zip")), new AbortController().signal);
            expect(rec.lines.at(-1)).to.deep.equal({ event: "failed", messageId: "m-1", reason: "SQS down", action: "left for redelivery" });
            expect(heartbeatStopped).to.equal(true);
        });
    });

    describe("receive-loop.ts: ReceiveLoop and Stopper", function () {
        const CFG = { queueUrl: QUEUE_URL, waitSeconds: 20, idleExit: 1, concurrency: 1 };
        let rec: ReturnType<typeof recorder>;
        let stopper: Stopper;
        const msg = (id: string): Message => ({ MessageId: id, ReceiptHandle: `rh-${id}`, Body: "{}" });

        function loop(cfg: typeof CFG, handle: (m: Message, processed: () => void) => Promise<void>, queue = { visibilityTimeout: 30 }): ReceiveLoop {
            return new ReceiveLoop(cfg, { sqs: sqsClient, log: rec.log, stopper, queue, handle });
        }
        const receives = () => sqs.commandCalls(ReceiveMessageCommand).length;

        beforeEach(function () {
            rec = recorder();
            stopper = new Stopper(rec.log);
        });

        it("long-polls one message at a time with the queue's visibility timeout; exits after idleExit empty receives in a row", async function () {
            sqs.on(ReceiveMessageCommand)
                .resolvesOnce({})
                .resolvesOnce({ Messages: [msg("a")] })
                .resolvesOnce({ Messages: [] })
                .resolvesOnce({ Messages: [msg("b")] })
                .resolvesOnce({})
                .resolves({});
            const handled: string[] = [];
            const queue = { visibilityTimeout: 30 };
            const l = loop({ ...CFG, idleExit: 2, waitSeconds: 5 }, async (m) => void handled.push(m.MessageId!), queue);
            queue.visibilityTimeout = 45; // resolved from the queue after the loop was built: read at each receive
            await l.run();
            // empty, a (resets), empty, b (resets), empty, empty -> exit.
            expect(handled).to.deep.equal(["a", "b"]);
            expect(receives()).to.equal(6);
            expect(sqs.commandCalls(ReceiveMessageCommand)[0].args[0].input).to.deep.equal({
                QueueUrl: QUEUE_URL,
                MaxNumberOfMessages: 1,
                WaitTimeSeconds: 5,
                VisibilityTimeout: 45,
                MessageSystemAttributeNames: ["ApproximateReceiveCount"],
                MessageAttributeNames: ["All"],
            });
        });

        it("runs `concurrency` independent loops, each exiting on its own empty receive", async function () {
            sqs.on(ReceiveMessageCommand).resolves({});
            await loop({ ...CFG, concurrency: 3 }, async () => undefined).run();
            expect(receives()).to.equal(3);
        });

        it("receives the next message once a job is processed, at most one finishing in the background, awaited before exit", async function () {
            sqs.on(ReceiveMessageCommand)
                .resolvesOnce({ Messages: [msg("a")] })
                .resolvesOnce({ Messages: [msg("b")] })
                .resolvesOnce({ Messages: [msg("c")] })
                .resolves({});
            const finish: Record<string, { promise: Promise<void>; resolve: () => void }> = { a: deferred(), b: deferred(), c: deferred() };
            const started: string[] = [];
            let exited = false;
            const run = loop(CFG, async (m, processed) => {
                started.push(m.MessageId!);
                processed(); // rendered: the uploads go on in the background
                await finish[m.MessageId!].promise;
            })
                .run()
                .then(() => (exited = true));

            await until(() => started.length === 2, "b starts while a finishes");
            expect(started).to.deep.equal(["a", "b"]);
            // b is processed, but a (older) is still finishing: c waits.
            for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
            expect(started).to.deep.equal(["a", "b"]);
            expect(receives()).to.equal(2);

            finish.a.resolve();
            await until(() => started.length === 3, "c starts once a finished");
            // c is processed, b still finishing: no receive until b is done.
            for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
            expect(receives()).to.equal(3);
            finish.b.resolve();
            await until(() => receives() === 4, "the empty receive once b finished");
            for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
            // Queue drained, but c is still finishing: the loop waits for it before exiting.
            expect(exited).to.equal(false);
            finish.c.resolve();
            await run;
            expect(exited).to.equal(true);
        });

        it("idleExit 0 receives until stop(), which cancels the pending long-poll", async function () {
            const pending: Array<() => void> = [];
            const fakeSqs = {
                send: (_cmd: unknown, opts: { abortSignal: AbortSignal }) =>
                    new Promise((resolve, reject) => {
                        pending.push(() => resolve({}));
                        opts.abortSignal.addEventListener("abort", () => reject(Object.assign(new Error("aborted"), { name: "AbortError" })));
                    }),
            } as unknown as SQSClient;
            const deps = { sqs: fakeSqs, log: rec.log, stopper, queue: { visibilityTimeout: 30 }, handle: async () => undefined };
            const run = new ReceiveLoop({ ...CFG, idleExit: 0 }, deps).run();
            for (let i = 0; i < 3; i++) {
                await until(() => pending.length === i + 1, `receive ${i + 1}`);
                pending[i](); // empty
            }
            await until(() => pending.length === 4, "receive 4");
            stopper.stop("SIGTERM");
            await run;
            expect(pending).to.have.length(4);
            expect(rec.events()).to.deep.equal(["stopping"]);
        });

        it("after a failed receive, logs it and backs off; stop() ends the back-off at once", async function () {
            sqs.on(ReceiveMessageCommand).rejects(awsError("InternalError", 500));
            const run = loop({ ...CFG, idleExit: 0 }, async () => undefined).run();
            await until(() => rec.events().includes("receive_failed"), "receive_failed");
            expect(rec.lines[0]).to.deep.equal({ event: "receive_failed", loop: 0, reason: "InternalError (500)", retryInMs: 1000 });
            stopper.stop("SIGTERM");
            await run;
            expect(receives()).to.equal(1);
        });

        it("Stopper: stop() aborts every tracked signal once, logs the reason; a signal tracked after stop() is aborted at once", function () {
            const a = stopper.track();
            const b = stopper.track();
            b.done();
            expect(stopper.stopping).to.equal(false);
            expect(stopper.reason).to.equal("SIGTERM");
            stopper.stop("SIGINT");
            stopper.stop("SIGTERM");
            expect(a.signal.aborted).to.equal(true);
            expect(b.signal.aborted).to.equal(false);
            expect(stopper.signal.aborted).to.equal(true);
            expect(stopper.reason).to.equal("SIGINT");
            expect(rec.lines).to.deep.equal([{ event: "stopping", reason: "SIGINT", inflight: 1 }]);
            expect(stopper.track().signal.aborted).to.equal(true);
        });
    });

    describe("one-shot.ts: runOneShot", function () {
        let rec: ReturnType<typeof recorder>;
        let stopper: Stopper;
        let calls: unknown[][];
        let scratch: string;
        const settler = (dlqFails = false) => ({
            writeErrorReport: async (job: Job, reason: string, attempts: number) => void calls.push(["errorReport", job, reason, attempts]),
            sendToDlq: async (body: string, reason: string, attempts: number, keys: string[]) => {
                if (dlqFails) throw new Error("DLQ down");
                calls.push(["dlq", JSON.parse(body), reason, attempts, keys]);
            },
        });
        const result = (outcome: Outcome): RunJob => async (job, signal) => {
            calls.push(["runJob", job, signal.aborted]);
            return outcome;
        };
        const job: Job = { bucket: "b", key: "one/shot.zip" };
        const oneShot = (runJob: RunJob, s = settler(), withDlq = true, jobEtag?: string) =>
            runOneShot({ scratchDir: scratch, dlqUrl: withDlq ? DLQ_URL : undefined, jobEtag }, { runJob, settler: s, stopper, log: rec.log, finished }, "b", job.key);
        let ended: FinishedJob[];
        const finished = async (jobs: FinishedJob[]) => void ended.push(...jobs);

        beforeEach(function () {
            rec = recorder();
            stopper = new Stopper(rec.log);
            calls = [];
            ended = [];
            scratch = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "runtime-units-oneshot-")), "scratch");
        });
        afterEach(function () {
            fs.rmSync(path.dirname(scratch), { recursive: true, force: true });
        });

        it("exits 0 when the job succeeds, dead-lettering nothing", async function () {
            const code = await oneShot(result({ status: "ok" }));
            expect(code).to.equal(0);
            expect(calls).to.deep.equal([["runJob", job, false]]);
            expect(fs.existsSync(scratch)).to.equal(true);
            expect(ended.map((f) => f.failure)).to.deep.equal([undefined]);
        });

        it("binds the job to JOB_ETAG (the S3 event's, quotes dropped), so that its jobId is the launcher's", async function () {
            await oneShot(result({ status: "ok" }), settler(), true, '"0123abcd"');
            expect(calls).to.deep.equal([["runJob", { ...job, etag: "0123abcd" }, false]]);
            expect(rec.lines[0]).to.deep.include({ event: "received", etag: "0123abcd", jobId: jobId({ ...job, etag: "0123abcd" }) });
        });

        it("exits 0 with nothing dead-lettered or published when the input was replaced or deleted (stale)", async function () {
            const code = await oneShot(result({ status: "stale", job, reason: "input deleted: s3://b/one/shot.zip" }));
            expect(code).to.equal(0);
            expect(calls.map((c) => c[0])).to.deep.equal(["runJob"]);
            expect(ended).to.deep.equal([]);
        });

        it("any failure is final: error report, then {bucket,key} to the DLQ with the reason, one Job Failed, exit 3 (settled)", async function () {
            const code = await oneShot(result({ status: "transient", job, reason: "503" }));
            expect(code).to.equal(3);
            expect(calls.slice(1)).to.deep.equal([
                ["errorReport", job, "503", 1],
                ["dlq", { bucket: "b", key: "one/shot.zip" }, "503", 1, ["one/shot.zip"]],
            ]);
            expect(ended.map((f) => f.failure)).to.deep.equal([{ failureClass: "transient", reason: "503", errorReport: true }]);
        });

        it("a failure not dead-lettered (no DLQ_URL, or the DLQ cannot be reached) is not settled: exit 1 and no Job Failed (the launcher ends it)", async function () {
            const failed = result({ status: "permanent", job, reason: "no scene" });
            expect(await oneShot(failed, settler(), false)).to.equal(1);
            expect(calls.map((c) => c[0])).to.deep.equal(["runJob", "errorReport"]);
            expect(await oneShot(failed, settler(true))).to.equal(1);
            expect(rec.lines).to.deep.include({ event: "dlq_send_failed", key: "one/shot.zip", reason: "DLQ down" });
            expect(ended).to.deep.equal([]);
        });

        it("stopped before the job finished: dead-letters it with the stop reason (no error report), one Job Failed, exit 4", async function () {
            stopper.stop("SIGTERM");
            const code = await oneShot(result({ status: "aborted" }));
            expect(code).to.equal(4);
            expect(calls).to.deep.equal([
                ["runJob", job, true],
                ["dlq", { bucket: "b", key: "one/shot.zip" }, "interrupted (SIGTERM) before the job finished", 1, ["one/shot.zip"]],
            ]);
            expect(ended.map((f) => f.failure)).to.deep.equal([{ failureClass: "interrupted", reason: "interrupted (SIGTERM) before the job finished", errorReport: false }]);
        });

        it("stopped, and the dead-letter send failed: exit 143 (not settled), no Job Failed", async function () {
            stopper.stop("SIGTERM");
            expect(await oneShot(result({ status: "aborted" }), settler(true))).to.equal(143);
            expect(ended).to.deep.equal([]);
        });
    });
});
