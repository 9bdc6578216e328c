/**
 * Fail fast when workers cannot start: a task whose worker (container or process) exits before it has taken a job is
 * a start failure (missing image, missing podman piece such as catatonit, a command that does not exist...). Each is
 * reported at once with the last lines of its stderr; when every task started so far failed that way and jobs are
 * still waiting, the run stops with that error instead of waiting for the timeout.
 */

/** How one worker's exit is read. */
export type ExitKind =
    /** The run was stopping: the exit was asked for. */
    | "stopped"
    /** Exit code 0: the worker drained the queue (or finished its one-shot job). */
    | "drained"
    /** Non-zero after it had taken a job: its jobs are redelivered and the launcher's reconcile starts another task. */
    | "crashed"
    /** Non-zero before it took any job: it never ran. */
    | "start-failure";

export interface WorkerExit {
    id: string;
    code: number;
    stopping: boolean;
    /** Whether the worker had taken a job (logged a "received" event) before it exited. */
    tookJob: boolean;
    /** The last lines of its stderr (podman's own error, a crash's message...). */
    stderr: string[];
}

export function exitKind(e: Pick<WorkerExit, "code" | "stopping" | "tookJob">): ExitKind {
    if (e.stopping) return "stopped";
    if (e.code === 0) return "drained";
    return e.tookJob ? "crashed" : "start-failure";
}

/** The stderr line that most likely names the error: the last one that reads like one, else the last non-empty one. */
export function errorLine(stderr: string[]): string | undefined {
    const lines = stderr.map((l) => l.trim()).filter((l) => l !== "");
    return [...lines].reverse().find((l) => /error|ENOENT|EACCES|not found|no such|cannot|can't|failed|denied/i.test(l)) ?? lines.at(-1);
}

/** One start failure in one line: task, exit code and the error line of its stderr. */
export function startFailureText(e: Pick<WorkerExit, "id" | "code" | "stderr">): string {
    const line = errorLine(e.stderr);
    return `task ${e.id} exited with ${e.code} before taking a job${line ? `: ${line}` : " (nothing on stderr)"}`;
}

/** What to log at once for a start failure: the one-line text, then its stderr's last lines, indented. */
export function startFailureReport(e: Pick<WorkerExit, "id" | "code" | "stderr">): string[] {
    const tail = e.stderr.filter((l) => l.trim() !== "");
    // A tail of one line is the error line the text already names.
    return [startFailureText(e), ...(tail.length > 1 ? [`  last stderr lines of task ${e.id}:`, ...tail.map((l) => `    ${l}`)] : [])];
}

/**
 * The run's error when it must stop now: every task started so far has exited, each before taking a job (stopping
 * exits excluded), and jobs are waiting. Undefined while any task runs, any took a job or drained, or no job waits.
 */
export function startFailureVerdict(exits: WorkerExit[], tasksStarted: number, jobsWaiting: number): string | undefined {
    const counted = exits.filter((e) => !e.stopping);
    if (jobsWaiting === 0 || counted.length === 0 || counted.length < tasksStarted) return undefined;
    if (!counted.every((e) => exitKind(e) === "start-failure")) return undefined;
    const n = counted.length;
    const last = counted.at(-1)!;
    // The error first: the summary table cuts a long reason.
    return `no worker could start: ${errorLine(last.stderr) ?? "nothing on stderr"} (task ${last.id} exited with ${last.code} before taking a job; ${n} task${n === 1 ? "" : "s"} tried)`;
}

/** Keeps the last `max` lines of a stream (a ring buffer of lines; a line longer than 1000 characters is cut). */
export class LineTail {
    private readonly lines: string[] = [];
    private partial = "";

    constructor(private readonly max = 20) {}

    push(chunk: string): void {
        const parts = (this.partial + chunk).split(/\r?\n/);
        this.partial = parts.pop() ?? "";
        for (const l of parts) this.add(l);
        if (this.partial.length > 1000) {
            this.add(this.partial);
            this.partial = "";
        }
    }

    /** A line of our own (e.g. spawn's error). */
    add(line: string): void {
        this.lines.push(line.length > 1000 ? `${line.slice(0, 999)}…` : line);
        if (this.lines.length > this.max) this.lines.shift();
    }

    get(): string[] {
        return this.partial ? [...this.lines, this.partial].slice(-this.max) : [...this.lines];
    }
}

/** The worker's JSON log events that mean it has taken a job (an SQS message, or its one-shot job). */
export const TOOK_JOB_EVENTS = new Set(["received"]);

/** Watches a worker's stdout (one JSON object per line) for the first event that means it took a job. */
export class TookJobWatch {
    tookJob = false;
    private partial = "";

    push(chunk: string): void {
        if (this.tookJob) return;
        const parts = (this.partial + chunk).split("\n");
        this.partial = (parts.pop() ?? "").slice(-100000);
        for (const l of parts) {
            if (!l.includes('"event"')) continue;
            try {
                if (TOOK_JOB_EVENTS.has(JSON.parse(l)?.event)) {
                    this.tookJob = true;
                    return;
                }
            } catch {}
        }
    }
}

/** A start failure as the summary lists it. */
export interface StartFailure {
    task: string;
    code: number;
    stderr: string[];
}

/** The run's record of worker exits: logs each start failure at once and holds the run's error once there is one. */
export class StartFailures {
    readonly failures: StartFailure[] = [];
    /** Set when the run must stop (startFailureVerdict). */
    error?: string;
    private readonly exits: WorkerExit[] = [];

    constructor(private readonly log: (line: string) => void) {}

    /** One worker's exit; `tasksStarted` and `jobsWaiting` as they are now. */
    record(e: WorkerExit, tasksStarted: number, jobsWaiting: number): void {
        this.exits.push(e);
        if (exitKind(e) !== "start-failure") return;
        this.failures.push({ task: e.id, code: e.code, stderr: e.stderr });
        for (const l of startFailureReport(e)) this.log(l);
        this.error ??= startFailureVerdict(this.exits, tasksStarted, jobsWaiting);
    }
}
