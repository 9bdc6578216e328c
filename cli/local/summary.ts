/** The summary of one `npm run local` (what `--json` prints). */
import { JobResult } from "./progress";
import { StartFailure } from "./start-failures";

export interface LocalSummary {
    ok: boolean;
    /** Marker of this run: in the argv of every worker process (`--lew-local-run=<id>`) and launcher process, and the
     * `lew-local=<id>` label of every container. */
    runId: string;
    /** The emulator's endpoint (stopped by now). */
    endpoint: string;
    runner: string;
    outDir: string;
    logsDir: string;
    seconds: number;
    /** Where the time went: stack + emulator + launcher + uploads; until every job settled; stopping everything. */
    phases: { setupSeconds: number; jobsSeconds: number; shutdownSeconds: number };
    tasksStarted: number;
    launcherInvocations: number;
    /** Scheduled (reconcile) events handed to the launcher. */
    scheduledInvocations: number;
    jobs: JobResult[];
    /** Tasks whose worker exited before it took a job, each with its exit code and the last lines of its stderr. */
    startFailures: StartFailure[];
    /** Why the run stopped early: every worker task it started failed to start (jobs then fail with this reason). */
    error?: string;
    notes: string[];
}

/** Milestones of the run (epoch ms): started, setup done, every job settled, everything stopped. */
export interface Timeline {
    started: number;
    setUp: number;
    settled: number;
    ended: number;
}

export type SummaryFacts = Omit<LocalSummary, "ok" | "seconds" | "phases">;

/** The summary: ok iff every job is done; seconds and phases from the timeline. */
export function buildSummary(facts: SummaryFacts, t: Timeline): LocalSummary {
    const setupSeconds = (t.setUp - t.started) / 1000;
    return {
        ok: facts.jobs.every((r) => r.status === "done"),
        runId: facts.runId,
        endpoint: facts.endpoint,
        runner: facts.runner,
        outDir: facts.outDir,
        logsDir: facts.logsDir,
        seconds: (t.ended - t.started) / 1000,
        phases: {
            setupSeconds,
            jobsSeconds: (t.settled - t.started) / 1000 - setupSeconds,
            shutdownSeconds: (t.ended - t.settled) / 1000,
        },
        tasksStarted: facts.tasksStarted,
        launcherInvocations: facts.launcherInvocations,
        scheduledInvocations: facts.scheduledInvocations,
        jobs: facts.jobs,
        startFailures: facts.startFailures,
        ...(facts.error !== undefined ? { error: facts.error } : {}),
        notes: facts.notes,
    };
}
