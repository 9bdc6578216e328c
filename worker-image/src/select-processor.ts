/**
 * Which processor a worker runs, from its environment: WORKER_PROCESSOR = "povray" | "command"; unset, "command" when
 * WORKER_COMMAND is set (the runtime base image and the workers built FROM it), else "povray" (the POV-Ray image).
 */
import * as os from "os";
import { CommandProcessor, commandEnv, parseCommand } from "./command";
import { WorkerConfig } from "./config";
import { PovrayProcessor } from "./povray";
import { Processor } from "./processor";

export const PROCESSORS = ["povray", "command"] as const;

type Env = Record<string, string | undefined>;

/** The processor the environment asks for; throws (a configuration error) on an unknown one or a bad WORKER_COMMAND. */
export function processorFromEnv(env: Env, cfg: Pick<WorkerConfig, "concurrency" | "outputSuffixes">): Processor {
    const kind = env.WORKER_PROCESSOR?.trim() || (env.WORKER_COMMAND?.trim() ? "command" : "povray");
    if (kind === "command") {
        return new CommandProcessor({ argv: parseCommand(env.WORKER_COMMAND), outputSuffixes: cfg.outputSuffixes, env: commandEnv(env) });
    }
    if (kind === "povray") return new PovrayProcessor({ threads: Math.max(1, Math.floor(os.cpus().length / cfg.concurrency)) });
    throw new Error(`WORKER_PROCESSOR must be one of ${PROCESSORS.join(", ")}, got ${JSON.stringify(kind)}`);
}
