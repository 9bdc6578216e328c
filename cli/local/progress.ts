/** Progress display: a redrawn status line on a terminal, plain log lines otherwise; and the final summary table. */

export interface Counts {
    queued: number;
    running: number;
    done: number;
    failed: number;
    total: number;
    tasksRunning: number;
    tasksStarted: number;
    seconds: number;
}

export interface JobResult {
    job: string;
    input: string;
    status: "done" | "failed";
    /** Output file (PNG) when done, the error report when there is one. */
    output?: string;
    reason?: string;
    seconds: number;
}

export class Progress {
    private readonly tty: boolean;
    private lastLine = "";
    private lastPlain = 0;
    private drawn = false;

    constructor(private readonly out: NodeJS.WriteStream, private readonly quiet = false) {
        this.tty = !!out.isTTY && !quiet;
    }

    static statusLine(c: Counts): string {
        return (
            `jobs ${c.total}: ${c.queued} queued · ${c.running} running · ${c.done} done · ${c.failed} failed` +
            ` | tasks running ${c.tasksRunning} (started ${c.tasksStarted}) | ${c.seconds.toFixed(0)} s`
        );
    }

    /** Redraws the status line (TTY), or prints it every 10 s (plain). */
    update(c: Counts): void {
        if (this.quiet) return;
        const line = Progress.statusLine(c);
        if (this.tty) {
            if (line !== this.lastLine) this.out.write(`\r\x1b[2K${line}`);
            this.drawn = true;
        } else if (line !== this.lastLine && Date.now() - this.lastPlain >= 10000) {
            this.out.write(`${line}\n`);
            this.lastPlain = Date.now();
        }
        this.lastLine = line;
    }

    /** A log line (above the status line on a TTY). */
    log(message: string): void {
        if (this.quiet) return;
        if (this.tty && this.drawn) this.out.write(`\r\x1b[2K${message}\n${this.lastLine}`);
        else this.out.write(`${message}\n`);
    }

    /** Clears the status line. */
    end(): void {
        if (this.tty && this.drawn) this.out.write(`\r\x1b[2K`);
        this.drawn = false;
    }
}

/** The summary table: job, result (output file or reason), seconds. */
export function summaryTable(results: JobResult[]): string {
    const rows = results.map((r) => [r.job, r.status === "done" ? `ok  ${r.output}` : `FAILED  ${oneLine(r.reason ?? "")}`, r.seconds.toFixed(1)]);
    const head = ["job", "result", "seconds"];
    const width = (i: number) => Math.max(head[i].length, ...rows.map((r) => r[i].length));
    const w = [width(0), Math.min(width(1), 100), width(2)];
    const fmt = (r: string[]) => `${r[0].padEnd(w[0])}  ${truncate(r[1], 100).padEnd(w[1])}  ${r[2].padStart(w[2])}`;
    return [fmt(head), fmt(w.map((n) => "-".repeat(n))), ...rows.map(fmt)].join("\n");
}

function oneLine(s: string): string {
    return s.replace(/\s+/g, " ").trim();
}

function truncate(s: string, n: number): string {
    return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}
