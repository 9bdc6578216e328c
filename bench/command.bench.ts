/**
 * Command processor benchmark: the GeoJSON worker's command (examples/geojson, GDAL) on the same sample, run alone
 * (spawned directly, fresh output dir each time) vs through the command processor (worker-image/src/command.ts: argv
 * placeholders, process group, log capture, output selection) vs through a whole worker draining a queue on moto
 * (download, processor, uploads, delete). Prints `name: value` lines with the per-job overhead over the tool alone;
 * target ≤ 5 %, as for POV-Ray. Never asserts.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { startMoto } from "../harness/moto";
import { Aws, LogLine, useMotoEnv, workerEnv } from "../harness/worker-env";
import { CommandProcessor } from "../worker-image/src/command";
import { configFromEnv } from "../worker-image/src/config";
import { runProcess } from "../worker-image/src/run-process";
import { Worker } from "../worker-image/src/runtime";
import { localWorkerEnv } from "../cli/local/stack-dir";

const JOBS = Number(process.env.BENCH_COMMAND_JOBS ?? 10);
const STACK = path.resolve(__dirname, "../examples/geojson");
const SAMPLE = path.join(STACK, "samples/parks.geojson");
const OUTPUTS = [".gpkg", ".summary.json", ".log"];

function out(name: string, value: string | number) {
    console.log(`${name}: ${value}`);
}

const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
const pct = (x: number, base: number) => `${(((x - base) / base) * 100).toFixed(1)} %`;

async function main() {
    if (spawnSync("ogr2ogr", ["--version"], { stdio: "ignore" }).error) {
        out("command_bench", "skipped (gdal-bin not installed: npm run setup)");
        return;
    }
    const argv: string[] = JSON.parse(localWorkerEnv(STACK).WORKER_COMMAND);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "command-bench-"));
    const input = path.join(tmp, "input.geojson");
    fs.copyFileSync(SAMPLE, input);
    const fill = (a: string, outDir: string) => a.replace("{input}", input).replace("{inputDir}", tmp).replace("{outputDir}", outDir).replace("{jobName}", "parks");
    const fresh = (name: string) => fs.mkdtempSync(path.join(tmp, `${name}-`));

    // 1. The tool alone: the same argv spawned directly (the shared spawner, no processor around it).
    const alone = async () => {
        const o = fresh("alone");
        const [bin, ...args] = argv.map((a) => fill(a, o));
        const r = await runProcess(bin, args, tmp, 60000, new AbortController().signal, {});
        if (r.code !== 0) throw new Error(`tool failed: ${r.stderr}`);
    };
    // 2. Through the command processor: its own work dir per job, as job.ts gives it.
    const processor = new CommandProcessor({ argv, outputSuffixes: OUTPUTS });
    const viaProcessor = async () => {
        const workDir = fresh("work");
        const r = await processor.process({
            inputKind: "file",
            inputPath: input,
            inputDir: tmp,
            workDir,
            baseName: "parks",
            sourceKey: "in/parks.geojson",
            timeoutMs: 60000,
            signal: new AbortController().signal,
            log: () => undefined,
        });
        if (r.outputs.length !== 3) throw new Error(`processor made ${r.outputs.length} outputs`);
    };
    await alone(); // warm-up (page cache, GDAL's first load)
    await viaProcessor();
    // Interleaved, so that drift of the machine hits both alike.
    let aloneTotal = 0;
    let processorTotal = 0;
    for (let i = 0; i < JOBS; i++) {
        let t0 = process.hrtime.bigint();
        await alone();
        aloneTotal += seconds(t0);
        t0 = process.hrtime.bigint();
        await viaProcessor();
        processorTotal += seconds(t0);
    }
    const aloneSeconds = aloneTotal / JOBS;
    const processorSeconds = processorTotal / JOBS;
    out("command_tool_alone_seconds_per_job", aloneSeconds.toFixed(3));
    out("command_processor_seconds_per_job", processorSeconds.toFixed(3));
    out("command_processor_overhead_per_job", `${pct(processorSeconds, aloneSeconds)} (target <= 5 %)`);

    // 3. A whole worker draining JOBS jobs from moto: download, the processor, three uploads, delete.
    const moto = await startMoto();
    const restore = useMotoEnv(moto);
    try {
        const aws = new Aws(moto);
        const bucket = await aws.bucket("command-bench");
        const { queueUrl } = await aws.queues("command-bench");
        for (let i = 0; i < JOBS; i++) {
            await aws.put(bucket, `in/parks${i}.geojson`, fs.readFileSync(SAMPLE));
            await aws.send(queueUrl, { bucket, key: `in/parks${i}.geojson` });
        }
        const logs: Array<LogLine & { t: number }> = [];
        const cfg = configFromEnv(workerEnv(moto, { QUEUE_URL: queueUrl, WORKER_WAIT_SECONDS: "1", OUTPUT_SUFFIXES: JSON.stringify(OUTPUTS) }));
        const worker = new Worker(cfg, processor, { log: (event, f = {}) => logs.push({ event, ...f, t: Date.now() }) });
        const w0 = Date.now();
        await worker.run();
        const deleted = logs.filter((l) => l.event === "deleted");
        if (deleted.length !== JOBS) throw new Error(`worker deleted ${deleted.length} of ${JOBS} jobs`);
        // Up to the last delete: the final empty long-poll before exiting is not work.
        const workerSeconds = (deleted[deleted.length - 1].t - w0) / 1000 / JOBS;
        out("command_worker_seconds_per_job", workerSeconds.toFixed(3));
        out("command_worker_overhead_per_job", `${pct(workerSeconds, aloneSeconds)} (S3 + SQS on moto included; target <= 5 %)`);
    } finally {
        restore();
        await moto.stop();
        fs.rmSync(tmp, { recursive: true, force: true });
    }
}

main().then(
    () => process.exit(0),
    (err) => {
        console.error(err);
        process.exit(1);
    },
);
