/**
 * Issue #18, end to end against moto_server with the worker as a child process (main.ts, the command processor):
 *  - a tool that writes a 2.4 GB output (over Node's 2 GiB file-read limit and S3's 5 GB single-PUT limit is not
 *    needed: over 2 GiB is what broke): the job succeeds, the object has the exact size and bytes (SHA-256 streamed on
 *    both sides), nothing is dead-lettered or left in progress, and the worker's peak RSS is well under 400 MiB;
 *  - a scratch dir on a real small file system (a 32 MiB tmpfs in a private mount namespace, `unshare`; pending
 *    where the machine allows no user namespaces): an input that can't fit and a tool that fills the disk both end in
 *    the dead-letter queue with the reason, nothing uploaded.
 * Slow (minutes: moto takes the 2.4 GB at tens of MB/s); big files are removed afterwards.
 */
import { HeadObjectCommand, GetObjectCommand, ListMultipartUploadsCommand } from "@aws-sdk/client-s3";
import { expect } from "chai";
import { spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Readable } from "stream";

import { Moto, startMoto } from "../harness/moto";
import { Aws, LogLine, startChildWorker, workerEnv } from "../harness/worker-env";
import { requirePrerequisite } from "./helpers/prerequisite";

const MiB = 1024 * 1024;
const BIG_BYTES = 2_400_000_000;

/** A tool writing `argv[2]` bytes (1 MiB blocks, each numbered) to argv[1] and printing their SHA-256. */
const WRITER = `
const fs = require("fs"), crypto = require("crypto");
const [out, total] = [process.argv[1], Number(process.argv[2])];
const block = crypto.randomBytes(1 << 20), hash = crypto.createHash("sha256"), fd = fs.openSync(out, "w");
for (let off = 0, i = 0; off < total; off += block.length, i++) {
    block.writeUInt32BE(i, 0);
    const b = block.subarray(0, Math.min(block.length, total - off));
    hash.update(b);
    fs.writeSync(fd, b);
}
fs.closeSync(fd);
console.log("sha256=" + hash.digest("hex") + " bytes=" + total);`;

/** A tool writing as many MiB as its input file says, to its output dir. */
const FILLER = `
const fs = require("fs");
const mib = Number(fs.readFileSync(process.argv[1], "utf8"));
const fd = fs.openSync(process.argv[2] + "/out.bin", "w");
for (let i = 0; i < mib; i++) fs.writeSync(fd, Buffer.alloc(1 << 20, 1));
fs.closeSync(fd);`;

async function sha256Of(body: Readable): Promise<{ hex: string; bytes: number }> {
    const h = createHash("sha256");
    let bytes = 0;
    for await (const c of body) {
        h.update(c as Buffer);
        bytes += (c as Buffer).length;
    }
    return { hex: h.digest("hex"), bytes };
}

describe("big objects (issue #18): the worker as a child process against moto_server", function () {
    this.timeout(20 * 60 * 1000);
    let moto: Moto;
    let aws: Aws;
    const scratches: string[] = [];

    before(async function () {
        moto = await startMoto();
        aws = new Aws(moto);
    });
    after(async function () {
        await moto?.stop();
        for (const d of scratches) fs.rmSync(d, { recursive: true, force: true });
    });

    async function runWorker(env: Record<string, string>, prefix?: string[]): Promise<{ code: number | null; logs: LogLine[]; stderr: string }> {
        scratches.push(env.WORKER_SCRATCH_DIR);
        const w = startChildWorker(env, { prefix });
        const { code } = await w.exited;
        return { code, logs: w.logs, stderr: w.stderr() };
    }

    it("a tool's 2.4 GB output is uploaded whole (multipart, exact bytes), nothing dead-lettered, the worker's peak RSS well under 400 MiB", async function () {
        const bucket = await aws.bucket("big-output");
        const { queueUrl, dlqUrl } = await aws.queues("big-output", 3, 60);
        await aws.put(bucket, "in/big.gen", "generate");
        await aws.send(queueUrl, { bucket, key: "in/big.gen" });
        const env = workerEnv(moto, {
            QUEUE_URL: queueUrl,
            DLQ_URL: dlqUrl,
            OUTPUT_SUFFIXES: JSON.stringify([".bin", ".log"]),
            WORKER_COMMAND: JSON.stringify([process.execPath, "-e", WRITER, "--", "{outputDir}/out.bin", String(BIG_BYTES)]),
        });
        const { code, logs, stderr } = await runWorker(env);
        expect(code, stderr).to.equal(0);
        const uploaded = logs.find((l) => l.event === "uploaded" && l.key === "in/big.bin");
        expect(uploaded, JSON.stringify(logs.filter((l) => l.event !== "heartbeat"))).to.deep.include({ bytes: BIG_BYTES, parts: Math.ceil(BIG_BYTES / (8 * MiB)) });
        expect(logs.some((l) => l.event === "deleted")).to.equal(true);

        const head = await aws.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "in/big.bin" }));
        expect(head.ContentLength).to.equal(BIG_BYTES);
        const written = /sha256=([0-9a-f]{64}) bytes=(\d+)/.exec((await aws.get(bucket, "in/big.log"))!.toString("utf8"));
        expect(written, "the tool's log").to.not.equal(null);
        const got = await sha256Of((await aws.s3.send(new GetObjectCommand({ Bucket: bucket, Key: "in/big.bin" }))).Body as Readable);
        expect(got).to.deep.equal({ hex: written![1], bytes: BIG_BYTES });

        expect(await aws.drain(dlqUrl), "dead-lettered").to.deep.equal([]);
        expect(await aws.depth(queueUrl)).to.equal(0);
        expect((await aws.s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).to.deep.equal([]);
        const usage = logs.find((l) => l.event === "resource_usage");
        expect(usage, "the worker logs its peak RSS on exit").to.not.equal(undefined);
        const rssMiB = Number(usage!.maxRssBytes) / MiB;
        console.log(`      worker peak RSS: ${rssMiB.toFixed(0)} MiB for a ${BIG_BYTES} byte output`);
        expect(rssMiB).to.be.below(400);
        // The job dir (and its 2.4 GB) is gone.
        expect(fs.readdirSync(env.WORKER_SCRATCH_DIR)).to.deep.equal([]);
    });

    it("on a scratch file system too small for the job, the job ends in the DLQ with the reason, nothing uploaded", async function () {
        const probe = spawnSync("unshare", ["-rm", "true"]);
        requirePrerequisite(this, probe.status === 0, `a private mount namespace (unshare -rm: ${String(probe.stderr ?? probe.error).trim()})`);
        const bucket = await aws.bucket("small-scratch");
        const { queueUrl, dlqUrl } = await aws.queues("small-scratch", 3, 60);
        await aws.put(bucket, "in/too-big.dat", Buffer.alloc(40 * MiB, 2));
        await aws.put(bucket, "in/fills.dat", "64");
        await aws.send(queueUrl, { bucket, key: "in/too-big.dat" });
        await aws.send(queueUrl, { bucket, key: "in/fills.dat" });
        const env = workerEnv(moto, {
            QUEUE_URL: queueUrl,
            DLQ_URL: dlqUrl,
            OUTPUT_SUFFIXES: JSON.stringify([".bin", ".log"]),
            WORKER_COMMAND: JSON.stringify([process.execPath, "-e", FILLER, "--", "{input}", "{outputDir}"]),
        });
        const scratch = env.WORKER_SCRATCH_DIR;
        // The worker in its own mount namespace, its scratch dir a 32 MiB tmpfs there.
        const prefix = ["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=32m tmpfs "$0" && exec "$@"', scratch];
        const { code, logs, stderr } = await runWorker(env, prefix);
        expect(code, stderr).to.equal(0);
        const dead = await aws.drain(dlqUrl);
        const reasons: Record<string, string> = Object.fromEntries(dead.map((m) => [JSON.parse(m.Body!).key, JSON.parse(m.Body!).reason]));
        expect(Object.keys(reasons).sort()).to.deep.equal(["in/fills.dat", "in/too-big.dat"]);
        const hint = "give the task more scratch space (the component's ephemeralStorageGiB; WORKER_SCRATCH_DIR's file system elsewhere)";
        expect(reasons["in/too-big.dat"]).to.match(
            new RegExp(`^in/too-big\\.dat: not enough scratch space: the input s3://small-scratch/in/too-big\\.dat \\(41943040 bytes \\(40\\.00 MiB\\)\\) needs 41943040 bytes \\(40\\.00 MiB\\), ${scratch.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} has \\d+ bytes \\([\\d.]+ [KM]iB\\) free of 33554432 bytes \\(32\\.00 MiB\\); `),
        );
        // The worker's own write (the tool's log) or the tool meets the full disk first: either way ENOSPC.
        expect(reasons["in/fills.dat"]).to.match(/^in\/fills\.dat: scratch space ran out \((node exited with 1: [\s\S]*)?ENOSPC: no space left on device[\s\S]*\): .* free of 33554432 bytes \(32\.00 MiB\); /);
        for (const r of Object.values(reasons)) expect(r.endsWith(hint), r).to.equal(true);
        expect(await aws.get(bucket, "in/fills.bin"), "nothing partial uploaded").to.equal(undefined);
        expect(await aws.get(bucket, "in/too-big.bin")).to.equal(undefined);
        expect(JSON.parse((await aws.get(bucket, "in/fills.error.json"))!.toString()).reason).to.match(/^scratch space ran out/);
        expect(await aws.depth(queueUrl)).to.equal(0);
        expect(logs.filter((l) => l.event === "failed" && l.status === "permanent").map((l) => l.key).sort()).to.deep.equal(["in/fills.dat", "in/too-big.dat"]);
    });
});
