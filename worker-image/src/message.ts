/**
 * One SQS message from receipt to settlement: parse it, run its jobs one after another with heartbeats extending its
 * visibility, then settle it: delete (all ok, or an s3:TestEvent), re-send it (the worker is stopping: an interruption;
 * or a failure that gets another attempt), or dead-letter it (permanent, the last attempt, the 6th interruption in a
 * row, or attempts used up by crashes before this receive); see settle.ts for how attempts are counted.
 */
import { Message } from "@aws-sdk/client-sqs";
import { errorMessage } from "./errors";
import { FinishedJob, failureClassOf, finishedJobs } from "./events";
import { Outcome } from "./job";
import { Job, parseMessage } from "./keys";
import { Logger } from "./log";
import { Delivery, InFlight, Settler, attemptOf, deliveryOf, interruptedReason } from "./settle";

/** Runs one job (JobRunner.runJob); `attempt` is the job's attempt number (settle.ts), for logs and events. */
export type RunJob = (job: Job, signal: AbortSignal, attempt: number, processed?: () => void) => Promise<Outcome>;

/** The failure class of a job whose task stopped without settling it (crashes), in its `Job Failed` event. */
export const TASK_STOPPED_FAILURE_CLASS = "task-stopped";

export interface MessageHandlerDeps {
    runJob: RunJob;
    settler: Pick<Settler, "startHeartbeat" | "deleteMessage"> &
        Partial<Pick<Settler, "now">> & {
            /** Resolves to true when the jobs have ended (see Settler.settleFailures). */
            settleFailures(msg: Message, flight: InFlight, delivery: Delivery, failures: Outcome[]): Promise<boolean | void>;
            /** Resolves to true when the jobs have ended: dead-lettered after too many interruptions in a row. */
            interrupted(msg: Message, flight: InFlight, delivery: Delivery, jobs: Job[]): Promise<boolean | void>;
            attemptsUsedUp(delivery: Delivery): boolean;
            deadLetterStopped(msg: Message, flight: InFlight, delivery: Delivery, jobs: Job[]): Promise<string>;
        };
    log: Logger;
    /** Told about the jobs of a message once they have ended (job events, metrics); never throws. */
    finished?: (jobs: FinishedJob[]) => Promise<void>;
}

export class MessageHandler {
    constructor(private readonly deps: MessageHandlerDeps) {}

    /**
     * Processes one SQS message (all its jobs) and settles it: delete, re-send, dead-letter or leave. Never throws.
     * `signal` aborts the jobs (the worker is stopping). `processed` is called once the last job's processor has
     * finished (before its uploads), or not at all when the message settles without reaching it.
     */
    async handle(msg: Message, signal: AbortSignal, processed?: () => void): Promise<void> {
        const { runJob, settler, log } = this.deps;
        const delivery = deliveryOf(msg);
        const { receiveCount, interruptions } = delivery;
        const attempt = attemptOf(delivery);
        const flight: InFlight = { receiptHandle: msg.ReceiptHandle!, receivedAt: settler.now?.() ?? Date.now(), settled: false };
        log("received", { messageId: msg.MessageId, receiveCount, ...(attempt !== receiveCount ? { attempt } : {}), ...(interruptions ? { interruptions } : {}) });
        const stopHeartbeat = settler.startHeartbeat(flight, msg.MessageId);
        const failedJobs = (jobs: Job[], failureClass: string, reason: string, attempts: number) =>
            this.deps.finished?.(jobs.map((job) => ({ job, attempts, failure: { failureClass, reason, errorReport: true } })));
        try {
            let parsed;
            try {
                parsed = parseMessage(msg.Body);
            } catch (err) {
                await settler.settleFailures(msg, flight, delivery, [{ status: "permanent", reason: errorMessage(err) }]);
                return;
            }
            if (parsed.kind === "test") {
                await settler.deleteMessage(flight, msg.MessageId, { test: true });
                return;
            }
            if (settler.attemptsUsedUp(delivery)) {
                // Every earlier receive of it ended with its task stopped (SIGKILL, out of memory, a crash): it is not
                // run again, but dead-lettered here, with a reason, rather than moved by SQS's redrive without one.
                const reason = await settler.deadLetterStopped(msg, flight, delivery, parsed.jobs);
                await failedJobs(parsed.jobs, TASK_STOPPED_FAILURE_CLASS, reason, attempt - 1);
                return;
            }
            const outcomes: Outcome[] = [];
            for (const [i, job] of parsed.jobs.entries()) {
                if (signal.aborted) {
                    outcomes.push({ status: "aborted" });
                    break;
                }
                const last = i === parsed.jobs.length - 1;
                outcomes.push(await runJob(job, signal, attempt, last ? processed : undefined));
            }
            if (outcomes.some((o) => o.status === "aborted")) {
                if ((await settler.interrupted(msg, flight, delivery, parsed.jobs)) === true) {
                    await failedJobs(parsed.jobs, failureClassOf("aborted"), interruptedReason(interruptions + 1), attempt);
                }
                return;
            }
            // Permanent failures, and the others on the last attempt, get an error report (Settler.settleFailures).
            const ended = () => this.deps.finished?.(finishedJobs(parsed.jobs, outcomes, attempt, () => true));
            // A stale job (its input was replaced: the newer upload has its own message) is done, having written nothing.
            const settled = (o: Outcome) => o.status === "ok" || o.status === "stale";
            if (outcomes.every(settled)) {
                const stale = outcomes.filter((o) => o.status === "stale").length;
                await settler.deleteMessage(flight, msg.MessageId, { jobs: parsed.jobs.length, ...(stale ? { stale } : {}) });
                await ended();
                return;
            }
            if ((await settler.settleFailures(msg, flight, delivery, outcomes.filter((o) => !settled(o)))) === true) await ended();
        } catch (err) {
            // Something unexpected (e.g. S3/SQS down while settling): leave the message for redelivery.
            log("failed", { messageId: msg.MessageId, reason: errorMessage(err), action: "left for redelivery" });
        } finally {
            stopHeartbeat();
        }
    }
}
