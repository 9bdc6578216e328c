/** Entry point: reads the environment, starts the worker, handles SIGTERM/SIGINT. */
import { configFromEnv } from "./config";
import { createLogger } from "./log";
import { Worker } from "./runtime";
import { processorFromEnv } from "./select-processor";

async function main(): Promise<number> {
    let cfg;
    let processor;
    try {
        cfg = configFromEnv(process.env);
        processor = processorFromEnv(process.env, cfg);
    } catch (err) {
        createLogger({ worker: process.env.WORKER_PROCESSOR ?? "worker" })("exiting", {
            reason: `configuration error: ${(err as Error).message}`,
            code: 2,
        });
        return 2;
    }
    const log = createLogger({ worker: processor.name });
    // The worker's peak resident memory (ru_maxrss, KiB), on every way out.
    process.on("exit", (code) => {
        const maxRss = process.resourceUsage().maxRSS * 1024;
        log("resource_usage", { code, maxRssBytes: maxRss, maxRssMiB: Math.round(maxRss / 104857.6) / 10 });
    });
    const worker = new Worker(cfg, processor, { log });
    // One-shot mode has no queue to hand the job back to: stopping it early is a failure (143), as in runOneShot.
    const forcedExitCode = cfg.jobBucket && cfg.jobKey ? 143 : 0;
    const onSignal = (sig: NodeJS.Signals) => {
        worker.stop(sig);
        // Well within ECS's stopTimeout even if something hangs.
        setTimeout(() => {
            log("exiting", { reason: `forced exit after ${sig}`, code: forcedExitCode });
            process.exit(forcedExitCode);
        }, 20000).unref();
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    return worker.run();
}

main().then(
    (code) => process.exit(code),
    (err) => {
        process.stdout.write(JSON.stringify({ time: new Date().toISOString(), event: "exiting", reason: String(err?.stack ?? err), code: 1 }) + "\n");
        process.exit(1);
    },
);
