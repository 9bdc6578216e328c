/** Entry point: reads the environment, starts the worker, handles SIGTERM/SIGINT. */
import * as os from "os";
import { configFromEnv } from "./config";
import { createLogger } from "./log";
import { PovrayProcessor } from "./povray";
import { Worker } from "./runtime";

async function main(): Promise<number> {
    const log = createLogger({ worker: "povray" });
    let cfg;
    try {
        cfg = configFromEnv(process.env);
    } catch (err) {
        log("exiting", { reason: `configuration error: ${(err as Error).message}`, code: 2 });
        return 2;
    }
    const threads = Math.max(1, Math.floor(os.cpus().length / cfg.concurrency));
    const worker = new Worker(cfg, new PovrayProcessor({ threads }), { log });
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
