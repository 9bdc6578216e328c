/**
 * A tool process dies with its worker: on Linux it runs under util-linux's `setpriv --pdeathsig KILL` (the kernel's
 * PR_SET_PDEATHSIG: SIGKILL when its parent exits, however the parent dies, SIGKILL included), so that no render
 * survives a killed worker, in a container or as `npm run worker` / `npm run local --runner process`.
 *
 * `setpriv` sets the signal and then execs the tool (same process, so the tool's parent is the worker); the setting
 * survives the exec (it is cleared only for set-user-ID/set-group-ID or file-capability programs, which the tools are
 * not). util-linux is an Essential package of Debian: the image (node:22-bookworm-slim) has /usr/bin/setpriv.
 *
 * Caveats (PR_SET_PDEATHSIG, prctl(2)):
 * - It fires when the parent THREAD that forked the child exits, not the parent process. Node's child_process.spawn
 *   forks from the thread that calls it: runProcess must be called on the main thread (never from a worker_thread,
 *   whose exit would kill the tool early); tieToParent refuses otherwise.
 * - It covers the tool process itself, not processes the tool forks (povray forks none; a command processor's tool
 *   that does should exec instead, or its children outlive it as before). The runtime still SIGKILLs the whole
 *   process group on timeout or stop.
 * - A worker that dies in the microseconds between the fork and setpriv's prctl leaves the tool untied.
 * Elsewhere (no setpriv: another OS, or a Linux without util-linux) the tool runs untied, as before; `parentDeathTie()`
 * says which (the worker logs it at start).
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { isMainThread } from "worker_threads";

/** Where setpriv is looked for before PATH (the image's and Debian's location). */
export const SETPRIV_CANDIDATES = ["/usr/bin/setpriv", "/bin/setpriv"];

let cachedSetpriv: string | null | undefined;

function isExecutable(file: string): boolean {
    try {
        fs.accessSync(file, fs.constants.X_OK);
        return fs.statSync(file).isFile();
    } catch {
        return false;
    }
}

/** `bin` resolved the way execvp would (a path with a `/` relative to `cwd`, else each PATH entry), if executable. */
export function resolveExecutable(bin: string, pathEnv: string | undefined, cwd: string): string | undefined {
    if (bin === "") return undefined;
    if (bin.includes("/")) {
        const abs = path.resolve(cwd, bin);
        return isExecutable(abs) ? abs : undefined;
    }
    for (const dir of (pathEnv ?? "").split(path.delimiter)) {
        if (dir === "") continue;
        const candidate = path.resolve(cwd, dir, bin);
        if (isExecutable(candidate)) return candidate;
    }
    return undefined;
}

/**
 * The setpriv that can tie a child to its parent (`--pdeathsig` works: checked once by running it), or undefined.
 * Only on Linux. Cached for the process.
 */
export function findSetpriv(): string | undefined {
    if (cachedSetpriv !== undefined) return cachedSetpriv ?? undefined;
    cachedSetpriv = null;
    if (process.platform === "linux") {
        const found = [...SETPRIV_CANDIDATES, resolveExecutable("setpriv", process.env.PATH, "/")].find(
            (p): p is string => p !== undefined && isExecutable(p),
        );
        if (found && spawnSync(found, ["--pdeathsig", "KILL", "--", "true"], { stdio: "ignore", timeout: 10000 }).status === 0) {
            cachedSetpriv = found;
        }
    }
    return cachedSetpriv ?? undefined;
}

/** How tool processes are tied to the worker here: "setpriv --pdeathsig KILL", or "none". */
export function parentDeathTie(): "setpriv --pdeathsig KILL" | "none" {
    return findSetpriv() ? "setpriv --pdeathsig KILL" : "none";
}

/**
 * The command line that runs `bin args` so that it is SIGKILLed when the calling worker (its main thread) dies:
 * `setpriv --pdeathsig KILL -- <bin resolved> args`. Unchanged when there is no setpriv, or when `bin` does not
 * resolve to an executable (so that spawn reports that error exactly as before). Throws off the main thread.
 */
export function tieToParent(bin: string, args: string[], pathEnv: string | undefined, cwd: string): { bin: string; args: string[] } {
    if (!isMainThread) {
        throw new Error("tool processes must be spawned on the main thread (PR_SET_PDEATHSIG follows the spawning thread)");
    }
    const setpriv = findSetpriv();
    const resolved = setpriv ? resolveExecutable(bin, pathEnv, cwd) : undefined;
    if (!setpriv || !resolved) return { bin, args };
    return { bin: setpriv, args: ["--pdeathsig", "KILL", "--", resolved, ...args] };
}
