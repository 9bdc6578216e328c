/**
 * One SQS message from receipt to settlement: parse it, run its jobs one after another with heartbeats extending its
 * visibility, then settle it: delete (all ok, or an s3:TestEvent), release now (the worker is stopping), or the
 * Settler's failure handling (transient, timeout, permanent).
 */
import { Message } from "@aws-sdk/client-sqs";
import { errorMessage } from "./errors";
import { FinishedJob, finishedJobs } from "./events";
import { Outcome } from "./job";
import { Job, parseMessage } from "./keys";
import { Logger } from "./log";
import { InFlight, Settler } from "./settle";

/** Runs one job and says how it went (JobRunner.runJob). */
export type RunJob = (job: Job, signal: AbortSignal, receiveCount: number, processed?: () => void) => Promise<Outcome>;

export interface MessageHandlerDeps {
    runJob: RunJob;
    settler: Pick<Settler, "startHeartbeat" | "deleteMessage" | "release"> & Partial<Pick<Settler, "now">> & {
        /** Resolves to true when the jobs have ended (see Settler.settleFailures). */
        settleFailures(...a: Parameters<Settler["settleFailures"]>): Promise<boolean | void>;
    };
    log: Logger;
    /** Told about the jobs of a message once they have ended (job events, metrics); never throws. */
    finished?: (jobs: FinishedJob[]) => Promise<void>;
}

export class MessageHandler {
    constructor(private readonly deps: MessageHandlerDeps) {}

    /**
     * Processes one SQS message (all its jobs) and settles it: delete, release, dead-letter or leave. Never throws.
     * `signal` aborts the jobs (the worker is stopping). `processed` is called once the last job's processor has
     * finished (before its uploads), or not at all when the message settles without reaching it.
     */
    async handle(msg: Message, signal: AbortSignal, processed?: () => void): Promise<void> {
        const { runJob, settler, log } = this.deps;
        const receiveCount = Number(msg.Attributes?.ApproximateReceiveCount ?? "1") || 1;
        const flight: InFlight = { receiptHandle: msg.ReceiptHandle!, receivedAt: settler.now?.() ?? Date.now(), signal, settled: false };
        log("received", { messageId: msg.MessageId, receiveCount });
        const stopHeartbeat = settler.startHeartbeat(flight, msg.MessageId);
        try {
            let parsed;
            try {
                parsed = parseMessage(msg.Body);
            } catch (err) {
                await settler.settleFailures(msg, flight, receiveCount, [{ status: "permanent", reason: errorMessage(err) }]);
                return;
            }
            if (parsed.kind === "test") {
                await settler.deleteMessage(flight, msg.MessageId, { test: true });
                return;
            }
            const outcomes: Outcome[] = [];
            for (const [i, job] of parsed.jobs.entries()) {
                if (signal.aborted) {
                    outcomes.push({ status: "aborted" });
                    break;
                }
                const last = i === parsed.jobs.length - 1;
                outcomes.push(await runJob(job, signal, receiveCount, last ? processed : undefined));
            }
            if (outcomes.some((o) => o.status === "aborted")) {
                await settler.release(flight, msg.MessageId, 0, "worker stopping");
                return;
            }
            // Permanent failures and timeouts on the last receive get an error report (Settler.settleFailures).
            const ended = () => this.deps.finished?.(finishedJobs(parsed.jobs, outcomes, receiveCount, (s) => s !== "transient"));
            // A stale job (its input was replaced: the newer upload has its own message) is done, having written nothing.
            const settled = (o: Outcome) => o.status === "ok" || o.status === "stale";
            if (outcomes.every(settled)) {
                const stale = outcomes.filter((o) => o.status === "stale").length;
                await settler.deleteMessage(flight, msg.MessageId, { jobs: parsed.jobs.length, ...(stale ? { stale } : {}) });
                await ended();
                return;
            }
            if ((await settler.settleFailures(msg, flight, receiveCount, outcomes.filter((o) => !settled(o)))) === true) await ended();
        } catch (err) {
            // Something unexpected (e.g. S3/SQS down while settling): leave the message for redelivery.
            log("failed", { messageId: msg.MessageId, reason: errorMessage(err), action: "left for redelivery" });
        } finally {
            stopHeartbeat();
        }
    }
}
