/**
 * One-shot mode (JOB_BUCKET + JOB_KEY, per-job tasks): one job from the environment, no queue. No queue will
 * redeliver it, so every failure is final: error report + DLQ, exit 1; stopped before it finished: DLQ, exit 143.
 */
import * as fs from "fs";
import { jobId } from "./binding";
import { WorkerConfig } from "./config";
import { errorMessage } from "./errors";
import { FinishedJob, failureClassOf } from "./events";
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

/** Runs the job and returns the exit code: 0 done, 1 failed, 143 stopped. */
export async function runOneShot(
    cfg: Pick<WorkerConfig, "scratchDir" | "dlqUrl">,
    deps: OneShotDeps,
    bucket: string,
    key: string,
): Promise<number> {
    const { runJob, settler, stopper, log } = deps;
    await fs.promises.mkdir(cfg.scratchDir, { recursive: true });
    const job: Job = { bucket, key };
    const tracked = stopper.track();
    log("received", { mode: "one-shot", bucket, key });
    const outcome = await runJob(job, tracked.signal, 1);
    tracked.done();
    // Every one-shot end is final (no queue redelivers it); a failure gets an error report, except when stopped.
    const ended = (reason?: string) => {
        const bound = ("job" in outcome && outcome.job) || job;
        const failure = reason === undefined ? undefined : { failureClass: failureClassOf(outcome.status), reason, errorReport: outcome.status !== "aborted" };
        return deps.finished?.([{ job: bound, attempts: 1, stats: outcome.stats, failure }]);
    };
    if (outcome.status === "ok") {
        await ended();
        log("exiting", { reason: "one-shot job done", code: 0 });
        return 0;
    }
    if (outcome.status === "stale") {
        // The input was replaced while the job ran: the newer upload has its own job. Nothing was written.
        log("exiting", { reason: `one-shot job stale: ${outcome.reason}`, code: 0 });
        return 0;
    }
    // The job as bound to its input's ETag (once downloaded), for its jobId.
    const boundJob: Job = ("job" in outcome && outcome.job) || job;
    const deadLetter = async (reason: string) => {
        if (!cfg.dlqUrl) return;
        try {
            await settler.sendToDlq(JSON.stringify({ bucket, key }), reason, 1, [key], undefined, [jobId(boundJob)]);
        } catch (err) {
            log("dlq_send_failed", { key, reason: errorMessage(err) });
        }
    };
    if (outcome.status === "aborted") {
        // No queue will redeliver it: dead-letter it so that the job is not silently lost.
        await deadLetter(`interrupted (${stopper.reason}) before the job finished`);
        await ended(`interrupted (${stopper.reason}) before the job finished`);
        log("exiting", { reason: "stopped before the one-shot job finished", code: 143 });
        return 143;
    }
    // No queue will redeliver a one-shot job: any failure is final. Report it and dead-letter it.
    const reason = outcome.reason;
    try {
        await settler.writeErrorReport(boundJob, reason, 1);
    } catch (err) {
        log("error_report_failed", { key, reason: errorMessage(err) });
    }
    await deadLetter(reason);
    await ended(reason);
    log("exiting", { reason: `one-shot job failed: ${reason}`, code: 1 });
    return 1;
}
