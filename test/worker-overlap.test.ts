/**
 * Issue #18 part 6, the per-job path between one job and the next (worker-image/src/receive-loop.ts, runtime.ts,
 * job.ts), with the SDK clients mocked (aws-sdk-client-mock) and fake processors: the next job's receive, download
 * and unpacking go first, a finished job's uploads follow; the job event, metrics and the stale error report's removal
 * are off the path, yet done before the worker exits. The figures are bench/worker.bench.ts's worker_overhead_pct.
 */
import FakeTimers from "@sinonjs/fake-timers";
import { expect } from "chai";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Readable } from "stream";

import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, Message, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";

import { makeZip } from "../harness/worker-env";
import { WorkerConfig } from "../worker-image/src/config";
import { JobReporter } from "../worker-image/src/events";
import { ProcessedHook } from "../worker-image/src/job";
import { Processor } from "../worker-image/src/processor";
import { FINISH_DEFER_MAX_MS, RECEIVE_ANSWER_MS, ReceiveLoop, Stopper } from "../worker-image/src/receive-loop";
import { Worker } from "../worker-image/src/runtime";
import { deferred } from "./helpers/deferred";
import { recorder } from "./helpers/log-recorder";

const QUEUE_URL = "https://sqs.us-east-1.example/123456789012/work";
const REGION = { region: "us-east-1", credentials: { accessKeyId: "test", secretAccessKey: "test" } };



/** Waits for `cond` (the jobs do real file I/O in their scratch dirs); fails if it never holds (10 s, a generous cap). */
async function until(cond: () => boolean, what: string): Promise<void> {
    for (let i = 0; i < 2000; i++) {
        if (cond()) return;
        await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`never happened: ${what}`);
}

const turns = async (n = 50) => {
    for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

const msg = (id: string, body = "{}"): Message => ({ MessageId: id, ReceiptHandle: `rh-${id}`, Body: body, Attributes: { ApproximateReceiveCount: "1" } });

describe("the path between one job and the next (issue #18 part 6)", function () {
    const sqsClient = new SQSClient(REGION);
    const s3Client = new S3Client(REGION);
    const sqs = mockClient(sqsClient);
    const s3 = mockClient(s3Client);
    beforeEach(() => (sqs.reset(), s3.reset()));
    after(() => (sqs.restore(), s3.restore()));
    const receives = () => sqs.commandCalls(ReceiveMessageCommand).length;

    describe("receive-loop.ts: a finished job's uploads wait for the next job's download and unpacking", function () {
        const CFG = { queueUrl: QUEUE_URL, waitSeconds: 20, idleExit: 1, concurrency: 1 };
        const loop = (stopper: Stopper, handle: (m: Message, processed: ProcessedHook) => Promise<void>) =>
            new ReceiveLoop(CFG, { sqs: sqsClient, log: () => undefined, stopper, queue: { visibilityTimeout: 30 }, handle });

        it("goes on once the next job is ready to run its processor; the last one as soon as the next receive finds nothing", async function () {
            sqs.on(ReceiveMessageCommand).resolvesOnce({ Messages: [msg("a")] }).resolvesOnce({ Messages: [msg("b")] }).resolves({});
            const order: string[] = [];
            const bDownloaded = deferred();
            const run = loop(new Stopper(() => undefined), async (m, processed) => {
                const id = m.MessageId!;
                if (id === "b") await bDownloaded.promise; // b's download and unpacking
                processed.ready?.();
                order.push(`${id} processed`);
                await processed();
                order.push(`${id} uploads`);
            }).run();
            await until(() => receives() === 2, "b received");
            await turns();
            expect(order, "a waits while b downloads").to.deep.equal(["a processed"]);
            bDownloaded.resolve();
            await run;
            expect(order).to.deep.equal(["a processed", "b processed", "a uploads", "b uploads"]);
            expect(receives()).to.equal(3);
            expect(FINISH_DEFER_MAX_MS).to.equal(250);
        });

        it("stopping (SIGTERM) lets a job waiting for the next one's download go on at once", async function () {
            sqs.on(ReceiveMessageCommand).resolvesOnce({ Messages: [msg("a")] }).resolvesOnce({ Messages: [msg("b")] }).resolves({});
            const stopper = new Stopper(() => undefined);
            const order: string[] = [];
            const bDownloaded = deferred();
            const run = loop(stopper, async (m, processed) => {
                const id = m.MessageId!;
                if (id === "b") await bDownloaded.promise;
                processed.ready?.();
                await processed();
                order.push(`${id} uploads`);
            }).run();
            await until(() => receives() === 2, "b received");
            await turns();
            expect(order).to.deep.equal([]);
            stopper.stop("SIGTERM");
            await until(() => order.length === 1, "a goes on");
            expect(order).to.deep.equal(["a uploads"]);
            bDownloaded.resolve();
            await run;
        });

        it("an unanswered receive means an idle queue: the last job goes on after RECEIVE_ANSWER_MS, not FINISH_DEFER_MAX_MS", async function () {
            const clock = FakeTimers.install({ toFake: ["setTimeout", "clearTimeout", "Date"] });
            try {
                // GIVEN a job whose processor finished, and a next long poll that SQS holds open (nothing is waiting)
                const pending: Array<() => void> = [];
                sqs.on(ReceiveMessageCommand).resolvesOnce({ Messages: [msg("a")] }).callsFake(() => new Promise((resolve) => pending.push(() => resolve({}))));
                let uploading = false;
                const run = loop(new Stopper(() => undefined), async (m, processed) => {
                    processed.ready?.();
                    await processed();
                    uploading = true;
                }).run();
                await clock.tickAsync(0);
                expect(pending, "the next receive is open").to.have.length(1);
                // WHEN it stays open, THEN a waits RECEIVE_ANSWER_MS, no more (the deferral's cap is FINISH_DEFER_MAX_MS)
                await clock.tickAsync(RECEIVE_ANSWER_MS - 1);
                expect(uploading, `after ${RECEIVE_ANSWER_MS - 1} ms`).to.equal(false);
                await clock.tickAsync(1);
                expect(uploading, `after ${RECEIVE_ANSWER_MS} ms`).to.equal(true);
                expect(pending, "the receive is still open").to.have.length(1);
                expect([RECEIVE_ANSWER_MS, FINISH_DEFER_MAX_MS]).to.deep.equal([50, 250]);
                pending.forEach((p) => p());
                await clock.tickAsync(0);
                await run;
            } finally {
                clock.uninstall();
            }
        });
    });

    describe("runtime.ts: job events and the stale error report's removal are off the path, and done before exiting", function () {
        let scratch: string;
        beforeEach(() => (scratch = fs.mkdtempSync(path.join(os.tmpdir(), "overlap-"))));
        afterEach(() => fs.rmSync(scratch, { recursive: true, force: true }));

        it("a slow job event or report removal holds up neither the next job nor the queue's drain; run() waits for both", async function () {
            const zip = await makeZip([{ name: "scene.pov", data: "sphere" }]);
            sqs.on(ReceiveMessageCommand)
                .resolvesOnce({ Messages: [msg("a", JSON.stringify({ bucket: "b", key: "in/a.zip" }))] })
                .resolvesOnce({ Messages: [msg("b", JSON.stringify({ bucket: "b", key: "in/b.zip" }))] })
                .resolves({});
            sqs.on(DeleteMessageCommand).resolves({});
            sqs.on(ChangeMessageVisibilityCommand).resolves({});
            s3.on(GetObjectCommand).callsFake(async () => ({ Body: Readable.from([zip]), ContentLength: zip.length, ETag: '"e1"' }));
            s3.on(HeadObjectCommand).resolves({ ETag: '"e1"' });
            s3.on(PutObjectCommand).resolves({ ETag: '"o"' });
            const removal = deferred<object>();
            s3.on(DeleteObjectCommand).callsFake(() => removal.promise);
            const events = deferred();
            const reported: string[] = [];
            const reporter = {
                finished: async (jobs: Array<{ job: { key: string } }>) => {
                    reported.push(...jobs.map((j) => j.job.key));
                    await events.promise;
                },
            } as unknown as JobReporter;
            const processor: Processor = {
                name: "fake",
                async process(input) {
                    const out = path.join(input.workDir, "out.png");
                    fs.writeFileSync(out, "png");
                    return { seconds: 0.01, outputs: [{ suffix: ".png", path: out, contentType: "image/png" }] };
                },
            };
            const cfg: WorkerConfig = {
                queueUrl: QUEUE_URL,
                waitSeconds: 1,
                idleExit: 1,
                concurrency: 1,
                jobTimeoutSeconds: 10,
                visibilityTimeout: 30,
                maxReceiveCount: 3,
                scratchDir: scratch,
                inputPrefix: "",
                outputPrefix: "",
                maxInputBytes: 1e6,
                maxUnzippedBytes: 1e6,
                maxZipEntries: 10,
                outputSuffixes: [".png"],
                stopTimeoutSeconds: 25,
            };
            const rec = recorder();
            let exited = false;
            const run = new Worker(cfg, processor, { s3: s3Client, sqs: sqsClient, log: rec.log, reporter, protection: null, env: {} })
                .run()
                .then((code) => ((exited = true), code));
            // Both jobs done and deleted, the queue found empty, while a's event and both removals are still pending.
            await until(() => receives() === 3 && sqs.commandCalls(DeleteMessageCommand).length === 2, "both deleted, then the empty receive");
            expect(reported).to.deep.equal(["in/a.zip", "in/b.zip"]);
            expect(s3.commandCalls(DeleteObjectCommand).map((c) => c.args[0].input.Key)).to.deep.equal(["in/a.error.json", "in/b.error.json"]);
            await turns();
            expect(exited, "the worker waits for the events").to.equal(false);
            events.resolve();
            await turns();
            expect(exited, "and for the removals").to.equal(false);
            removal.resolve({});
            expect(await run).to.equal(0);
            expect(rec.events().indexOf("exiting")).to.equal(rec.events().length - 1);
        });
    });
});
