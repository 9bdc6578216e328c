/**
 * Running a processor's tool (povray, a worker's command): spawned without a shell, in its own process group, with a
 * minimal environment; past `timeoutMs`, or when `signal` aborts (the worker is stopping), the whole group is
 * SIGKILLed; the tool is tied to the worker (./parent-death.ts: it is SIGKILLed when the worker dies, however it
 * dies). stdout and stderr are captured (capped) for the job's log and the failure reason. Shared by every
 * processor so that each gets the same limits.
 */
import { spawn } from "child_process";
import * as os from "os";
import { tieToParent } from "./parent-death";

export interface RunResult {
    code: number | null;
    signal: NodeJS.Signals | null;
    /** The last 64 KiB of stderr (for the failure reason). */
    stderr: string;
    /** stdout and stderr interleaved, capped at MAX_LOG characters: the job's log. */
    output: string;
    timedOut: boolean;
    aborted: boolean;
}

/** Longest log kept per job (characters). */
export const MAX_LOG = 1024 * 1024;
/** Longest stderr tail kept for the failure reason (characters). */
export const MAX_STDERR = 64 * 1024;

/** How long the pipes may stay open after the tool has exited (held by a descendant outside its group). */
export const PIPE_DRAIN_MS = 2000;

/** The last `lines` lines of `text`, trimmed. */
export function tail(text: string, lines = 15): string {
    return text.trim().split("\n").slice(-lines).join("\n");
}

/**
 * Spawns `bin args` (no shell) in `cwd`, `detached` (its own process group), with PATH and HOME of the worker plus
 * `extraEnv` only; resolves when it has exited (never rejects for a non-zero exit; rejects when it cannot be started).
 */
export function runProcess(
    bin: string,
    args: string[],
    cwd: string,
    timeoutMs: number,
    signal: AbortSignal,
    extraEnv: Record<string, string>,
): Promise<RunResult> {
    return new Promise((resolve, reject) => {
        if (signal.aborted) {
            resolve({ code: null, signal: null, stderr: "", output: "", timedOut: false, aborted: true });
            return;
        }
        const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? os.tmpdir(), ...extraEnv };
        // Under `setpriv --pdeathsig KILL` where available: the tool dies with the worker, even a SIGKILLed one.
        const tied = tieToParent(bin, args, env.PATH, cwd);
        const child = spawn(tied.bin, tied.args, { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
        let stderr = "";
        let output = "";
        let timedOut = false;
        let aborted = false;
        const append = (d: Buffer, isErr: boolean) => {
            const s = d.toString("utf8");
            if (isErr) stderr = (stderr + s).slice(-MAX_STDERR);
            if (output.length < MAX_LOG) output += s;
        };
        child.stdout.on("data", (d: Buffer) => append(d, false));
        child.stderr.on("data", (d: Buffer) => append(d, true));
        const killGroup = () => {
            if (child.pid === undefined) return;
            try {
                process.kill(-child.pid, "SIGKILL");
            } catch {
                /* already gone */
            }
        };
        const timer = setTimeout(() => {
            timedOut = true;
            killGroup();
        }, timeoutMs);
        const onAbort = () => {
            aborted = true;
            killGroup();
        };
        signal.addEventListener("abort", onAbort, { once: true });
        child.on("error", (err) => {
            clearTimeout(timer);
            signal.removeEventListener("abort", onAbort);
            reject(new Error(`cannot run ${bin}: ${err.message}`));
        });
        // A descendant that left the group (setsid) may hold the pipes open after the tool exited: stop waiting for
        // them shortly after the exit, so that a job never outlives its tool by more than that.
        let drain: NodeJS.Timeout | undefined;
        child.on("exit", () => {
            drain = setTimeout(() => {
                child.stdout.destroy();
                child.stderr.destroy();
            }, PIPE_DRAIN_MS);
        });
        child.on("close", (code, sig) => {
            clearTimeout(timer);
            clearTimeout(drain);
            signal.removeEventListener("abort", onAbort);
            resolve({ code, signal: sig, stderr, output, timedOut, aborted });
        });
    });
}
