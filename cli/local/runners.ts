/**
 * Runs one ECS task (as recorded by the emulator's RunTask) on this machine: as a podman container of the built worker
 * image, or as a local Node process of worker-image/src/main.ts. Both get the same environment: the task definition's
 * container environment + the RunTask overrides, with the emulator's endpoint and fake credentials.
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import { ROOT } from "./stack";
import { LineTail, TookJobWatch } from "./start-failures";

export type RunnerKind = "process" | "podman";

export const DEFAULT_IMAGE = "lambda-ecs-worker/povray:dev";
/** podman's global flags on these machines (as in scripts/build-image.sh). */
export const PODMAN_FLAGS = ["--runtime", "runc", "--cgroup-manager=cgroupfs"];

export interface TaskSpec {
    /** Short task id (last part of the ARN). */
    id: string;
    /** The container environment the task would get on ECS. */
    env: Record<string, string>;
    /** The container definition (user, read-only root, mount points...). */
    container: any;
}

export interface RunningTask {
    spec: TaskSpec;
    pid?: number;
    /** Resolves with the exit code when the worker has exited. */
    exited: Promise<number>;
    /** Ask the worker to stop (SIGTERM / podman stop), force after a grace period. */
    stop(graceSeconds?: number): Promise<number>;
    /** Synchronous last resort. */
    killNow(): void;
    /** Whether the worker has taken a job (its first "received" log event on stdout). */
    tookJob?(): boolean;
    /** The last lines of its stderr (the runner's own error when it could not start: podman's, spawn's). */
    stderrTail?(): string[];
}

export interface Runner {
    kind: RunnerKind;
    describe: string;
    start(spec: TaskSpec, logFile: string): RunningTask;
}

function povrayInstalled(): boolean {
    return spawnSync("povray", ["--version"], { stdio: "ignore" }).error === undefined;
}

export function podmanAvailable(image: string): boolean {
    const r = spawnSync("podman", [...PODMAN_FLAGS, "image", "exists", image], { stdio: "ignore" });
    return r.error === undefined && r.status === 0;
}

/**
 * Follows a worker spawned with piped stdout/stderr: both go to `logFile`; stdout is watched for the first event
 * that means it took a job, stderr's last 20 lines are kept. `exited` resolves with the exit code once its output is
 * read (or 1 s after the exit when a descendant still holds a pipe); 127 with spawn's error when it did not start.
 */
function follow(child: ChildProcess, logFile: string): Pick<RunningTask, "exited" | "tookJob" | "stderrTail"> {
    const fd = fs.openSync(logFile, "a");
    const watch = new TookJobWatch();
    const tail = new LineTail(20);
    let closed = false;
    const write = (d: Buffer) => {
        if (closed) return;
        try {
            fs.writeSync(fd, d);
        } catch {}
    };
    child.stdout?.on("data", (d: Buffer) => {
        write(d);
        watch.push(d.toString("utf8"));
    });
    child.stderr?.on("data", (d: Buffer) => {
        write(d);
        tail.push(d.toString("utf8"));
    });
    const exited = new Promise<number>((resolve) => {
        let code: number | undefined;
        const done = (c: number) => {
            code ??= c;
            if (!closed) {
                closed = true; // once: a second close could hit a reused descriptor
                try {
                    fs.closeSync(fd);
                } catch {}
            }
            resolve(code);
        };
        child.on("error", (e) => {
            const line = e.message; // "spawn podman ENOENT"
            tail.add(line);
            write(Buffer.from(`${line}\n`));
            if (child.pid === undefined) done(127); // spawn failed (ENOENT, EACCES...): no exit or close follows
        });
        child.once("exit", (c, signal) => {
            code ??= c ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1);
            setTimeout(() => done(code!), 1000).unref();
        });
        child.once("close", () => done(code ?? 1));
    });
    return { exited, tookJob: () => watch.tookJob, stderrTail: () => tail.get() };
}

/**
 * The worker runtime as a local Node process: its TypeScript sources through ts-node when this CLI runs from them (this
 * repository), else the compiled runtime the package ships (`dist/worker-image/src/main.js`, e.g. `npx
 * lambda-ecs-worker local` in another project).
 */
export function localWorkerCommand(fromSources = __filename.endsWith(".ts")): [string, ...string[]] {
    return fromSources
        ? [process.execPath, "-r", "ts-node/register/transpile-only", path.join(ROOT, "worker-image/src/main.ts")]
        : [process.execPath, path.join(ROOT, "dist/worker-image/src/main.js")];
}

/**
 * `LEW_LOCAL_WORKER_ARGV` (a JSON array): the command a local worker process runs instead of the worker, e.g. one
 * that fails to start, to try how a run reports it (test/local.test.ts). Unset: the worker.
 */
export function workerArgv(env: NodeJS.ProcessEnv = process.env): [string, ...string[]] | undefined {
    const raw = env.LEW_LOCAL_WORKER_ARGV;
    if (!raw) return undefined;
    const argv = JSON.parse(raw);
    if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === "string")) {
        throw new Error(`LEW_LOCAL_WORKER_ARGV: expected a JSON array of strings, got ${raw}`);
    }
    return argv as [string, ...string[]];
}

/**
 * Local Node process of the worker runtime ({@link localWorkerCommand}), with `imageEnv` (the
 * stack's Dockerfile ENV, e.g. WORKER_COMMAND) under the task's environment. POV-Ray is needed unless it runs a command.
 */
export function processRunner(runId: string, scratchRoot: string, imageEnv: Record<string, string> = {}): Runner {
    if (!imageEnv.WORKER_COMMAND && !povrayInstalled()) {
        throw new Error("povray not found on PATH: install it (Debian/Ubuntu: apt-get install -y povray) or build the worker image (npm run image)");
    }
    return {
        kind: "process",
        describe: `local Node processes (${path.relative(ROOT, localWorkerCommand().at(-1)!)})`,
        start(spec, logFile) {
            const scratch = path.join(scratchRoot, spec.id);
            fs.mkdirSync(scratch, { recursive: true });
            const [cmd, ...args] = workerArgv() ?? localWorkerCommand();
            const child = spawn(
                cmd,
                [...args, `--lew-local-run=${runId}`],
                {
                    cwd: ROOT,
                    env: {
                        PATH: process.env.PATH ?? "/usr/bin:/bin",
                        HOME: process.env.HOME ?? os.tmpdir(),
                        TS_NODE_TRANSPILE_ONLY: "true",
                        ...imageEnv,
                        ...spec.env,
                        WORKER_SCRATCH_DIR: scratch,
                        LEW_LOCAL_RUN: runId,
                    },
                    stdio: ["ignore", "pipe", "pipe"],
                },
            );
            const { exited, tookJob, stderrTail } = follow(child, logFile);
            const alive = () => child.pid !== undefined && child.exitCode === null && child.signalCode === null;
            return {
                spec,
                pid: child.pid,
                exited,
                tookJob,
                stderrTail,
                async stop(graceSeconds = 10) {
                    if (alive()) {
                        child.kill("SIGTERM");
                        const t = setTimeout(() => alive() && child.kill("SIGKILL"), graceSeconds * 1000);
                        await exited;
                        clearTimeout(t);
                    }
                    fs.rmSync(scratch, { recursive: true, force: true });
                    return exited;
                },
                killNow() {
                    if (alive()) child.kill("SIGKILL");
                },
            };
        },
    };
}

/** The podman run flags the task's container definition asks for (user, read-only root, tmpfs mounts). */
export function containerFlags(container: any): string[] {
    const flags: string[] = [];
    if (container?.user) flags.push("--user", String(container.user));
    if (container?.readonlyRootFilesystem) flags.push("--read-only");
    if (container?.linuxParameters?.initProcessEnabled) flags.push("--init");
    for (const m of container?.mountPoints ?? []) {
        if (m?.containerPath) flags.push("--tmpfs", m.containerPath);
    }
    return flags;
}

/** A warning when the image was built before the last change to worker-image/ (the container would run old code). */
export function imageStaleness(image: string): string | undefined {
    const r = spawnSync("podman", [...PODMAN_FLAGS, "image", "inspect", "--format", "{{.Created.Unix}}", image], { encoding: "utf8" });
    const created = Number(r.stdout?.trim()) * 1000;
    if (!created) return undefined;
    let newest = 0;
    let newestFile = "";
    const walk = (p: string) => {
        const st = fs.statSync(p, { throwIfNoEntry: false });
        if (!st) return;
        if (st.isDirectory()) {
            for (const n of fs.readdirSync(p)) if (n !== "node_modules" && n !== "dist") walk(path.join(p, n));
        } else if (st.mtimeMs > newest) {
            newest = st.mtimeMs;
            newestFile = p;
        }
    };
    walk(path.join(ROOT, "worker-image"));
    return newest > created
        ? `image ${image} is older than ${path.relative(ROOT, newestFile)}: rebuild it with \`npm run image\` to run the current worker`
        : undefined;
}

/** A container of the built worker image per task. */
export function podmanRunner(runId: string, image: string): Runner {
    if (spawnSync("podman", ["--version"], { stdio: "ignore" }).error) {
        throw new Error("podman not found on PATH: install podman, runc and catatonit (npm run setup), or use --runner process");
    }
    if (!podmanAvailable(image)) {
        throw new Error(`podman image ${image} not found: build it with \`npm run image\` (or use --runner process)`);
    }
    const nofile = spawnSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).stdout.trim() || "1024";
    return {
        kind: "podman",
        describe: `podman containers of ${image}`,
        start(spec, logFile) {
            const name = `lew-local-${runId}-${spec.id}`.slice(0, 120);
            const env = { ...spec.env, LEW_LOCAL_RUN: runId };
            const args = [
                ...PODMAN_FLAGS,
                "run",
                "--rm",
                "--name",
                name,
                "--label",
                `lew-local=${runId}`,
                "--network",
                "host",
                "--ulimit",
                `nofile=${nofile}:${nofile}`,
                "--ulimit",
                "nproc=20000:20000",
                ...containerFlags(spec.container),
                ...Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]),
                image,
            ];
            const child = spawn("podman", args, { stdio: ["ignore", "pipe", "pipe"] });
            const { exited, tookJob, stderrTail } = follow(child, logFile);
            const alive = () => child.pid !== undefined && child.exitCode === null && child.signalCode === null;
            const podman = (...a: string[]) =>
                new Promise<void>((resolve) => {
                    const p = spawn("podman", [...PODMAN_FLAGS, ...a], { stdio: "ignore" });
                    p.once("exit", () => resolve());
                    p.once("error", () => resolve());
                });
            return {
                spec,
                pid: child.pid,
                exited,
                tookJob,
                stderrTail,
                async stop(graceSeconds = 10) {
                    if (alive()) {
                        await podman("stop", "--ignore", "-t", String(graceSeconds), name);
                        const t = setTimeout(() => alive() && child.kill("SIGKILL"), 5000);
                        await exited;
                        clearTimeout(t);
                    }
                    // `--rm` removes it; make sure even when the podman client was killed.
                    await podman("rm", "-f", "--ignore", name);
                    return exited;
                },
                killNow() {
                    spawnSync("podman", [...PODMAN_FLAGS, "rm", "-f", "--ignore", "-t", "0", name], { stdio: "ignore" });
                    if (alive()) child.kill("SIGKILL");
                },
            };
        },
    };
}
