/**
 * Issue #12, against moto_server and the real povray: a re-upload never loses to an older render (version binding),
 * every dead-lettered job is identifiable once (jobId), and no tool process outlives its worker (setpriv
 * --pdeathsig). Also what moto 5.2.1 does with If-Match, which the version binding relies on.
 */
import { GetObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { expect } from "chai";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { childPids, dropResponses, pollUntil, processGone, processName } from "../harness/faults";
import { Moto, motoClientConfig } from "../harness/moto";
import {
    Aws,
    LogLine,
    makeZip,
    pngSize,
    runWorkerInProcess,
    s3Event,
    scene,
    startChildWorker,
    tinyJobZip,
    useWorkerMoto,
    workerEnv,
} from "../harness/worker-env";
import { deadLetteredJobs } from "../cli/local/watch";
import { jobId } from "../worker-image/src/binding";
import { findSetpriv } from "../worker-image/src/parent-death";
import { PovrayProcessor } from "../worker-image/src/povray";
import { Processor } from "../worker-image/src/processor";
import { requirePrerequisite } from "./helpers/prerequisite";
import { expectEndedQuietly } from "./helpers/ended-quietly";

/** An S3 event for one key with its ETag the way S3 sends it: without quotes. */
function s3EventWithEtag(bucket: string, key: string, etag: string): string {
    const event = JSON.parse(s3Event(bucket, [key]));
    event.Records[0].s3.object.eTag = etag.replace(/"/g, "");
    return JSON.stringify(event);
}

/** The tiny scene zipped under `<base>.ini`, rendered at width x height. */
function tinyZipOfSize(base: string, width: number, height: number): Promise<Buffer> {
    const ini = scene("tiny.ini").toString().replace(/^Width=.*$/m, `Width=${width}`).replace(/^Height=.*$/m, `Height=${height}`);
    return makeZip([
        { name: `${base}.ini`, data: ini },
        { name: "tiny.pov", data: scene("tiny.pov") },
    ]);
}

describe("worker under faults (moto + povray): version binding, jobId, tool processes", function () {
    let moto: Moto;
    let aws: Aws;
    const setup = useWorkerMoto("faults-test", (m, a) => ((moto = m), (aws = a)));
    const events = (logs: LogLine[], event: string) => logs.filter((l) => l.event === event);

    describe("moto 5.2.1 and If-Match (what the version binding relies on)", function () {
        it("GetObject honours If-Match, quoted or bare: the current ETag answers, another is 412 PreconditionFailed", async function () {
            const { bucket } = await setup();
            const etag = await aws.put(bucket, "k.zip", "v1");
            expect(etag).to.match(/^"[0-9a-f]{32}"$/);
            const get = (IfMatch: string) => aws.s3.send(new GetObjectCommand({ Bucket: bucket, Key: "k.zip", IfMatch }));
            expect((await get(etag)).ETag).to.equal(etag);
            expect((await get(etag.replace(/"/g, ""))).ETag).to.equal(etag);
            const err = await get('"00000000000000000000000000000000"').then(
                () => undefined,
                (e) => e,
            );
            expect(err?.name).to.equal("PreconditionFailed");
            expect(err?.$metadata?.httpStatusCode).to.equal(412);
        });

        it("HeadObject honours a quoted If-Match (412 without a body for another); the worker always sends it quoted", async function () {
            const { bucket } = await setup();
            const etag = await aws.put(bucket, "k.zip", "v1");
            const head = (IfMatch: string) => aws.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "k.zip", IfMatch }));
            expect((await head(etag)).ETag).to.equal(etag);
            const status = (p: Promise<unknown>) => p.then(() => 200, (e) => e?.$metadata?.httpStatusCode);
            expect(await status(head('"00000000000000000000000000000000"'))).to.equal(412);
            // moto compares HeadObject's If-Match literally: the bare form does not match (hence the quoting).
            expect(await status(head(etag.replace(/"/g, "")))).to.equal(412);
        });
    });

    describe("version binding", function () {
        it("a message for an overwritten version downloads nothing of the new one: logged stale, deleted, nothing written", async function () {
            const { bucket, queueUrl, dlqUrl } = await setup();
            const v1 = await aws.put(bucket, "re/scene.zip", await tinyJobZip("scene"));
            const v2 = await aws.put(bucket, "re/scene.zip", await tinyZipOfSize("scene", 48, 36));
            expect(v2).to.not.equal(v1);
            await aws.send(queueUrl, s3EventWithEtag(bucket, "re/scene.zip", v1));
            const { code, logs } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }));
            expect(code).to.equal(0);
            const stale = events(logs, "stale");
            expect(stale).to.have.length(1);
            expect(stale[0]).to.include({ key: "re/scene.zip", etag: v1.replace(/"/g, ""), jobId: jobId({ bucket, key: "re/scene.zip", etag: v1 }) });
            expect(String(stale[0].reason)).to.match(/input changed: .* no longer has ETag/);
            expect(events(logs, "rendered")).to.have.length(0);
            await expectEndedQuietly(aws, logs, { bucket, base: "re/scene", queueUrl, dlqUrl });
        });

        it("re-upload race: v2 renders and uploads first, then v1's render finishes last and writes nothing", async function () {
            const { bucket, queueUrl, dlqUrl } = await setup();
            const key = "race/scene.zip";
            const v1 = await aws.put(bucket, key, await tinyJobZip("scene"));
            await aws.send(queueUrl, s3EventWithEtag(bucket, key, v1));
            const env = workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl });
            let v2 = "";
            let pngBeforeV1Finished: Buffer | undefined;
            let v2Logs: LogLine[] = [];
            const povray = new PovrayProcessor();
            // The first worker's processor: renders v1; before it returns, v2 is uploaded (with its own event) and a
            // second worker renders and uploads v2 completely. v1's render thus finishes last.
            const slowV1: Processor = {
                name: povray.name,
                async process(input) {
                    const result = await povray.process(input);
                    v2 = await aws.put(bucket, key, await tinyZipOfSize("scene", 48, 36));
                    await aws.send(queueUrl, s3EventWithEtag(bucket, key, v2));
                    const second = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }));
                    v2Logs = second.logs;
                    pngBeforeV1Finished = await aws.get(bucket, "race/scene.png");
                    return result;
                },
            };
            const { code, logs } = await runWorkerInProcess(env, { processor: slowV1 });
            expect(code).to.equal(0);
            // v2's worker rendered it and uploaded it...
            expect(events(v2Logs, "uploaded").map((l) => l.key).sort()).to.deep.equal(["race/scene.log", "race/scene.png"]);
            expect(pngSize(pngBeforeV1Finished!)).to.deep.equal({ width: 48, height: 36 });
            // ...v1's worker rendered too (else this proves nothing), then found the input changed and wrote nothing.
            expect(events(logs, "rendered")).to.have.length(1);
            expect(events(logs, "stale")).to.have.length(1);
            expect(events(logs, "stale")[0]).to.include({ key, jobId: jobId({ bucket, key, etag: v1 }) });
            expect(events(logs, "uploaded")).to.have.length(0);
            // The PNG is v2's, and says so.
            expect(pngSize((await aws.get(bucket, "race/scene.png"))!)).to.deep.equal({ width: 48, height: 36 });
            const head = await aws.head(bucket, "race/scene.png");
            expect(decodeURIComponent(head.Metadata!["source-etag"])).to.equal(v2);
            expect(head.Metadata!["job-id"]).to.equal(jobId({ bucket, key, etag: v2 }));
            expect(await aws.get(bucket, "race/scene.error.json")).to.equal(undefined);
            // Both messages are gone, none dead-lettered.
            expect(events(logs, "deleted")).to.have.length(1);
            expect(await aws.depth(queueUrl)).to.equal(0);
            expect(await aws.depth(dlqUrl)).to.equal(0);
        });

        it("a direct {bucket, key} job without an ETag binds to the ETag it downloads (metadata and jobId)", async function () {
            const { bucket, queueUrl, dlqUrl } = await setup();
            const etag = await aws.put(bucket, "direct/scene.zip", await tinyJobZip("scene"));
            await aws.send(queueUrl, { bucket, key: "direct/scene.zip" });
            const { code, logs } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }));
            expect(code).to.equal(0);
            const head = await aws.head(bucket, "direct/scene.png");
            expect(decodeURIComponent(head.Metadata!["source-etag"])).to.equal(etag);
            expect(head.Metadata!["job-id"]).to.equal(jobId({ bucket, key: "direct/scene.zip", etag }));
            expect(events(logs, "job_done")[0].jobId).to.equal(jobId({ bucket, key: "direct/scene.zip", etag }));
        });
    });

    describe("jobId and the at-least-once DLQ", function () {
        it("a DLQ SendMessage whose response is lost after SQS stored it: two DLQ messages, one jobId (also in the error report)", async function () {
            const { bucket, queueUrl, dlqUrl } = await setup();
            const key = "poison/none.zip";
            const etag = await aws.put(bucket, key, await makeZip([{ name: "notes.txt", data: "no scene here" }]));
            await aws.send(queueUrl, s3EventWithEtag(bucket, key, etag));
            const sqs = new SQSClient(motoClientConfig(moto.endpoint));
            const dropped = dropResponses(sqs, "SendMessageCommand", (input) => input.QueueUrl === dlqUrl);
            const { code } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }), { sqs });
            expect(code).to.equal(0);
            expect(dropped()).to.equal(1);

            const id = jobId({ bucket, key, etag });
            const dlq = await aws.drain(dlqUrl);
            expect(dlq).to.have.length(2);
            for (const m of dlq) {
                expect(m.MessageAttributes!.jobId.StringValue).to.equal(id);
                const body = JSON.parse(m.Body!);
                expect(body).to.include({ jobId: id });
                expect(body.jobIds).to.deep.equal([id]);
                expect(body.reason).to.match(/poison\/none\.zip: no scene/);
            }
            const report = JSON.parse((await aws.get(bucket, "poison/none.error.json"))!.toString());
            expect(report).to.include({ jobId: id, sourceKey: key, sourceEtag: etag.replace(/"/g, "") });
            // npm run local reads both and counts the job once.
            const read = dlq.map((m) => deadLetteredJobs(m.Body!, m.MessageAttributes?.reason?.StringValue));
            expect(new Set(read.map((r) => r.jobId))).to.deep.equal(new Set([id]));
            expect(await aws.depth(queueUrl)).to.equal(0);
        });
    });

    describe("tool processes and scratch dirs of a killed worker", function () {
        it("SIGKILL the worker mid-render: its povray is gone too (polled, up to 5 s)", async function () {
            requirePrerequisite(this, !!findSetpriv(), "setpriv (util-linux)");
            const { bucket, queueUrl, dlqUrl } = await setup();
            await aws.put(bucket, "orphan/forever.zip", await makeZip([{ name: "forever.pov", data: scene("forever.pov") }]));
            await aws.send(queueUrl, s3Event(bucket, ["orphan/forever.zip"]));
            const worker = startChildWorker(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl, JOB_TIMEOUT_SECONDS: "600" }));
            let tool: number | undefined;
            try {
                await worker.waitFor((l) => l.event === "scene");
                const found = await pollUntil(() => {
                    tool = childPids(worker.proc.pid!).find((pid) => processName(pid) === "povray");
                    return tool !== undefined;
                }, 10000);
                expect(found, "a povray child of the worker").to.equal(true);
                expect(processGone(tool!)).to.equal(false);
                worker.proc.kill("SIGKILL");
                await worker.exited;
                expect(await pollUntil(() => processGone(tool!), 5000), `povray ${tool} still running after its worker was killed`).to.equal(true);
            } finally {
                worker.proc.kill("SIGKILL");
                if (tool !== undefined && !processGone(tool)) spawnSync("kill", ["-KILL", String(tool)]);
            }
        });

        it("the next worker on a killed worker's default (per-process) scratch dir sweeps it at start", async function () {
            const { queueUrl, dlqUrl } = await setup();
            // A pid that no longer runs: a process that has exited.
            const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
            const deadPid = Number(dead.stdout);
            const leftover = path.join(os.tmpdir(), "lambda-ecs-worker", String(deadPid));
            fs.mkdirSync(path.join(leftover, "job-0123/in"), { recursive: true });
            fs.writeFileSync(path.join(leftover, "job-0123/in/scene.pov"), "sphere");
            const env = workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl });
            fs.rmSync(env.WORKER_SCRATCH_DIR, { recursive: true, force: true });
            delete (env as Record<string, string | undefined>).WORKER_SCRATCH_DIR;
            const { code, logs } = await runWorkerInProcess(env);
            expect(code).to.equal(0);
            expect(fs.existsSync(leftover)).to.equal(false);
            const swept = events(logs, "scratch_swept");
            expect(swept.map((l) => l.path)).to.include(leftover);
            // At start: before the first receive.
            expect(logs.indexOf(swept.find((l) => l.path === leftover)!)).to.be.lessThan(logs.findIndex((l) => l.event === "started"));
        });

        it("a fixed WORKER_SCRATCH_DIR is swept at start, before the first job", async function () {
            const { queueUrl, dlqUrl } = await setup();
            const env = workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl });
            fs.mkdirSync(path.join(env.WORKER_SCRATCH_DIR, "job-killed/work"), { recursive: true });
            const { code, logs } = await runWorkerInProcess(env);
            expect(code).to.equal(0);
            expect(events(logs, "scratch_swept").map((l) => path.basename(String(l.path)))).to.deep.equal(["job-killed"]);
            expect(logs.findIndex((l) => l.event === "scratch_swept")).to.be.lessThan(logs.findIndex((l) => l.event === "started"));
            expect(fs.readdirSync(env.WORKER_SCRATCH_DIR)).to.deep.equal([]);
        });
    });
});
