/**
 * One-shot mode (JOB_BUCKET + JOB_KEY [+ JOB_ETAG], per-job tasks): one job from the environment, no queue. No queue
 * will redeliver it, so every end is final, and the exit code says whether the worker settled it (exit-codes.ts): 0
 * done (outputs, or an input replaced or deleted: nothing to do), 3 failed and settled (error report, dead-letter
 * entry, `Job Failed`), 4 stopped before it finished and dead-lettered. A dead-letter send that fails leaves the job
 * unsettled (1 failed, 143 stopped, no `Job Failed` from the worker): the launcher ends it when ECS reports the task
 * stopped, with exactly one dead-letter entry and one `Job Failed` of its own.
 */
import * as fs from "fs";
import { bareEtag, jobId } from "./binding";
import { WorkerConfig } from "./config";
import { errorMessage } from "./errors";
import { FinishedJob, failureClassOf } from "./events";
import { EXIT_CODES } from "./exit-codes";
import { Job } from "./keys";
import { Logger } from "./log";
import { RunJob } from "./message";
import { Stopper } from "./receive-loop";
import { Settler } from "./settle";

export interface OneShotDeps {
    runJob: RunJob;
    settler: Pick<Settler, "writeErrorReport" | "sendToDlq">;
    stopper: Stopper;
    log: Logger;
    /** Told about the job once it has ended (job events, metrics); never throws. */
    finished?: (jobs: FinishedJob[]) => Promise<void>;
}

/** Runs the job and returns the exit code (EXIT_CODES): 0 done, 3 failed, 4 stopped; 1 or 143 when not settled. */
export async function runOneShot(
    cfg: Pick<WorkerConfig, "scratchDir" | "dlqUrl" | "jobEtag">,
    deps: OneShotDeps,
    bucket: string,
    key: string,
): Promise<number> {
    const { runJob, settler, stopper, log } = deps;
    await fs.promises.mkdir(cfg.scratchDir, { recursive: true });
    // Bound to the version the S3 event named (JOB_ETAG), as the launcher computes the job's id; else to the download.
    const etag = bareEtag(cfg.jobEtag);
    const job: Job = { bucket, key, ...(etag !== undefined ? { etag } : {}) };
    const tracked = stopper.track();
    log("received", { mode: "one-shot", bucket, key, ...(etag !== undefined ? { etag, jobId: jobId(job) } : {}) });
    const outcome = await runJob(job, tracked.signal, 1);
    tracked.done();
    // The job as bound to its input's ETag (once downloaded), for its jobId.
    const boundJob: Job = ("job" in outcome && outcome.job) || job;
    const ended = (reason?: string) => {
        const failure = reason === undefined ? undefined : { failureClass: failureClassOf(outcome.status), reason, errorReport: outcome.status !== "aborted" };
        return deps.finished?.([{ job: boundJob, attempts: 1, stats: outcome.stats, failure }]);
    };
    const exit = (code: number, reason: string) => {
        log("exiting", { reason, code });
        return code;
    };
    if (outcome.status === "ok") {
        await ended();
        return exit(EXIT_CODES.done, "one-shot job done");
    }
    if (outcome.status === "stale") {
        // The input was replaced (the newer upload has its own job) or deleted while the job ran: nothing was written.
        return exit(EXIT_CODES.done, `one-shot job stale: ${outcome.reason}`);
    }
    /** Whether the job is now in the dead-letter queue. */
    const deadLetter = async (reason: string): Promise<boolean> => {
        if (!cfg.dlqUrl) return false;
        try {
            const body = { bucket, key, ...(boundJob.etag !== undefined ? { etag: boundJob.etag } : {}) };
            await settler.sendToDlq(JSON.stringify(body), reason, 1, [key], undefined, [jobId(boundJob)]);
            return true;
        } catch (err) {
            log("dlq_send_failed", { key, reason: errorMessage(err) });
            return false;
        }
    };
    if (outcome.status === "aborted") {
        // No queue will redeliver it: dead-letter it so that the job is not silently lost.
        const reason = `interrupted (${stopper.reason}) before the job finished`;
        if (!(await deadLetter(reason))) return exit(EXIT_CODES.forced, "stopped before the one-shot job finished; not dead-lettered");
        await ended(reason);
        return exit(EXIT_CODES.stopped, "stopped before the one-shot job finished; dead-lettered");
    }
    // No queue will redeliver a one-shot job: any failure is final. Report it and dead-letter it.
    const reason = outcome.reason;
    try {
        await settler.writeErrorReport(boundJob, reason, 1);
    } catch (err) {
        log("error_report_failed", { key, reason: errorMessage(err) });
    }
    if (!(await deadLetter(reason))) return exit(EXIT_CODES.crashed, `one-shot job failed, not dead-lettered: ${reason}`);
    await ended(reason);
    return exit(EXIT_CODES.failed, `one-shot job failed: ${reason}`);
}
