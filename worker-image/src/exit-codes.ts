/**
 * The worker process's exit codes. For a one-shot (per-job) task they say whether the worker settled its job, so that
 * whoever sees the task stop knows whether anything is left to do: the component routes ECS's "task stopped" event of
 * a per-job task to the launcher, which ends the job (dead-letter entry + `Job Failed`) only when its container's exit
 * code is not one of {@link SETTLED_EXIT_CODES}. The launcher's copy of the contract is `WORKER_EXIT_CODES` /
 * `SETTLED_EXIT_CODES` in functions/launcher-settings.ts (a test keeps both equal).
 */
export const EXIT_CODES = {
    /** Ended with its outputs, or nothing to do (the input was replaced or deleted); in the queue modes: drained or stopped. */
    done: 0,
    /** Crash: an uncaught error. Not settled. */
    crashed: 1,
    /** Configuration error (a bad variable): no job was taken. Not settled. */
    configuration: 2,
    /** One-shot: the job failed and the worker settled it (error report, dead-letter entry, `Job Failed`). */
    failed: 3,
    /** One-shot: stopped (SIGTERM) before the job finished, and dead-lettered by the worker (with `Job Failed`). */
    stopped: 4,
    /** Forced exit after SIGTERM before everything was settled (128 + 15, as a SIGTERM death). Not settled. */
    forced: 143,
} as const;

/** The exit codes of a worker that settled its job (one-shot). Anything else, or no exit code at all, did not. */
export const SETTLED_EXIT_CODES: readonly number[] = [EXIT_CODES.done, EXIT_CODES.failed, EXIT_CODES.stopped];
