/**
 * The worker (worker-image/src) against moto_server and the real povray: the runtime in-process for most cases,
 * as a child process (`node -r ts-node/register/transpile-only worker-image/src/main.ts`) for exit codes and signals.
 */
import { DeleteObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Message, SQSClient } from "@aws-sdk/client-sqs";
import { expect } from "chai";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { jobId } from "../worker-image/src/binding";
import { PovrayProcessor } from "../worker-image/src/povray";
import { Processor } from "../worker-image/src/processor";
import { Moto } from "../harness/moto";
import {
    Aws,
    LogLine,
    makeZip,
    makeZipWithRawName,
    pngSize,
    runWorkerInProcess,
    s3Event,
    scene,
    startChildWorker,
    tinyJobZip,
    useWorkerMoto,
    workerEnv,
    ZipEntry,
    flakyS3,
    strictSqs,
} from "../harness/worker-env";
import { expectEndedQuietly } from "./helpers/ended-quietly";

describe("worker (moto + povray)", function () {
    let moto: Moto;
    let aws: Aws;
    /** Fresh bucket + queue (with a real redrive policy to a DLQ) per test. */
    const setup = useWorkerMoto("worker-test", (m, a) => ((moto = m), (aws = a)));
    const events = (logs: LogLine[], event: string) => logs.filter((l) => l.event === event);

    it("renders a good scene from a direct job message: PNG of the INI's size, log, metadata, message deleted", async function () {
        const { bucket, queueUrl, dlqUrl } = await setup();
        const etag = await aws.put(bucket, "jobs/good.zip", await tinyJobZip("good"));
        // As the launcher queues it: the S3 event's ETag, which S3 sends without quotes.
        await aws.send(queueUrl, { bucket, key: "jobs/good.zip", size: 1, etag: etag.replace(/"/g, ""), eventTime: new Date().toISOString() });
        const { code, logs } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }));
        expect(code).to.equal(0);
        const png = await aws.get(bucket, "jobs/good.png");
        expect(png, "jobs/good.png").to.not.equal(undefined);
        expect(pngSize(png!)).to.deep.equal({ width: 32, height: 24 });
        const head = await aws.head(bucket, "jobs/good.png");
        expect(head.ContentType).to.equal("image/png");
        expect(decodeURIComponent(head.Metadata!["source-key"])).to.equal("jobs/good.zip");
        expect(decodeURIComponent(head.Metadata!["source-etag"])).to.equal(etag);
        expect(head.Metadata!["job-id"]).to.equal(jobId({ bucket, key: "jobs/good.zip", etag }));
        expect(Number(head.Metadata!["processor-seconds"])).to.be.greaterThan(0);
        const log = await aws.get(bucket, "jobs/good.log");
        expect(log!.toString()).to.match(/POV-Ray/);
        expect(await aws.get(bucket, "jobs/good.error.json")).to.equal(undefined);
        expect(events(logs, "deleted")).to.have.length(1);
        for (const e of ["received", "downloaded", "unpacked", "rendered", "uploaded", "deleted", "exiting"]) {
            expect(events(logs, e), e).to.not.be.empty;
        }
        expect(await aws.depth(queueUrl)).to.equal(0);
        expect(await aws.depth(dlqUrl)).to.equal(0);
    });

    it("handles every record of an S3 event, URL-decoding keys with spaces, unicode and prefixes", async function () {
        const { bucket, queueUrl, dlqUrl } = await setup();
        const k1 = "in/My Scenes/ünïcødé scène+1.zip";
        const k2 = "in/second.zip";
        await aws.put(bucket, k1, await tinyJobZip("ünïcødé scène+1"));
        await aws.put(bucket, k2, await makeZip([{ name: "only.pov", data: scene("tiny.pov") }]));
        await aws.send(queueUrl, s3Event(bucket, [k1, k2]));
        const { code } = await runWorkerInProcess(
            workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl, INPUT_PREFIX: "in/", OUTPUT_PREFIX: "out/" }),
        );
        expect(code).to.equal(0);
        const png1 = await aws.get(bucket, "out/My Scenes/ünïcødé scène+1.png");
        expect(png1, "first record output").to.not.equal(undefined);
        expect(pngSize(png1!)).to.deep.equal({ width: 32, height: 24 });
        expect(await aws.get(bucket, "out/My Scenes/ünïcødé scène+1.log")).to.not.equal(undefined);
        // A lone .pov renders with POV-Ray's default size (no INI).
        const png2 = await aws.get(bucket, "out/second.png");
        expect(png2, "second record output").to.not.equal(undefined);
        expect(pngSize(png2!)).to.deep.equal({ width: 800, height: 600 });
        expect(await aws.depth(queueUrl)).to.equal(0);
        expect(await aws.depth(dlqUrl)).to.equal(0);
    });

    it("keeps the output metadata under S3's 2 KB limit for a long non-ASCII key (source-key truncated + sha256)", async function () {
        const { bucket, queueUrl, dlqUrl } = await setup();
        const key = "long/" + "é".repeat(490) + ".zip";
        await aws.put(bucket, key, await makeZip([{ name: "x.pov", data: scene("tiny.pov") }]));
        await aws.send(queueUrl, { bucket, key });
        const { code } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }));
        expect(code).to.equal(0);
        const head = await aws.head(bucket, key.replace(/\.zip$/, ".png"));
        const meta = head.Metadata!;
        const size = Object.entries(meta).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
        expect(size).to.be.lessThan(2048);
        expect(key.startsWith(decodeURIComponent(meta["source-key"]))).to.equal(true);
        expect(meta["source-key-sha256"]).to.equal(createHash("sha256").update(key).digest("hex"));
    });

    it("deletes s3:TestEvent quietly", async function () {
        const { queueUrl, dlqUrl } = await setup();
        await aws.send(queueUrl, { Service: "Amazon S3", Event: "s3:TestEvent", Time: new Date().toISOString(), Bucket: "b" });
        const { code, logs } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }));
        expect(code).to.equal(0);
        expect(events(logs, "deleted")).to.have.length(1);
        expect(events(logs, "failed")).to.be.empty;
        expect(await aws.depth(queueUrl)).to.equal(0);
        expect(await aws.depth(dlqUrl)).to.equal(0);
    });

    for (const [title, body] of [
        ["not JSON", "this is not json"],
        ["a JSON object of the wrong shape", JSON.stringify({ hello: "world" })],
    ]) {
        it(`sends a malformed message (${title}) to the DLQ with its reason and deletes it`, async function () {
            const { queueUrl, dlqUrl } = await setup();
            await aws.send(queueUrl, body);
            const { code } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }));
            expect(code).to.equal(0);
            expect(await aws.depth(queueUrl)).to.equal(0);
            const dlq = await aws.drain(dlqUrl);
            expect(dlq).to.have.length(1);
            expect(dlq[0].MessageAttributes!.reason.StringValue).to.match(/unrecognised message/);
            const dlqBody = JSON.parse(dlq[0].Body!);
            expect(dlqBody.reason).to.match(/unrecognised message/);
            if (body.startsWith("{")) expect(dlqBody.hello).to.equal("world");
            else expect(dlqBody.body).to.equal(body);
        });
    }

    /** Runs one job that must fail permanently; returns the error report and the DLQ message. */
    async function permanentFailure(zip: Buffer, extraEnv: Record<string, string> = {}, base = "bad") {
        const { bucket, queueUrl, dlqUrl } = await setup();
        const key = `jobs/${base}.zip`;
        await aws.put(bucket, key, zip);
        await aws.send(queueUrl, { bucket, key });
        const env = workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl, ...extraEnv });
        const { code, logs } = await runWorkerInProcess(env);
        expect(code).to.equal(0);
        expect(await aws.depth(queueUrl), "original deleted").to.equal(0);
        const report = await aws.get(bucket, `jobs/${base}.error.json`);
        expect(report, "error report").to.not.equal(undefined);
        const parsed = JSON.parse(report!.toString());
        expect(parsed.sourceKey).to.equal(key);
        expect(parsed.attempts).to.equal(1);
        expect(Date.parse(parsed.time)).to.not.be.NaN;
        const dlq = await aws.drain(dlqUrl);
        expect(dlq).to.have.length(1);
        const dlqBody = JSON.parse(dlq[0].Body!);
        expect(dlqBody.bucket).to.equal(bucket);
        expect(dlqBody.key).to.equal(key);
        expect(dlqBody.reason).to.include(parsed.reason);
        expect(dlq[0].MessageAttributes!.reason.StringValue).to.equal(dlqBody.reason);
        expect(await aws.get(bucket, `jobs/${base}.png`), "no PNG").to.equal(undefined);
        const scratch = env.WORKER_SCRATCH_DIR;
        expect(fs.readdirSync(scratch), "scratch cleaned").to.deep.equal([]);
        return { reason: parsed.reason as string, logs, scratch };
    }

    it("rejects zip-slip (..) entries without writing outside the job", async function () {
        const zip = await makeZipWithRawName("aa/evil-slip.txt", "../evil-slip.txt", "pwned");
        const { reason, scratch } = await permanentFailure(zip);
        expect(reason).to.match(/zip rejected/);
        expect(reason).to.include("../evil-slip.txt");
        expect(fs.existsSync(path.join(scratch, "evil-slip.txt"))).to.equal(false);
        expect(fs.existsSync(path.join(path.dirname(scratch), "evil-slip.txt"))).to.equal(false);
    });

    it("rejects absolute paths", async function () {
        const zip = await makeZipWithRawName("xtmp/abs.txt", "/tmp/abs.txt", "pwned");
        const { reason } = await permanentFailure(zip);
        expect(reason).to.match(/zip rejected/);
        expect(reason).to.include("/tmp/abs.txt");
        expect(reason).to.match(/absolute/);
    });

    it("rejects symlink entries", async function () {
        const zip = await makeZip([
            { name: "bad.pov", data: scene("tiny.pov") },
            { name: "passwd.inc", data: "/etc/passwd", mode: 0o120777 },
        ]);
        const { reason } = await permanentFailure(zip);
        expect(reason).to.match(/zip rejected: entry "passwd.inc": symbolic link/);
    });

    it("rejects zips with too many entries (MAX_ZIP_ENTRIES)", async function () {
        const entries: ZipEntry[] = [{ name: "bad.pov", data: scene("tiny.pov") }];
        for (let i = 0; i < 20; i++) entries.push({ name: `f${i}.inc`, data: "" });
        const { reason } = await permanentFailure(await makeZip(entries), { MAX_ZIP_ENTRIES: "10" });
        expect(reason).to.match(/MAX_ZIP_ENTRIES=10/);
    });

    it("rejects zip bombs (MAX_UNZIPPED_BYTES)", async function () {
        const zip = await makeZip([
            { name: "bad.pov", data: scene("tiny.pov") },
            { name: "bomb.inc", data: Buffer.alloc(4 * 1024 * 1024) },
        ]);
        expect(zip.length).to.be.lessThan(100 * 1024);
        const { reason } = await permanentFailure(zip, { MAX_UNZIPPED_BYTES: String(1024 * 1024) });
        expect(reason).to.match(/bomb\.inc/);
        expect(reason).to.match(/MAX_UNZIPPED_BYTES=1048576/);
    });

    it("rejects inputs larger than MAX_INPUT_BYTES", async function () {
        const zip = await tinyJobZip("bad");
        const { reason } = await permanentFailure(zip, { MAX_INPUT_BYTES: "100" });
        expect(reason).to.match(/MAX_INPUT_BYTES=100/);
    });

    it("fails a job without a scene with a clear reason", async function () {
        const zip = await makeZip([
            { name: "a.pov", data: scene("tiny.pov") },
            { name: "b.pov", data: scene("tiny.pov") },
        ]);
        const { reason } = await permanentFailure(zip);
        expect(reason).to.match(/no scene: expected bad\.ini or exactly one \.pov at the top level, found/);
        expect(reason).to.include("a.pov");
    });

    it("fails a scene with a parse error, with POV-Ray's error as the reason", async function () {
        const zip = await makeZip([{ name: "broken.pov", data: scene("parse-error.pov") }]);
        const { reason } = await permanentFailure(zip);
        expect(reason).to.match(/povray exited/);
        expect(reason).to.match(/Parse Error/i);
    });

    it("drops dangerous INI keys (shell-outs, paths, redirections), logs each, and still renders", async function () {
        const { bucket, queueUrl, dlqUrl } = await setup();
        const markerDir = fs.mkdtempSync(path.join(os.tmpdir(), "worker-marker-"));
        const marker = path.join(markerDir, "pwned");
        const ini = scene("dangerous.ini").toString().replace(/__MARKER__/g, marker);
        // A povray.ini in the job's directory is POV-Ray's default INI: it must not be read either.
        const zip = await makeZip([
            { name: "danger.ini", data: ini },
            { name: "tiny.pov", data: scene("tiny.pov") },
            { name: "povray.ini", data: `Post_Scene_Command=touch ${marker}.povray-ini\nWidth=7\n` },
        ]);
        await aws.put(bucket, "danger.zip", zip);
        await aws.send(queueUrl, { bucket, key: "danger.zip" });
        const { code, logs } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }));
        expect(code).to.equal(0);
        const png = await aws.get(bucket, "danger.png");
        expect(png, "danger.png").to.not.equal(undefined);
        expect(pngSize(png!)).to.deep.equal({ width: 40, height: 30 });
        expect(fs.readdirSync(markerDir), "nothing written by shell-outs or redirections").to.deep.equal([]);
        const dropped = events(logs, "ini_key_dropped").map((l) => String(l.option).toLowerCase());
        for (const k of [
            "pre_scene_command",
            "post_scene_command",
            "post_frame_command",
            "library_path",
            "output_file_name",
            "output_file_type",
            "include_ini",
            "all_file",
            "+l/etc",
        ]) {
            expect(dropped, k).to.include(k);
        }
        for (const sw of ["+o", "+ga"]) expect(dropped.filter((d) => d.startsWith(sw + marker.toLowerCase())), sw).to.have.length(1);
        expect(await aws.depth(dlqUrl)).to.equal(0);
    });

    it("never reads a povray.ini shipped in the job (POV-Ray's default INI in its working directory)", async function () {
        const { bucket, queueUrl, dlqUrl } = await setup();
        await aws.put(
            bucket,
            "ini/lone.zip",
            await makeZip([
                { name: "lone.pov", data: scene("tiny.pov") },
                { name: "povray.ini", data: "Width=7\nHeight=5\n" },
            ]),
        );
        await aws.send(queueUrl, { bucket, key: "ini/lone.zip" });
        const { code } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }));
        expect(code).to.equal(0);
        const png = await aws.get(bucket, "ini/lone.png");
        expect(png, "ini/lone.png").to.not.equal(undefined);
        // POV-Ray's built-in default size, not the 7x5 of the shipped povray.ini.
        expect(pngSize(png!)).to.deep.equal({ width: 800, height: 600 });
    });

    it("removes what a scene wrote outside its job dir into the scratch dir (POV-Ray's I/O restrictions are not enforced)", async function () {
        const { bucket, queueUrl, dlqUrl } = await setup();
        // cwd is <scratch>/job-*/in: ../../ is the scratch dir shared by all jobs of the task.
        const pov = '#fopen F "../../stray.txt" write\n#write (F, "left behind\\n")\n#fclose F\n' + scene("tiny.pov").toString();
        await aws.put(bucket, "stray/w.zip", await makeZip([{ name: "w.pov", data: pov }]));
        await aws.send(queueUrl, { bucket, key: "stray/w.zip" });
        const env = workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl });
        // Leftovers of an earlier (killed) worker in the same scratch dir.
        fs.mkdirSync(path.join(env.WORKER_SCRATCH_DIR, "job-old/in"), { recursive: true });
        const { code, logs } = await runWorkerInProcess(env);
        expect(code).to.equal(0);
        expect(pngSize((await aws.get(bucket, "stray/w.png"))!).width).to.equal(800);
        // The scene really did write there (else this test proves nothing)...
        expect(events(logs, "scratch_swept").map((l) => path.basename(String(l.path))).sort()).to.deep.equal(["job-old", "stray.txt"]);
        // ...and nothing is left.
        expect(fs.readdirSync(env.WORKER_SCRATCH_DIR)).to.deep.equal([]);
    });

    it("retries a job past JOB_TIMEOUT_SECONDS until its maxReceiveCount-th attempt, then error report + DLQ with the reason", async function () {
        const { bucket, queueUrl, dlqUrl } = await setup(2, 30);
        await aws.put(bucket, "slow/forever.zip", await makeZip([{ name: "forever.pov", data: scene("forever.pov") }]));
        await aws.send(queueUrl, s3Event(bucket, ["slow/forever.zip"]));
        const { code, logs } = await runWorkerInProcess(
            workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl, JOB_TIMEOUT_SECONDS: "1", WORKER_MAX_RECEIVE_COUNT: "2" }),
        );
        expect(code).to.equal(0);
        // The timed-out attempt is re-sent as a copy (receive count 1 again) carrying it: SQS's count never sees it.
        expect(events(logs, "received").map((l) => [l.receiveCount, l.attempt])).to.deep.equal([[1, undefined], [1, 2]]);
        expect(events(logs, "retry_later")).to.have.length(1);
        const report = JSON.parse((await aws.get(bucket, "slow/forever.error.json"))!.toString());
        expect(report.reason).to.match(/timed out after 1 s/);
        expect(report.attempts).to.equal(2);
        const dlq = await aws.drain(dlqUrl);
        expect(dlq).to.have.length(1);
        expect(dlq[0].MessageAttributes!.reason.StringValue).to.match(/slow\/forever\.zip: render timed out/);
        expect(JSON.parse(dlq[0].Body!).Records[0].s3.object.key).to.equal("slow/forever.zip");
        expect(await aws.depth(queueUrl)).to.equal(0);
    });

    it("without DLQ_URL leaves a poison job to the queue's redrive policy (moto moves it after maxReceiveCount)", async function () {
        const { bucket, queueUrl, dlqUrl } = await setup(2, 1);
        await aws.put(bucket, "poison.zip", await makeZip([{ name: "x.txt", data: "no scene" }]));
        await aws.send(queueUrl, { bucket, key: "poison.zip" });
        const env = workerEnv(moto, { QUEUE_URL: queueUrl, WORKER_IDLE_EXIT: "3" });
        const { code, logs } = await runWorkerInProcess(env);
        expect(code).to.equal(0);
        expect(events(logs, "deleted")).to.be.empty;
        expect(events(logs, "received").length).to.be.at.least(2);
        const report = JSON.parse((await aws.get(bucket, "poison.error.json"))!.toString());
        expect(report.reason).to.match(/no scene/);
        const dlq = await aws.drain(dlqUrl);
        expect(dlq).to.have.length(1);
        expect(JSON.parse(dlq[0].Body!)).to.deep.equal({ bucket, key: "poison.zip" });
        expect(await aws.depth(queueUrl)).to.equal(0);
    });

    it("is idempotent: a duplicated job rewrites the same output keys and nothing more", async function () {
        const { bucket, queueUrl, dlqUrl } = await setup();
        await aws.put(bucket, "dup/a.zip", await tinyJobZip("a"));
        await aws.send(queueUrl, { bucket, key: "dup/a.zip" });
        await aws.send(queueUrl, s3Event(bucket, ["dup/a.zip"]));
        const { code, logs } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }));
        expect(code).to.equal(0);
        expect(events(logs, "deleted")).to.have.length(2);
        const { ListObjectsV2Command } = await import("@aws-sdk/client-s3");
        const listed = await aws.s3.send(new ListObjectsV2Command({ Bucket: bucket }));
        expect(listed.Contents!.map((o) => o.Key).sort()).to.deep.equal(["dup/a.log", "dup/a.png", "dup/a.zip"]);
    });

    it("renders one job at a time per loop, finishing a job's uploads while the next job renders", async function () {
        const { bucket, queueUrl, dlqUrl } = await setup();
        const keys = ["pipe/a.zip", "pipe/b.zip", "pipe/c.zip"];
        for (const k of keys) {
            await aws.put(bucket, k, await tinyJobZip(k.slice(5, 6)));
            await aws.send(queueUrl, { bucket, key: k });
        }
        // Slow uploads (1 s each) so that overlapping them with the next job shows in the log order; each upload
        // also records whether its job's unpacked input dir still exists (it must be gone by then).
        const inputDirs = new Map<string, string>();
        const povray = new PovrayProcessor();
        const processor: Processor = {
            name: povray.name,
            process: (input) => {
                inputDirs.set(input.sourceKey, input.inputDir);
                return povray.process(input);
            },
        };
        const inputLeftDuringUpload: string[] = [];
        const s3 = new S3Client({ region: "us-east-1", endpoint: moto.endpoint, forcePathStyle: true });
        const send = s3.send.bind(s3) as (...a: unknown[]) => Promise<unknown>;
        (s3 as unknown as { send: unknown }).send = async (cmd: { constructor: { name: string }; input: { Metadata?: Record<string, string> } }, ...rest: unknown[]) => {
            const source = cmd.input.Metadata?.["source-key"];
            if (cmd.constructor.name === "PutObjectCommand" && source) {
                const dir = inputDirs.get(decodeURIComponent(source));
                if (!dir || fs.existsSync(dir)) inputLeftDuringUpload.push(decodeURIComponent(source));
                await new Promise((r) => setTimeout(r, 1000));
            }
            return send(cmd, ...rest);
        };
        const { code, logs } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }), { s3, processor });
        expect(code).to.equal(0);
        for (const k of keys) expect(pngSize((await aws.get(bucket, k.replace(".zip", ".png")))!)).to.deep.equal({ width: 32, height: 24 });
        expect(events(logs, "deleted")).to.have.length(3);
        const order = logs.map((l) => `${l.event}:${l.key ?? ""}`);
        const at = (event: string, key: string) => order.indexOf(`${event}:${key}`);
        for (let i = 1; i < keys.length; i++) {
            // One render at a time: the next scene starts only after the previous render ended...
            expect(at("scene", keys[i]), keys[i]).to.be.greaterThan(at("rendered", keys[i - 1]));
            // ...but the previous job's uploads were still running when it started.
            const lastUpload = Math.max(...logs.flatMap((l, j) => (l.event === "uploaded" && String(l.key).startsWith(keys[i - 1].slice(0, -4)) ? [j] : [])));
            expect(at("scene", keys[i]), keys[i]).to.be.lessThan(lastUpload);
        }
        // At most one job finishing in the background: job i+2 starts only after job i is done.
        expect(order.lastIndexOf(`scene:${keys[2]}`)).to.be.greaterThan(at("job_done", keys[0]));
        expect(inputLeftDuringUpload, "unpacked input removed before the uploads").to.deep.equal([]);
        expect(order.indexOf("exiting:")).to.be.greaterThan(Math.max(...order.flatMap((e, j) => (e.startsWith("deleted") ? [j] : []))));
        expect(await aws.depth(queueUrl)).to.equal(0);
    });

    it("heartbeats a render longer than the visibility timeout so no other consumer receives it", async function () {
        // Visibility timeout 2 s, heartbeat every second; the render takes several seconds; a second loop
        // (WORKER_CONCURRENCY=2) polls the same queue all along. Without heartbeats it would receive the job again.
        const { bucket, queueUrl, dlqUrl } = await setup(3, 2);
        const ini = "Input_File_Name=slow.pov\nWidth=32\nHeight=24\nDeclare=Loops=5000000\n";
        await aws.put(bucket, "hb/long.zip", await makeZip([{ name: "long.ini", data: ini }, { name: "slow.pov", data: scene("slow.pov") }]));
        await aws.send(queueUrl, { bucket, key: "hb/long.zip" });
        const env = workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl, WORKER_CONCURRENCY: "2", WORKER_IDLE_EXIT: "0" });
        const { code, logs } = await runWorkerInProcess(env, {
            onLog: (l, worker) => {
                if (l.event === "deleted") worker.stop("test done");
            },
        });
        expect(code).to.equal(0);
        const rendered = events(logs, "rendered");
        expect(rendered).to.have.length(1);
        // Guard against a vacuous pass on a much faster machine: the render must outlast the visibility timeout.
        expect(Number(rendered[0].seconds), "render shorter than the visibility timeout: raise Loops").to.be.greaterThan(3);
        expect(events(logs, "received").map((l) => l.receiveCount)).to.deep.equal([1]);
        expect(events(logs, "heartbeat").length).to.be.at.least(2);
        expect(pngSize((await aws.get(bucket, "hb/long.png"))!)).to.deep.equal({ width: 32, height: 24 });
        expect(await aws.depth(queueUrl)).to.equal(0);
    });

    it("a heartbeat still in flight lands before a timed-out job's message is re-sent and deleted (none lands on it afterwards)", async function () {
        const { bucket, queueUrl, dlqUrl } = await setup(3, 3);
        await aws.put(bucket, "hb/late.zip", await makeZip([{ name: "forever.pov", data: scene("forever.pov") }]));
        await aws.send(queueUrl, { bucket, key: "hb/late.zip" });
        // Heartbeats (visibility 3 s, one per second) take 1.5 s to be answered, so one is always in flight when the
        // render times out and the message is re-sent; record the order in which the calls land.
        const sqs = new SQSClient({ region: "us-east-1", endpoint: moto.endpoint });
        const send = sqs.send.bind(sqs) as (...a: unknown[]) => Promise<unknown>;
        const landed: Array<{ call: string; handle?: string; seconds?: number }> = [];
        (sqs as unknown as { send: unknown }).send = async (...args: unknown[]) => {
            const cmd = args[0] as { constructor: { name: string }; input: { QueueUrl: string; ReceiptHandle: string; VisibilityTimeout: number } };
            const name = cmd.constructor.name;
            if (cmd.input.QueueUrl !== queueUrl || !["ChangeMessageVisibilityCommand", "DeleteMessageCommand", "SendMessageCommand"].includes(name)) return send(...args);
            if (cmd.input.VisibilityTimeout === 3) await new Promise((r) => setTimeout(r, 1500));
            const res = await send(...args);
            landed.push({ call: name.replace("Command", ""), handle: cmd.input.ReceiptHandle, seconds: cmd.input.VisibilityTimeout });
            return res;
        };
        const env = workerEnv(moto, {
            QUEUE_URL: queueUrl,
            DLQ_URL: dlqUrl,
            RENDER_TIMEOUT_SECONDS: "2",
            WORKER_VISIBILITY_TIMEOUT: "3",
            WORKER_MAX_RECEIVE_COUNT: "2",
            WORKER_IDLE_EXIT: "3",
        });
        const { code, logs } = await runWorkerInProcess(env, { sqs });
        expect(code).to.equal(0);
        expect(events(logs, "requeued")).to.have.length(1);
        const firstHandle = landed.find((l) => l.call === "ChangeMessageVisibility")!.handle;
        const first = landed.filter((l) => l.handle === firstHandle);
        expect(first.filter((l) => l.seconds === 3).length, "a heartbeat was in flight").to.be.at.least(1);
        expect(first.at(-1)?.call, JSON.stringify(landed)).to.equal("DeleteMessage");
        // The copy was sent once every heartbeat on the original had landed, before the original was deleted.
        const sentAt = landed.findIndex((l) => l.call === "SendMessage");
        expect(sentAt).to.be.greaterThan(landed.lastIndexOf(first.filter((l) => l.seconds === 3).at(-1)!));
        // The copy is a fresh message (receive count 1) carrying the failed attempt: its timeout is the last attempt.
        expect(events(logs, "received").map((l) => [l.receiveCount, l.attempt])).to.deep.equal([[1, undefined], [1, 2]]);
        expect(await aws.drain(dlqUrl)).to.have.length(1);
        expect(await aws.depth(queueUrl)).to.equal(0);
    });

    it("retries transient S3 failures with backoff and then succeeds", async function () {
        const { bucket, queueUrl, dlqUrl } = await setup();
        await aws.put(bucket, "flaky/a.zip", await tinyJobZip("a"));
        await aws.send(queueUrl, { bucket, key: "flaky/a.zip" });
        const s3 = flakyS3(moto, "GetObjectCommand", 2);
        const { code, logs } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }), { s3 });
        expect(code).to.equal(0);
        expect(events(logs, "retrying").map((l) => l.what)).to.deep.equal(["download", "download"]);
        expect(pngSize((await aws.get(bucket, "flaky/a.png"))!)).to.deep.equal({ width: 32, height: 24 });
        expect(await aws.depth(queueUrl)).to.equal(0);
    });

    it("re-sends a job whose S3 failures persist for another attempt after a back-off: a delayed copy carrying attempt 1 and the reason, no DLQ, no error report", async function () {
        const { bucket, queueUrl, dlqUrl } = await setup();
        await aws.put(bucket, "flaky/b.zip", await tinyJobZip("b"));
        await aws.send(queueUrl, { bucket, key: "flaky/b.zip" });
        const s3 = flakyS3(moto, "GetObjectCommand", Infinity);
        const { code, logs } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }), { s3 });
        expect(code).to.equal(0);
        expect(events(logs, "failed").map((l) => l.status)).to.deep.equal(["transient"]);
        expect(events(logs, "requeued").map((l) => [l.visibleInSeconds, l.attempts, l.interruptions])).to.deep.equal([[10, 1, 0]]);
        expect(events(logs, "released")).to.be.empty;
        expect(await aws.get(bucket, "flaky/b.error.json")).to.equal(undefined);
        expect(await aws.depth(dlqUrl)).to.equal(0);
        // The copy waits out its DelaySeconds (not receivable yet), then carries the failed attempt (the original is gone).
        expect(await aws.depth(queueUrl), "the delayed copy").to.equal(1);
        expect(await aws.drain(queueUrl), "receivable before its delay").to.deep.equal([]);
        let copies: Message[] = [];
        for (const deadline = Date.now() + 20000; copies.length === 0 && Date.now() < deadline; ) {
            await new Promise((r) => setTimeout(r, 500));
            copies = await aws.drain(queueUrl);
        }
        expect(copies.map((c) => ({ receives: c.Attributes?.ApproximateReceiveCount, attempts: c.MessageAttributes?.attempts?.StringValue, lastReason: c.MessageAttributes?.lastReason?.StringValue }))).to.deep.equal([
            { receives: "1", attempts: "1", lastReason: "Service Unavailable (injected)" },
        ]);
    });

    it("a job whose input is gone answers 403 AccessDenied on AWS without s3:ListBucket: listed, not found, it ends as deleted: nothing written, no DLQ, message deleted", async function () {
        const { bucket, queueUrl, dlqUrl } = await setup();
        await aws.send(queueUrl, { bucket, key: "gone/a.zip" });
        // S3's answer to a GetObject of a missing key for a caller without s3:ListBucket (moto would answer 404).
        const s3 = flakyS3(moto, "GetObjectCommand", Infinity, () =>
            Object.assign(new Error("Access Denied"), { name: "AccessDenied", $fault: "client", $metadata: { httpStatusCode: 403 } }),
        );
        const { code, logs } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }), { s3 });
        expect(code).to.equal(0);
        expect(events(logs, "stale").map((l) => l.reason)).to.deep.equal([`input deleted: s3://${bucket}/gone/a.zip no longer exists`]);
        await expectEndedQuietly(aws, logs, { bucket, base: "gone/a", queueUrl, dlqUrl });
    });

    it("an input that exists but cannot be read (403 AccessDenied, e.g. a missing KMS grant) stays a loud permanent failure: report + DLQ naming AccessDenied and what to check", async function () {
        const { bucket, queueUrl, dlqUrl } = await setup();
        await aws.put(bucket, "locked/a.zip", await tinyJobZip("a"));
        await aws.send(queueUrl, { bucket, key: "locked/a.zip" });
        const s3 = flakyS3(moto, "GetObjectCommand", Infinity, () =>
            Object.assign(new Error("Access Denied"), { name: "AccessDenied", $fault: "client", $metadata: { httpStatusCode: 403 } }),
        );
        const { code, logs } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }), { s3 });
        expect(code).to.equal(0);
        expect(events(logs, "failed").map((l) => l.status)).to.deep.equal(["permanent"]);
        const report = JSON.parse((await aws.get(bucket, "locked/a.error.json"))!.toString());
        expect(report.reason).to.equal(
            `input not readable: s3://${bucket}/locked/a.zip exists but reading it was refused (AccessDenied): for an SSE-KMS bucket set ` +
                "bucketKmsKeyArn (the task role needs kms:Decrypt on its key), and check the bucket policy",
        );
        const dlq = await aws.drain(dlqUrl);
        expect(dlq).to.have.length(1);
        expect(JSON.parse(dlq[0].Body!).reason).to.include("AccessDenied");
        expect(await aws.depth(queueUrl)).to.equal(0);
    });

    it("an input deleted before the worker got to it (moto's 404): listed, not found, ends as deleted: nothing written, no DLQ, message deleted", async function () {
        const { bucket, queueUrl, dlqUrl } = await setup();
        const etag = await aws.put(bucket, "early/scene.zip", await tinyJobZip("scene"));
        await aws.send(queueUrl, s3Event(bucket, ["early/scene.zip"]).replace('"size":1', `"size":1,"eTag":"${etag.replace(/"/g, "")}"`));
        await aws.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: "early/scene.zip" }));
        const { code, logs } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }));
        expect(code).to.equal(0);
        expect(events(logs, "stale")).to.have.length(1);
        await expectEndedQuietly(aws, logs, { bucket, base: "early/scene", queueUrl, dlqUrl });
    });

    it("an input deleted while it renders: nothing uploaded, no error report, no DLQ, no job event, the message deleted (moto's 404, then the listing)", async function () {
        const { bucket, queueUrl, dlqUrl } = await setup();
        const key = "del/scene.zip";
        const etag = await aws.put(bucket, key, await tinyJobZip("scene"));
        await aws.send(queueUrl, { bucket, key, etag: etag.replace(/"/g, "") });
        const povray = new PovrayProcessor();
        const deleting: Processor = {
            name: povray.name,
            async process(input) {
                const result = await povray.process(input);
                await aws.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
                return result;
            },
        };
        const { code, logs } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }), { processor: deleting });
        expect(code).to.equal(0);
        expect(events(logs, "rendered")).to.have.length(1);
        expect(events(logs, "stale").map((l) => l.reason)).to.deep.equal([`input deleted: s3://${bucket}/${key} (ETag ${etag.replace(/"/g, "")}) no longer exists`]);
        expect(events(logs, "uploaded")).to.deep.equal([]);
        await expectEndedQuietly(aws, logs, { bucket, base: "del/scene", queueUrl, dlqUrl });
    });

    it("treats another non-retryable 4xx from S3 (400 on upload) as permanent, not as transient", async function () {
        const { bucket, queueUrl, dlqUrl } = await setup();
        await aws.put(bucket, "four/a.zip", await tinyJobZip("a"));
        await aws.send(queueUrl, { bucket, key: "four/a.zip" });
        // Only the first PutObject (an output upload) fails; the error report afterwards goes through.
        const s3 = flakyS3(moto, "PutObjectCommand", 1, () =>
            Object.assign(new Error("Metadata too large"), { name: "MetadataTooLarge", $fault: "client", $metadata: { httpStatusCode: 400 } }),
        );
        const { code, logs } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }), { s3 });
        expect(code).to.equal(0);
        expect(events(logs, "failed").map((l) => l.status)).to.deep.equal(["permanent"]);
        expect(JSON.parse((await aws.get(bucket, "four/a.error.json"))!.toString()).reason).to.equal("Metadata too large");
        expect(await aws.drain(dlqUrl)).to.have.length(1);
        expect(await aws.depth(queueUrl)).to.equal(0);
    });

    it("dead-letters a failure whose reason and key hold control characters (SQS rejects them raw)", async function () {
        const { bucket, queueUrl, dlqUrl } = await setup();
        const key = "ctl/bad\x01key.zip";
        await aws.put(bucket, key, await makeZip([{ name: "e.pov", data: '#error concat("bad", chr(1), chr(27), "[31m red")\n' }]));
        await aws.send(queueUrl, { bucket, key });
        const { sqs, sent } = strictSqs(moto);
        const { code, logs } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }), { sqs });
        expect(code).to.equal(0);
        // The reason really had the control characters (else this test proves nothing).
        const report = JSON.parse((await aws.get(bucket, "ctl/bad\x01key.error.json"))!.toString());
        expect(report.reason).to.include("bad\x01\x1b[31m");
        expect(events(logs, "dead_lettered")).to.have.length(1);
        expect(sent).to.have.length(1);
        expect(sent[0].attributes.reason).to.include("bad\uFFFD\uFFFD[31m");
        expect(sent[0].attributes.sourceKey).to.equal("ctl/bad\uFFFDkey.zip");
        const dlq = await aws.drain(dlqUrl);
        expect(dlq).to.have.length(1);
        expect(JSON.parse(dlq[0].Body!).reason).to.include("bad\uFFFD\uFFFD[31m");
        expect(await aws.depth(queueUrl)).to.equal(0);
    });

    describe("SIGTERM after the render: the outputs still upload (issue #17 item 6)", function () {
        /** An S3 client on moto whose PutObject of a `.png` takes `ms` (or until its abort signal fires). */
        function slowPngUploads(ms: number): S3Client {
            const client = new S3Client({ region: "us-east-1", endpoint: moto.endpoint, forcePathStyle: true });
            const send = client.send.bind(client) as (...a: unknown[]) => Promise<unknown>;
            (client as unknown as { send: unknown }).send = async (...args: unknown[]) => {
                const cmd = args[0] as { constructor: { name: string }; input: { Key?: string } };
                const signal = (args[1] as { abortSignal?: AbortSignal } | undefined)?.abortSignal;
                if (cmd.constructor.name === "PutObjectCommand" && String(cmd.input.Key).endsWith(".png")) {
                    await new Promise<void>((resolve, reject) => {
                        const t = setTimeout(resolve, ms);
                        signal?.addEventListener("abort", () => (clearTimeout(t), reject(Object.assign(new Error("aborted"), { name: "AbortError" }))), { once: true });
                    });
                }
                return send(...args);
            };
            return client;
        }
        const stopWhenRendered = (l: LogLine, worker: { stop(reason?: string): void }) => {
            if (l.event === "rendered") worker.stop("SIGTERM");
        };

        it("GIVEN a SIGTERM while a finished render uploads THEN its outputs are uploaded, its message deleted, and no second render happens", async function () {
            const { bucket, queueUrl, dlqUrl } = await setup();
            await aws.put(bucket, "fin/a.zip", await tinyJobZip("a"));
            await aws.send(queueUrl, { bucket, key: "fin/a.zip" });
            const env = workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl, WORKER_IDLE_EXIT: "0" });
            const { code, logs } = await runWorkerInProcess(env, { s3: slowPngUploads(1500), onLog: stopWhenRendered });
            expect(code).to.equal(0);
            const order = logs.map((l) => l.event);
            expect(order.indexOf("stopping")).to.be.greaterThan(order.indexOf("rendered"));
            expect(order.indexOf("stopping")).to.be.lessThan(order.lastIndexOf("uploaded"));
            expect(events(logs, "uploaded").map((l) => l.key).sort()).to.deep.equal(["fin/a.log", "fin/a.png"]);
            expect(events(logs, "deleted")).to.have.length(1);
            expect(events(logs, "aborted")).to.deep.equal([]);
            expect(events(logs, "requeued")).to.deep.equal([]);
            expect(pngSize((await aws.get(bucket, "fin/a.png"))!)).to.deep.equal({ width: 32, height: 24 });
            expect(await aws.depth(queueUrl)).to.equal(0);
            // Nothing left to render again.
            const again = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }));
            expect(events(again.logs, "received")).to.deep.equal([]);
            expect(await aws.depth(dlqUrl)).to.equal(0);
        });

        it("GIVEN uploads still running at the deadline before the task's SIGKILL (WORKER_STOP_TIMEOUT_SECONDS) THEN they are aborted and the job goes back as an interruption", async function () {
            const { bucket, queueUrl, dlqUrl } = await setup();
            await aws.put(bucket, "fin/b.zip", await tinyJobZip("b"));
            await aws.send(queueUrl, { bucket, key: "fin/b.zip" });
            // stopTimeout 16 s: the uploads may run 1 s after SIGTERM (16 - 5 forced-exit margin - 10 to settle).
            const env = workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl, WORKER_IDLE_EXIT: "0", WORKER_STOP_TIMEOUT_SECONDS: "16" });
            const { code, logs } = await runWorkerInProcess(env, { s3: slowPngUploads(30000), onLog: stopWhenRendered });
            expect(code).to.equal(0);
            expect(events(logs, "aborted").map((l) => l.while)).to.deep.equal(["uploading"]);
            expect(events(logs, "requeued").map((l) => l.interruptions)).to.deep.equal([1]);
            expect(events(logs, "deleted")).to.deep.equal([]);
            expect(await aws.get(bucket, "fin/b.png")).to.equal(undefined);
            expect(await aws.depth(dlqUrl)).to.equal(0);
            expect(await aws.depth(queueUrl)).to.equal(1);
        });
    });

    describe("as a process (worker-image/src/main.ts)", function () {
        it("drains and exits 0 on an empty queue (WORKER_IDLE_EXIT=1)", async function () {
            const { queueUrl } = await setup();
            const w = startChildWorker(workerEnv(moto, { QUEUE_URL: queueUrl, WORKER_IDLE_EXIT: "1" }));
            const { code } = await w.exited;
            expect(code, w.stderr()).to.equal(0);
            expect(w.logs.map((l) => l.event)).to.include("exiting");
            expect(w.logs.find((l) => l.event === "exiting")!.reason).to.equal("queue drained");
        });

        it("exits 2 with a clear log line when QUEUE_URL is missing", async function () {
            const w = startChildWorker(workerEnv(moto, {}));
            const { code } = await w.exited;
            expect(code).to.equal(2);
            expect(String(w.logs[0].reason)).to.match(/QUEUE_URL is required/);
        });

        it("on SIGTERM mid-render re-sends the message at once (interruptions 1, no receive counted); a second worker completes it exactly once", async function () {
            const { bucket, queueUrl, dlqUrl } = await setup(3, 60);
            await aws.put(bucket, "term/slow.zip", await makeZip([{ name: "slow.pov", data: scene("slow.pov") }]));
            await aws.send(queueUrl, { bucket, key: "term/slow.zip" });
            const env = { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl, WORKER_IDLE_EXIT: "0" };
            const a = startChildWorker(workerEnv(moto, env));
            await a.waitFor((l) => l.event === "scene");
            a.proc.kill("SIGTERM");
            const exitA = await a.exited;
            expect(exitA.code, a.stderr()).to.equal(0);
            const eventsA = a.logs.map((l) => l.event);
            expect(eventsA).to.include("requeued");
            expect(eventsA).to.not.include("uploaded");
            expect(eventsA).to.not.include("dead_lettered");
            expect(await aws.get(bucket, "term/slow.png")).to.equal(undefined);
            // A visible copy was sent, so a second worker gets it now, not after the 60 s visibility timeout; it is a new
            // message (receive count 1) that says it was interrupted once.
            const b = startChildWorker(workerEnv(moto, { ...env, WORKER_IDLE_EXIT: "1" }));
            const exitB = await b.exited;
            expect(exitB.code, b.stderr()).to.equal(0);
            expect(b.logs.filter((l) => l.event === "received").map((l) => [l.receiveCount, l.interruptions])).to.deep.equal([[1, 1]]);
            expect(b.logs.filter((l) => l.event === "deleted")).to.have.length(1);
            const png = await aws.get(bucket, "term/slow.png");
            expect(pngSize(png!).width).to.be.greaterThan(0);
            expect(await aws.depth(queueUrl)).to.equal(0);
            expect(await aws.depth(dlqUrl)).to.equal(0);
        });

        it("one-shot mode (JOB_BUCKET + JOB_KEY) renders the job without the queue and exits 0", async function () {
            const { bucket, queueUrl } = await setup();
            await aws.put(bucket, "one/shot.zip", await tinyJobZip("shot"));
            const w = startChildWorker(workerEnv(moto, { JOB_BUCKET: bucket, JOB_KEY: "one/shot.zip", QUEUE_URL: queueUrl }));
            const { code } = await w.exited;
            expect(code, w.stderr()).to.equal(0);
            expect(pngSize((await aws.get(bucket, "one/shot.png"))!)).to.deep.equal({ width: 32, height: 24 });
            expect(w.logs.map((l) => l.event)).to.not.include("receive_failed");
        });

        it("one-shot mode: SIGTERM mid-render dead-letters {bucket,key,reason} (no queue would redeliver it) and exits 4 (stopped, settled)", async function () {
            const { bucket, dlqUrl } = await setup();
            await aws.put(bucket, "one/slow.zip", await makeZip([{ name: "slow.pov", data: scene("slow.pov") }]));
            const w = startChildWorker(workerEnv(moto, { JOB_BUCKET: bucket, JOB_KEY: "one/slow.zip", DLQ_URL: dlqUrl }));
            await w.waitFor((l) => l.event === "scene");
            w.proc.kill("SIGTERM");
            const { code } = await w.exited;
            expect(code, w.stderr()).to.equal(4);
            expect(w.logs.map((l) => l.event)).to.include("dead_lettered");
            const dlq = await aws.drain(dlqUrl);
            expect(dlq).to.have.length(1);
            const body = JSON.parse(dlq[0].Body!);
            expect(body).to.include({ bucket, key: "one/slow.zip", reason: "interrupted (SIGTERM) before the job finished" });
            expect(dlq[0].MessageAttributes!.reason.StringValue).to.equal("interrupted (SIGTERM) before the job finished");
            expect(await aws.get(bucket, "one/slow.png")).to.equal(undefined);
        });

        it("one-shot mode: a permanent failure writes the error report, dead-letters {bucket,key,reason} and exits 3 (failed, settled)", async function () {
            const { bucket, dlqUrl } = await setup();
            await aws.put(bucket, "one/broken.zip", await makeZip([{ name: "broken.pov", data: scene("parse-error.pov") }]));
            const w = startChildWorker(workerEnv(moto, { JOB_BUCKET: bucket, JOB_KEY: "one/broken.zip", DLQ_URL: dlqUrl }));
            const { code } = await w.exited;
            expect(code, w.stderr()).to.equal(3);
            const report = JSON.parse((await aws.get(bucket, "one/broken.error.json"))!.toString());
            expect(report.reason).to.match(/Parse Error/i);
            const dlq = await aws.drain(dlqUrl);
            expect(dlq).to.have.length(1);
            const body = JSON.parse(dlq[0].Body!);
            expect(body).to.include({ bucket, key: "one/broken.zip" });
            expect(body.reason).to.equal(report.reason);
        });
    });
});

describe("worker (moto + povray): job INI switch lines and out-of-range values", function () {
    let moto: Moto;
    let aws: Aws;
    const setup = useWorkerMoto("worker-ini", (m, a) => ((moto = m), (aws = a)));
    /** A job zip: `<base>.ini` holding `ini` next to the tiny scene. */
    const job = (base: string, ini: string) =>
        makeZip([
            { name: `${base}.ini`, data: `; ${base}\nInput_File_Name=tiny.pov\n${ini}\n` },
            { name: "tiny.pov", data: scene("tiny.pov") },
        ]);

    it("renders exactly the size an INI switch line asks for (+W1920 +H1080)", async function () {
        const { bucket, queueUrl, dlqUrl } = await setup();
        await aws.put(bucket, "ini/hd.zip", await job("hd", "+W1920 +H1080 ; full HD\n+A0.3 -D"));
        await aws.send(queueUrl, { bucket, key: "ini/hd.zip" });
        const { code, logs } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }));
        expect(code).to.equal(0);
        const png = await aws.get(bucket, "ini/hd.png");
        expect(png, "ini/hd.png").to.not.equal(undefined);
        expect(pngSize(png!)).to.deep.equal({ width: 1920, height: 1080 });
        // -D is the worker's own setting: dropped, and said so.
        const dropped = logs.filter((l) => l.event === "ini_key_dropped").map((l) => l.option);
        expect(dropped).to.deep.equal(["-D"]);
        expect(await aws.depth(dlqUrl)).to.equal(0);
    });

    it("drops +O (output file) and +L (library path) switches, logs each, and renders to the normal key", async function () {
        const { bucket, queueUrl, dlqUrl } = await setup();
        const markerDir = fs.mkdtempSync(path.join(os.tmpdir(), "worker-ini-marker-"));
        const ini = `+W64 +H48 +O${markerDir}/x.png +L/tmp\n+GA${markerDir}/all.log +HI${markerDir}/h.inc`;
        await aws.put(bucket, "ini/sw.zip", await job("sw", ini));
        await aws.send(queueUrl, { bucket, key: "ini/sw.zip" });
        const { code, logs } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }));
        expect(code).to.equal(0);
        const png = await aws.get(bucket, "ini/sw.png");
        expect(png, "ini/sw.png").to.not.equal(undefined);
        expect(pngSize(png!)).to.deep.equal({ width: 64, height: 48 });
        const dropped = logs.filter((l) => l.event === "ini_key_dropped");
        expect(dropped.map((l) => l.option)).to.deep.equal([`+O${markerDir}/x.png`, "+L/tmp", `+GA${markerDir}/all.log`, `+HI${markerDir}/h.inc`]);
        expect(dropped.map((l) => String(l.reason).replace(/:.*/, ""))).to.deep.equal([
            "switch for Output_File_Name",
            "switch for Library_Path",
            "switch for All_Console, All_File",
            "switch for Include_Header",
        ]);
        for (const l of dropped) expect(l).to.include({ key: "ini/sw.zip", ini: "sw.ini" });
        expect(fs.readdirSync(markerDir), "nothing written where the switches pointed").to.deep.equal([]);
        fs.rmSync(markerDir, { recursive: true });
        expect(await aws.depth(dlqUrl)).to.equal(0);
    });

    for (const [title, ini, reason] of [
        ["Width=100000", "Width=100000\nHeight=600", "big.ini: Width=100000 is out of range: allowed 1-8192"],
        ["+W100000", "+W100000 +H600", "big.ini: +W100000 (Width=100000) is out of range: allowed 1-8192"],
    ]) {
        it(`fails a job whose INI asks ${title}: error report + DLQ message naming the key, value and range, no PNG`, async function () {
            const { bucket, queueUrl, dlqUrl } = await setup();
            await aws.put(bucket, "ini/big.zip", await job("big", ini));
            await aws.send(queueUrl, { bucket, key: "ini/big.zip" });
            const { code } = await runWorkerInProcess(workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl }));
            expect(code).to.equal(0);
            expect(await aws.depth(queueUrl), "original deleted").to.equal(0);
            const report = JSON.parse((await aws.get(bucket, "ini/big.error.json"))!.toString());
            expect(report.reason).to.equal(reason);
            expect(report.attempts).to.equal(1);
            const dlq = await aws.drain(dlqUrl);
            expect(dlq).to.have.length(1);
            const body = JSON.parse(dlq[0].Body!);
            expect(body).to.include({ bucket, key: "ini/big.zip" });
            expect(body.reason).to.include(reason);
            expect(dlq[0].MessageAttributes!.reason.StringValue).to.equal(body.reason);
            expect(await aws.get(bucket, "ini/big.png"), "no PNG").to.equal(undefined);
        });
    }
});
