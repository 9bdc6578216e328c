/**
 * Fault injection for the worker tests (issue #12): an SDK middleware that lets a request reach the emulator and then
 * loses its response, and /proc helpers to find a worker's tool process and to see it gone.
 */
import * as fs from "fs";

/** A client whose middleware stack can take one more step (any AWS SDK v3 client). */
interface WithMiddleware {
    middlewareStack: { add(mw: unknown, opts: { step: "deserialize"; name: string; priority?: "high" | "low" }): void };
}

/**
 * After the request for a `commandName` that `when(input)` accepts has been answered by the server (so the server
 * acted on it), throws a network error instead of returning the answer, `times` times: what a connection dropped
 * after forwarding looks like to the SDK, whose retry strategy then sends the request again. Placed in the
 * `deserialize` step, below the SDK's retry middleware. Returns the number of answers dropped so far.
 */
export function dropResponses(
    client: WithMiddleware,
    commandName: string,
    when: (input: Record<string, unknown>) => boolean = () => true,
    times = 1,
): () => number {
    let dropped = 0;
    client.middlewareStack.add(
        (next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: { input: Record<string, unknown> }) => {
            const result = await next(args);
            if (context.commandName === commandName && dropped < times && when(args.input)) {
                dropped++;
                throw Object.assign(new Error("socket hang up (injected: the response was dropped after the server acted)"), {
                    name: "TimeoutError",
                    code: "ECONNRESET",
                    $metadata: {},
                });
            }
            return result;
        },
        { step: "deserialize", name: "dropResponsesForTest", priority: "low" },
    );
    return () => dropped;
}

/** Fields of /proc/<pid>/stat after the command name: [state, ppid, ...]; undefined when there is no such process. */
function statFields(pid: number): string[] | undefined {
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    } catch {
        return undefined;
    }
}

/** The command name (/proc/<pid>/comm) of a live process, or undefined. */
export function processName(pid: number): string | undefined {
    try {
        return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
    } catch {
        return undefined;
    }
}

/** Pids of the live children of `ppid` (Linux /proc). */
export function childPids(ppid: number): number[] {
    return fs
        .readdirSync("/proc")
        .filter((n) => /^\d+$/.test(n))
        .map(Number)
        .filter((pid) => {
            const f = statFields(pid);
            return f !== undefined && Number(f[1]) === ppid && f[0] !== "Z";
        });
}

/** True when the process no longer runs: no such pid, or a zombie (dead, waiting to be reaped). */
export function processGone(pid: number): boolean {
    const f = statFields(pid);
    return f === undefined || f[0] === "Z" || f[0] === "X";
}

/** Polls `pred` every 50 ms until it is true or `boundMs` has passed; returns its last value. */
export async function pollUntil(pred: () => boolean, boundMs: number): Promise<boolean> {
    const deadline = Date.now() + boundMs;
    for (;;) {
        if (pred()) return true;
        if (Date.now() >= deadline) return false;
        await new Promise((r) => setTimeout(r, 50));
    }
}
