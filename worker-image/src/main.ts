/** Entry point: reads the environment, starts the worker, handles SIGTERM/SIGINT. */
import { configFromEnv, stopDeadlines } from "./config";
import { EXIT_CODES } from "./exit-codes";
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
            code: EXIT_CODES.configuration,
        });
        return EXIT_CODES.configuration;
    }
    const log = createLogger({ worker: processor.name });
    // The worker's peak resident memory (ru_maxrss, KiB), on every way out.
    process.on("exit", (code) => {
        const maxRss = process.resourceUsage().maxRSS * 1024;
        log("resource_usage", { code, maxRssBytes: maxRss, maxRssMiB: Math.round(maxRss / 104857.6) / 10 });
    });
    const worker = new Worker(cfg, processor, { log });
    // Forced: whatever was not settled by then is not (a one-shot job is left to the launcher, which sees 143).
    const forcedExitCode = EXIT_CODES.forced;
    const onSignal = (sig: NodeJS.Signals) => {
        worker.stop(sig);
        // A few seconds before ECS's SIGKILL (WORKER_STOP_TIMEOUT_SECONDS), even if something hangs.
        setTimeout(() => {
            log("exiting", { reason: `forced exit after ${sig}`, code: forcedExitCode });
            process.exit(forcedExitCode);
        }, stopDeadlines(cfg.stopTimeoutSeconds).forcedExitMs).unref();
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    return worker.run();
}

main().then(
    (code) => process.exit(code),
    (err) => {
        process.stdout.write(JSON.stringify({ time: new Date().toISOString(), event: "exiting", reason: String(err?.stack ?? err), code: EXIT_CODES.crashed }) + "\n");
        process.exit(EXIT_CODES.crashed);
    },
);
