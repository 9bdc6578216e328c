/**
 * Big-object transfers against moto (issue #18): a 1 GiB object (BENCH_TRANSFER_MIB to change it) down and up through
 * the worker — a child worker process (main.ts, the command processor, `cp {input} {outputDir}/big.bin`), timed from
 * its own log lines (received -> downloaded; processed -> uploaded) — beside the AWS CLI's `aws s3 cp` (multipart,
 * max_concurrent_requests 10 in a temporary AWS_CONFIG_FILE) on the same emulator in the same run, and the worker's
 * peak RSS (its `resource_usage` line), against an idle worker's. Prints `name: value` figures; never asserts.
 *
 * moto serves every ranged GET by reading the whole object first, so emulator download rates say more about moto than
 * about either client (both use ranged GETs); the two columns are comparable with each other only.
 */
import { spawnSync } from "child_process";
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import { startMoto } from "../harness/moto";
import { Aws, LogLine, startChildWorker, workerEnv } from "../harness/worker-env";

const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_TRANSFER_MIB ?? 1024) * MiB;

function out(name: string, value: string | number) {
    console.log(`${name}: ${value}`);
}

function fileSha256(file: string): string {
    const h = createHash("sha256");
    const fd = fs.openSync(file, "r");
    const buf = Buffer.allocUnsafe(8 * MiB);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
    fs.closeSync(fd);
    return h.digest("hex");
}

const at = (logs: LogLine[], pred: (l: LogLine) => boolean, what: string): number => {
    const l = logs.find(pred);
    if (!l) throw new Error(`no ${what} log line: ${JSON.stringify(logs.filter((x) => x.event !== "heartbeat").slice(-20))}`);
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

        // The object: random bytes, written in 8 MiB blocks.
        const local = path.join(tmp, "big.dat");
        const fd = fs.openSync(local, "w");
        for (let off = 0; off < SIZE; off += 8 * MiB) fs.writeSync(fd, randomBytes(Math.min(8 * MiB, SIZE - off)));
        fs.closeSync(fd);
        const sha = fileSha256(local);

        // The AWS CLI: multipart (8 MiB parts by default) with 10 concurrent requests.
        const config = path.join(tmp, "aws-config");
        const cliEnv = { ...process.env, ...moto.env, AWS_CONFIG_FILE: config };
        const cli = (...args: string[]) => {
            const r = spawnSync("aws", args, { env: cliEnv, encoding: "utf8" });
            if (r.status !== 0) throw new Error(`aws ${args.join(" ")}: ${r.stderr}`);
        };
        cli("configure", "set", "default.s3.max_concurrent_requests", "10");
        let t = Date.now();
        cli("--endpoint-url", moto.endpoint, "s3", "cp", local, `s3://${bucket}/in/big.dat`, "--quiet");
        const cliUpSeconds = (Date.now() - t) / 1000;

        // The worker: downloads in/big.dat, the tool copies it, uploads in/big.bin.
        const idleEnv = workerEnv(moto, { QUEUE_URL: (await aws.queues("transfer-bench-idle")).queueUrl, WORKER_COMMAND: '["true"]' });
        const env = workerEnv(moto, {
            QUEUE_URL: queueUrl,
            DLQ_URL: dlqUrl,
            MAX_INPUT_BYTES: String(SIZE + MiB),
            OUTPUT_SUFFIXES: JSON.stringify([".bin"]),
            WORKER_COMMAND: JSON.stringify(["cp", "{input}", "{outputDir}/big.bin"]),
        });
        scratches.push(env.WORKER_SCRATCH_DIR, idleEnv.WORKER_SCRATCH_DIR);
        const idle = startChildWorker(idleEnv);
        await idle.exited;
        const idleRss = Number(idle.logs.find((l) => l.event === "resource_usage")?.maxRssBytes ?? NaN) / MiB;

        await aws.send(queueUrl, { bucket, key: "in/big.dat" });
        const w = startChildWorker(env);
        const { code } = await w.exited;
        if (code !== 0) throw new Error(`worker exited with ${code}: ${w.stderr()}`);
        const logs = w.logs;
        const downSeconds = (at(logs, (l) => l.event === "downloaded", "downloaded") - at(logs, (l) => l.event === "received", "received")) / 1000;
        const upSeconds = (at(logs, (l) => l.event === "uploaded" && l.key === "in/big.bin", "uploaded") - at(logs, (l) => l.event === "processed", "processed")) / 1000;
        const rss = Number(logs.find((l) => l.event === "resource_usage")?.maxRssBytes ?? NaN) / MiB;
        const ranged = logs.find((l) => l.event === "ranged_download");
        const uploaded = logs.find((l) => l.event === "uploaded" && l.key === "in/big.bin");
        if ((await aws.drain(dlqUrl)).length > 0) throw new Error("the worker dead-lettered the job");

        // The CLI brings the worker's output down: the same bytes.
        const back = path.join(tmp, "back.bin");
        t = Date.now();
        cli("--endpoint-url", moto.endpoint, "s3", "cp", `s3://${bucket}/in/big.bin`, back, "--quiet");
        const cliDownSeconds = (Date.now() - t) / 1000;
        if (fileSha256(back) !== sha) throw new Error("the object came back different");

        const mbps = (s: number) => SIZE / 1e6 / s;
        out("transfer_object_mib", SIZE / MiB);
        out("worker_download_mb_per_s", mbps(downSeconds).toFixed(1));
        out("cli_download_mb_per_s", mbps(cliDownSeconds).toFixed(1));
        out("download_vs_cli", (cliDownSeconds / downSeconds).toFixed(2));
        out("worker_download_requests", String(ranged?.requests ?? 1));
        out("worker_upload_mb_per_s", mbps(upSeconds).toFixed(1));
        out("cli_upload_mb_per_s", mbps(cliUpSeconds).toFixed(1));
        out("upload_vs_cli", (cliUpSeconds / upSeconds).toFixed(2));
        out("upload_vs_cli_target", ">= 1");
        out("worker_upload_parts", String(uploaded?.parts ?? 0));
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
