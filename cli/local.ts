/**
 * `lambda-ecs-worker local [--stack DIR] [--out DIR] [--json] [--config k=v] FILE...` (this repository: `npm run
 * local -- ...`): runs a stack's worker end to end on an embedded AWS emulator (moto_server). The stack in DIR (default:
 * the current folder: its Pulumi program, Pulumi.yaml and Dockerfile) is evaluated under the Pulumi mocks and what it
 * declares is created in the emulator; uploads trigger the launcher's own serialized code; every task it starts runs
 * as a container of the stack's worker image (podman) or, when that image is not built, a local worker process with
 * the Dockerfile's ENV. Outputs (and `.error.json` reports) land in --out. Exit code 0 iff every job produced its
 * outputs; 1 when a job failed or the run could not run (no runner, every worker task failed to start: within
 * seconds, with the runner's error); 2 for usage.
 */
import { LocalOptions, cleanup, planLocal, runLocal, summaryTable } from "./local/run";
import { Progress } from "./local/progress";
import { DEFAULT_IMAGE } from "./local/runners";
import { resolveStackDir, stackImage } from "./local/stack-dir";

export const USAGE = `usage: lambda-ecs-worker local [options] FILE...
       (in this repository: npm run local -- [options] FILE...)

Runs the stack's worker end to end on a local AWS emulator (moto_server), with no AWS account: the stack's own bucket,
queues, launcher code and task definition; each FILE is uploaded as a job; each ECS task runs as a container of the
stack's worker image (podman) or, when it is not built, a local worker process with its Dockerfile's ENV.

options:
  --stack DIR          the Pulumi program to run (default: the current folder): DIR/Pulumi.yaml (config keys with
                       defaults), its program (Pulumi.yaml's main, else DIR/index.ts) and the worker's Dockerfile;
                       its image is lambda-ecs-worker/<dir name>:dev (this repository's root: the POV-Ray image)
  --out DIR            where outputs and .error.json reports go (default ./out)
  --max-tasks N        the stack's maxTasks (concurrent worker tasks)
  --json               print only the summary, as JSON, on stdout
  --runner KIND        auto (podman when the image exists, else process) | podman | process (default auto)
  --image REF          worker image for podman (default ${DEFAULT_IMAGE})
  --timeout SECONDS    give up on unfinished jobs after this long, reported as "timed out" (default 600)
  --worker-wait SECONDS  the workers' SQS long-poll wait, WORKER_WAIT_SECONDS (default 1)
  --reconcile-seconds N  run the stack's launcher schedule (drain mode's reconcile, rate(1 minute)) every N s (default 5)
  --config KEY=VALUE   any other config key of Pulumi.yaml (repeatable), e.g. --config renderTimeoutSeconds=60
  --plan               only apply the stack to a fresh emulator and print what it then holds (JSON); no scenes needed

exit code: 0 every job produced its outputs; 1 a job failed, or the run could not run (no runner; every worker task
exited before taking a job: reported within seconds with the runner's stderr); 2 a bad command line
`;

export function parseArgs(argv: string[]): LocalOptions {
    const o: LocalOptions = {
        inputs: [],
        outDir: "out",
        json: false,
        runner: "auto",
        image: DEFAULT_IMAGE,
        timeoutSeconds: 600,
        workerWaitSeconds: 1,
        reconcileSeconds: 5,
        config: {},
    };
    let imageGiven = false;
    const num = (flag: string, v: string | undefined, min: number, max: number) => {
        const n = Number(v);
        if (v === undefined || !Number.isInteger(n) || n < min || n > max) throw new Error(`${flag}: expected an integer from ${min} to ${max}, got ${v ?? "nothing"}`);
        return n;
    };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const [flag, inline] = a.startsWith("--") && a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, undefined];
        const value = () => inline ?? argv[++i];
        switch (flag) {
            case "--out":
                o.outDir = value();
                if (!o.outDir) throw new Error("--out: expected a directory");
                break;
            case "--max-tasks":
                o.maxTasks = num("--max-tasks", value(), 1, 1000);
                break;
            case "--json":
                o.json = true;
                break;
            case "--plan":
                o.plan = true;
                break;
            case "--runner": {
                const v = value();
                if (v !== "auto" && v !== "process" && v !== "podman") throw new Error(`--runner: expected auto, process or podman, got ${v}`);
                o.runner = v;
                break;
            }
            case "--image":
                o.image = value();
                imageGiven = true;
                break;
            case "--stack":
                o.stackDir = resolveStackDir(value());
                break;
            case "--timeout":
                o.timeoutSeconds = num("--timeout", value(), 1, 86400);
                break;
            case "--worker-wait":
                o.workerWaitSeconds = num("--worker-wait", value(), 0, 20);
                break;
            case "--reconcile-seconds":
                o.reconcileSeconds = num("--reconcile-seconds", value(), 1, 3600);
                break;
            case "--config": {
                const v = value() ?? "";
                const eq = v.indexOf("=");
                if (eq <= 0) throw new Error(`--config: expected KEY=VALUE, got ${v}`);
                o.config[v.slice(0, eq)] = v.slice(eq + 1);
                break;
            }
            case "-h":
            case "--help":
                process.stdout.write(USAGE);
                process.exit(0);
            default:
                if (a.startsWith("-")) throw new Error(`unknown option ${a}`);
                o.inputs.push(a);
        }
    }
    o.stackDir ??= resolveStackDir(undefined);
    if (!imageGiven) o.image = stackImage(o.stackDir);
    if (o.inputs.length === 0 && !o.plan) throw new Error("give at least one file to upload as a job, e.g. lambda-ecs-worker local examples/spheres.zip");
    return o;
}

/** The AWS SDK's "Node.js 20 support ends" notice is noise here (the project targets Node 20). */
function quietSdkNotice(): void {
    const emit = process.emitWarning.bind(process) as (...a: any[]) => void;
    (process as any).emitWarning = (warning: any, ...rest: any[]) => {
        if (String((warning as Error)?.message ?? warning).includes("NodeVersionSupportWarning") || rest.includes("NodeVersionSupportWarning")) return;
        emit(warning, ...rest);
    };
}

/** Runs the `local` command with its arguments (after `local`); resolves to the process's exit code. */
export async function main(argv: string[]): Promise<number> {
    quietSdkNotice();
    let o: LocalOptions;
    try {
        o = parseArgs(argv);
    } catch (e) {
        process.stderr.write(`${(e as Error).message}\n\n${USAGE}`);
        return 2;
    }
    // Progress goes to stdout, or to stderr with --json (stdout then carries the JSON summary only).
    const progress = new Progress(o.json ? process.stderr : process.stdout);
    let interrupted = false;
    const onSignal = (sig: NodeJS.Signals) => {
        if (interrupted) return;
        interrupted = true;
        cleanup.interrupted = sig;
        progress.end();
        process.stderr.write(`\n${sig}: stopping the workers and the emulator...\n`);
        cleanup.run().finally(() => process.exit(sig === "SIGINT" ? 130 : sig === "SIGHUP" ? 129 : 143));
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    process.on("SIGHUP", onSignal);
    process.on("exit", () => cleanup.killNow());

    try {
        if (o.plan) {
            process.stdout.write(JSON.stringify(await planLocal(o), null, 2) + "\n");
            return 0;
        }
        const summary = await runLocal(o, progress);
        if (summary.error) {
            const last = summary.startFailures.at(-1);
            const tail = (last?.stderr ?? []).filter((l) => l.trim() !== "").map((l) => `  ${l}\n`).join("");
            process.stderr.write(`lambda-ecs-worker local: ${summary.error}\n${tail ? `last stderr lines of task ${last!.task}:\n${tail}` : ""}`);
        }
        if (o.json) {
            process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
        } else {
            const done = summary.jobs.filter((j) => j.status === "done").length;
            process.stdout.write(`\n${summaryTable(summary.jobs)}\n\n`);
            process.stdout.write(
                `${done} of ${summary.jobs.length} job(s) done in ${summary.seconds.toFixed(1)} s · ${summary.tasksStarted} task(s) ` +
                    `(${summary.runner}) · outputs in ${summary.outDir} · logs in ${summary.logsDir}\n`,
            );
        }
        return summary.ok ? 0 : 1;
    } catch (e) {
        progress.end();
        await cleanup.run();
        process.stderr.write(`lambda-ecs-worker local: ${(e as Error).message}\n`);
        return 1;
    }
}

