/**
 * Big-object transfers against moto (issue #18), through the worker — a child worker process (main.ts, the command
 * processor), timed from its own log lines — beside the AWS CLI's `aws s3 cp` (multipart, max_concurrent_requests 10
 * in a temporary AWS_CONFIG_FILE) on the same emulator in the same run, and the worker's peak RSS (its
 * `resource_usage` line), against an idle worker's. Prints `name: value` figures; never asserts.
 *  - upload: a 1 GiB object (BENCH_TRANSFER_MIB): the worker's tool writes it (processed -> uploaded); the CLI
 *    uploads the same number of bytes from a local file;
 *  - download: a 256 MiB object (BENCH_TRANSFER_DOWNLOAD_MIB): the worker downloads it (received -> downloaded), so
 *    does the CLI. Smaller, because moto serves every ranged GET by reading the whole object first: a download's cost
 *    there grows with the square of the size (1 GiB: several minutes for the worker, ~10 for the CLI), and the
 *    figures say more about moto than about either client (both use ranged GETs); they compare the two only.
 */
import { spawn } from "child_process";
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Readable } from "stream";
import { GetObjectCommand } from "@aws-sdk/client-s3";

import { startMoto } from "../harness/moto";
import { Aws, LogLine, startChildWorker, workerEnv } from "../harness/worker-env";

const MiB = 1024 * 1024;
const UP = Number(process.env.BENCH_TRANSFER_MIB ?? 1024) * MiB;
const DOWN = Number(process.env.BENCH_TRANSFER_DOWNLOAD_MIB ?? 256) * MiB;

/**
 * The worker's tool: for the download job (an input over 1 MiB) a 1-byte output; for the upload job (a tiny input
 * holding a byte count) that many random bytes, printing their SHA-256.
 */
const TOOL = `
const fs = require("fs"), crypto = require("crypto");
const [input, outDir] = process.argv.slice(1);
if (fs.statSync(input).size > 1048576) { fs.writeFileSync(outDir + "/down.bin", "x"); process.exit(0); }
const total = Number(fs.readFileSync(input, "utf8")), hash = crypto.createHash("sha256"), fd = fs.openSync(outDir + "/up.bin", "w");
for (let off = 0; off < total; off += 8 << 20) { const b = crypto.randomBytes(Math.min(8 << 20, total - off)); hash.update(b); fs.writeSync(fd, b); }
fs.closeSync(fd);
console.log("sha256=" + hash.digest("hex"));`;

function out(name: string, value: string | number) {
    console.log(`${name}: ${value}`);
}

function writeRandom(file: string, size: number): void {
    const fd = fs.openSync(file, "w");
    for (let off = 0; off < size; off += 8 * MiB) fs.writeSync(fd, randomBytes(Math.min(8 * MiB, size - off)));
    fs.closeSync(fd);
}

const time = (l: LogLine | undefined, what: string): number => {
    if (!l) throw new Error(`no ${what} log line`);
    return Date.parse(String(l.time));
};

async function main() {
    const moto = await startMoto();
    const aws = new Aws(moto);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "transfer-bench-"));
    const scratches: string[] = [];
    try {
        const bucket = await aws.bucket("transfer-bench");
        const { queueUrl, dlqUrl } = await aws.queues("transfer-bench", 3, 120);

        // The AWS CLI: multipart (8 MiB parts by default) with 10 concurrent requests.
        const cliEnv = { ...process.env, ...moto.env, AWS_CONFIG_FILE: path.join(tmp, "aws-config") };
        // Asynchronously: a spawnSync would block this process's event loop, which drains moto's stderr (its request
        // log); with the pipe full, moto stops answering.
        const cli = (...args: string[]) =>
            new Promise<void>((resolve, reject) => {
                const p = spawn("aws", args, { env: cliEnv, stdio: ["ignore", "ignore", "pipe"] });
                let err = "";
                p.stderr.on("data", (d) => (err = (err + d).slice(-2000)));
                p.on("error", reject);
                p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`aws ${args.join(" ")} exited with ${code}: ${err}`))));
            });
        const cliSeconds = async (...args: string[]) => {
            const t = Date.now();
            await cli("--endpoint-url", moto.endpoint, "s3", "cp", ...args, "--quiet");
            return (Date.now() - t) / 1000;
        };
        await cli("configure", "set", "default.s3.max_concurrent_requests", "10");
        const upFile = path.join(tmp, "up.dat");
        writeRandom(upFile, UP);
        const cliUp = await cliSeconds(upFile, `s3://${bucket}/cli/up.dat`);
        fs.rmSync(upFile);
        const downFile = path.join(tmp, "down.dat");
        writeRandom(downFile, DOWN);
        await cliSeconds(downFile, `s3://${bucket}/in/down.dat`);
        fs.rmSync(downFile);
        const cliDown = await cliSeconds(`s3://${bucket}/in/down.dat`, path.join(tmp, "cli-down.dat"));
        fs.rmSync(path.join(tmp, "cli-down.dat"));

        // An idle worker (nothing to do) for the runtime's own footprint.
        const idleEnv = workerEnv(moto, { QUEUE_URL: (await aws.queues("transfer-bench-idle")).queueUrl, WORKER_COMMAND: '["true"]' });
        scratches.push(idleEnv.WORKER_SCRATCH_DIR);
        const idle = startChildWorker(idleEnv);
        await idle.exited;
        const idleRss = Number(idle.logs.find((l) => l.event === "resource_usage")?.maxRssBytes ?? NaN) / MiB;

        // The worker: the download job, then the upload job.
        await aws.put(bucket, "in/up.gen", String(UP));
        await aws.send(queueUrl, { bucket, key: "in/down.dat" });
        await aws.send(queueUrl, { bucket, key: "in/up.gen" });
        const env = workerEnv(moto, {
            QUEUE_URL: queueUrl,
            DLQ_URL: dlqUrl,
            MAX_INPUT_BYTES: String(DOWN + MiB),
            OUTPUT_SUFFIXES: JSON.stringify([".bin", ".log"]),
            WORKER_COMMAND: JSON.stringify([process.execPath, "-e", TOOL, "--", "{input}", "{outputDir}"]),
        });
        scratches.push(env.WORKER_SCRATCH_DIR);
        const w = startChildWorker(env);
        const { code } = await w.exited;
        if (code !== 0) throw new Error(`worker exited with ${code}: ${w.stderr()}`);
        const logs = w.logs;
        if ((await aws.drain(dlqUrl)).length > 0) throw new Error("the worker dead-lettered a job");
        const downloaded = logs.findIndex((l) => l.event === "downloaded" && l.key === "in/down.dat");
        const received = logs.slice(0, downloaded).filter((l) => l.event === "received").pop();
        const workerDown = (time(logs[downloaded], "downloaded") - time(received, "received")) / 1000;
        const uploaded = logs.find((l) => l.event === "uploaded" && l.key === "in/up.bin");
        const workerUp = (time(uploaded, "uploaded") - time(logs.find((l) => l.event === "processed" && l.key === "in/up.gen"), "processed")) / 1000;
        const rss = Number(logs.find((l) => l.event === "resource_usage")?.maxRssBytes ?? NaN) / MiB;

        // The uploaded object is what the tool wrote.
        const wrote = /sha256=([0-9a-f]{64})/.exec((await aws.get(bucket, "in/up.log"))?.toString() ?? "")?.[1];
        const h = createHash("sha256");
        for await (const c of (await aws.s3.send(new GetObjectCommand({ Bucket: bucket, Key: "in/up.bin" }))).Body as Readable) h.update(c as Buffer);
        if (!wrote || h.digest("hex") !== wrote) throw new Error("the uploaded object differs from what the tool wrote");

        const mbps = (bytes: number, s: number) => (bytes / 1e6 / s).toFixed(1);
        out("transfer_upload_mib", UP / MiB);
        out("worker_upload_mb_per_s", mbps(UP, workerUp));
        out("cli_upload_mb_per_s", mbps(UP, cliUp));
        out("upload_vs_cli", (cliUp / workerUp).toFixed(2));
        out("upload_vs_cli_target", ">= 1");
        out("worker_upload_parts", String(uploaded?.parts ?? 0));
        out("transfer_download_mib", DOWN / MiB);
        out("worker_download_mb_per_s", mbps(DOWN, workerDown));
        out("cli_download_mb_per_s", mbps(DOWN, cliDown));
        out("download_vs_cli", (cliDown / workerDown).toFixed(2));
        out("worker_download_requests", String(logs.find((l) => l.event === "ranged_download")?.requests ?? 1));
        out("worker_peak_rss_mib", rss.toFixed(0));
        out("worker_peak_rss_mib_target", "< 300");
        out("worker_idle_peak_rss_mib", idleRss.toFixed(0));
    } finally {
        await moto.stop();
        fs.rmSync(tmp, { recursive: true, force: true });
        for (const d of scratches) fs.rmSync(d, { recursive: true, force: true });
    }
}

main().then(
    () => process.exit(0),
    (err) => {
        console.error(err);
        process.exit(1);
    },
);
