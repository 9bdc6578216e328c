/**
 * Settling an SQS message once its jobs have run: delete it (success, test event, dead-lettered), release it (make it
 * visible again now or after a back-off), or dead-letter it (error report per job, then the DLQ with the reason, then
 * delete). While a message is in flight, heartbeats extend its visibility; settling waits for heartbeats already sent
 * so that a late one cannot re-hide a released message.
 */
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import {
    ChangeMessageVisibilityCommand,
    DeleteMessageCommand,
    GetQueueAttributesCommand,
    Message,
    SendMessageCommand,
    SQSClient,
} from "@aws-sdk/client-sqs";
import { deadLetterJobId, jobId } from "./binding";
import { WorkerConfig } from "./config";
import { errorMessage } from "./errors";
import { Outcome } from "./job";
import { Job, outputKeys } from "./keys";
import { Logger } from "./log";
import { retry } from "./retry";

/** The queue's settings the runtime acts on (shared by reference: resolveQueueSettings fills them in at start). */
export interface QueueSettings {
    /** Seconds: the receive's visibility timeout and each heartbeat's extension. */
    visibilityTimeout: number;
    /** A timed-out job is retried until its receive count reaches this. */
    maxReceiveCount: number;
}

/** The configured queue settings, with the defaults (300 s, 3) where unset. */
export function configuredQueueSettings(cfg: Pick<WorkerConfig, "visibilityTimeout" | "maxReceiveCount">): QueueSettings {
    return { visibilityTimeout: cfg.visibilityTimeout ?? 300, maxReceiveCount: cfg.maxReceiveCount ?? 3 };
}

/** Fills in visibility timeout / maxReceiveCount from the queue's attributes where not configured (in place). */
export async function resolveQueueSettings(
    sqs: SQSClient,
    cfg: Pick<WorkerConfig, "queueUrl" | "visibilityTimeout" | "maxReceiveCount">,
    settings: QueueSettings,
    log: Logger,
): Promise<void> {
    if (cfg.visibilityTimeout !== undefined && cfg.maxReceiveCount !== undefined) return;
    try {
        const res = await sqs.send(
            new GetQueueAttributesCommand({ QueueUrl: cfg.queueUrl, AttributeNames: ["VisibilityTimeout", "RedrivePolicy"] }),
        );
        const a = res.Attributes ?? {};
        if (cfg.visibilityTimeout === undefined && a.VisibilityTimeout) {
            settings.visibilityTimeout = Math.max(1, Number(a.VisibilityTimeout));
        }
        if (cfg.maxReceiveCount === undefined && a.RedrivePolicy) {
            const n = Number(JSON.parse(a.RedrivePolicy).maxReceiveCount);
            if (n > 0) settings.maxReceiveCount = n;
        }
    } catch (err) {
        log("queue_attributes_failed", { reason: errorMessage(err) });
    }
}

/**
 * SQS keeps a received message hidden at most 12 h from its receipt: a ChangeMessageVisibility that would hide it
 * longer is refused (an error, not clamped), so the heartbeat never asks past it.
 */
export const SQS_MAX_VISIBILITY_SECONDS = 43200;

/**
 * Seconds the heartbeat keeps from SQS's 12 h: the receipt is measured when the worker starts handling the message,
 * a moment after SQS received it (the answer's way back).
 */
export const RECEIPT_MARGIN_SECONDS = 30;

/** A received message while its jobs run. */
export interface InFlight {
    receiptHandle: string;
    /** When the message was received (ms, the Settler's clock); unset: the 12 h limit is not watched. */
    receivedAt?: number;
    /** Aborted when the worker stops: no heartbeat starts after that. */
    signal: AbortSignal;
    /** Set as soon as settling (release/delete) begins: no new heartbeat starts after that. */
    settled: boolean;
    /** Heartbeats sent and not answered yet: settling waits for them, so that none lands after a release. */
    heartbeats?: Set<Promise<void>>;
    /** Set once SQS's 12 h limit left no time for another heartbeat (logged once). */
    limitReached?: boolean;
}

/** Longest wait for in-flight heartbeats before releasing a message anyway. */
export const HEARTBEAT_SETTLE_WAIT_MS = 10000;

/**
 * SQS accepts only #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF in message bodies and attribute
 * values: every other character (control characters a scene's `#error` printed, lone surrogates, U+FFFE/U+FFFF)
 * becomes U+FFFD.
 */
export function sqsSafe(v: string): string {
    return v.replace(/[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, "\uFFFD");
}

/** The settings settling reads. */
export type SettleConfig = Pick<WorkerConfig, "queueUrl" | "dlqUrl" | "inputPrefix" | "outputPrefix">;

export interface SettlerDeps {
    s3: S3Client;
    sqs: SQSClient;
    log: Logger;
    /** Read at each use (the runtime resolves them from the queue at start). */
    queue: QueueSettings;
    /** Recorded in error reports. */
    processorName: string;
    /** Calls `fn` every `ms` until the returned function is called. Default: setInterval. */
    every?: (fn: () => void, ms: number) => () => void;
    /** The clock of `InFlight.receivedAt` (ms). Default: Date.now. */
    now?: () => number;
}

function every(fn: () => void, ms: number): () => void {
    const timer = setInterval(fn, ms);
    return () => clearInterval(timer);
}

export class Settler {
    private readonly s3: S3Client;
    private readonly sqs: SQSClient;
    private readonly log: Logger;
    private readonly queue: QueueSettings;
    private readonly processorName: string;
    private readonly every: (fn: () => void, ms: number) => () => void;
    readonly now: () => number;

    constructor(
        private readonly cfg: SettleConfig,
        deps: SettlerDeps,
    ) {
        this.s3 = deps.s3;
        this.sqs = deps.sqs;
        this.log = deps.log;
        this.queue = deps.queue;
        this.processorName = deps.processorName;
        this.every = deps.every ?? every;
        this.now = deps.now ?? Date.now;
    }

    /** Heartbeats every third of the visibility timeout (at least 1 s) until the returned function is called. */
    startHeartbeat(flight: InFlight, messageId?: string): () => void {
        const heartbeatMs = Math.max(1000, Math.floor((this.queue.visibilityTimeout * 1000) / 3));
        return this.every(() => void this.heartbeat(flight, messageId), heartbeatMs);
    }

    /**
     * Extends the message's visibility by the visibility timeout, unless it is settled or the worker is stopping; never
     * past SQS's 12 h from the receipt (less RECEIPT_MARGIN_SECONDS): shortened to what is left, none once nothing is.
     */
    heartbeat(flight: InFlight, messageId?: string): Promise<void> {
        if (flight.settled || flight.signal.aborted) return Promise.resolve();
        const visibilityTimeout = Math.min(this.queue.visibilityTimeout, this.visibilityLeft(flight));
        if (visibilityTimeout <= 0) {
            if (!flight.limitReached) this.log("visibility_limit", { messageId, maxSeconds: SQS_MAX_VISIBILITY_SECONDS, action: "no further heartbeat" });
            flight.limitReached = true;
            return Promise.resolve();
        }
        const pending = (flight.heartbeats ??= new Set());
        const call = this.sendHeartbeat(flight, visibilityTimeout, messageId).finally(() => pending.delete(call));
        pending.add(call);
        return call;
    }

    /** Whole seconds the message may still be hidden within SQS's 12 h from its receipt (Infinity: receipt unknown). */
    visibilityLeft(flight: Pick<InFlight, "receivedAt">): number {
        if (flight.receivedAt === undefined) return Infinity;
        return Math.floor(SQS_MAX_VISIBILITY_SECONDS - RECEIPT_MARGIN_SECONDS - (this.now() - flight.receivedAt) / 1000);
    }

    /** Waits (boundedly) for heartbeats already sent, so that a late one cannot re-hide a released message. */
    private async heartbeatsLanded(flight: InFlight): Promise<void> {
        if (!flight.heartbeats?.size) return;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
            Promise.all(flight.heartbeats),
            new Promise<void>((resolve) => (timer = setTimeout(resolve, HEARTBEAT_SETTLE_WAIT_MS))),
        ]);
        clearTimeout(timer);
    }

    private async sendHeartbeat(flight: InFlight, visibilityTimeout: number, messageId?: string): Promise<void> {
        try {
            await this.sqs.send(
                new ChangeMessageVisibilityCommand({
                    QueueUrl: this.cfg.queueUrl,
                    ReceiptHandle: flight.receiptHandle,
                    VisibilityTimeout: visibilityTimeout,
                }),
            );
            this.log("heartbeat", { messageId, visibilityTimeout });
        } catch (err) {
            this.log("heartbeat_failed", { messageId, reason: errorMessage(err) });
        }
    }

    /**
     * Settles a message with failed jobs (`failures`: the outcomes other than ok; none aborted). Any transient one:
     * release with a back-off. Timeouts before the last allowed receive: release now. Otherwise permanent: an error
     * report per job, the DLQ (with the reasons), then delete; without DLQ_URL the message is left to the queue's
     * redrive policy.
     * Returns whether the message's jobs have ended (for job events): dead-lettered, or failed on the last receive the
     * redrive policy allows (SQS moves it to the DLQ instead of delivering it again). A release for a retry: false.
     */
    async settleFailures(msg: Message, flight: InFlight, receiveCount: number, failures: Outcome[]): Promise<boolean> {
        const messageId = msg.MessageId;
        const { visibilityTimeout, maxReceiveCount } = this.queue;
        if (failures.some((f) => f.status === "transient")) {
            // Retries are exhausted for now: leave it, back off a little, let SQS redeliver.
            const delay = Math.min(visibilityTimeout, 10 * 2 ** Math.min(receiveCount - 1, 6));
            await this.release(flight, messageId, delay, "transient failure").catch(() => undefined);
            return receiveCount >= maxReceiveCount;
        }
        const timeouts = failures.filter((f) => f.status === "timeout");
        if (timeouts.length > 0 && receiveCount < maxReceiveCount) {
            this.log("retry_later", {
                messageId,
                receiveCount,
                maxReceiveCount,
                reason: timeouts.map((t) => (t as { reason: string }).reason).join("; "),
            });
            await this.release(flight, messageId, 0, "timeout, retrying");
            return false;
        }
        // Permanent (including a timeout on the last allowed receive): error reports, then DLQ, then delete.
        const reasons: string[] = [];
        for (const f of failures) {
            if (f.status !== "permanent" && f.status !== "timeout") continue;
            const reason = f.status === "timeout" ? `${f.reason} (attempt ${receiveCount} of ${maxReceiveCount})` : f.reason;
            reasons.push(f.job ? `${f.job.key}: ${reason}` : reason);
            if (f.job) await this.writeErrorReport(f.job, reason, receiveCount, messageId);
        }
        const reason = reasons.join("; ");
        if (!this.cfg.dlqUrl) {
            this.log("failed", { messageId, reason, action: "left for the queue's redrive policy (no DLQ_URL)" });
            return receiveCount >= maxReceiveCount;
        }
        const keys = failures.flatMap((f) => ("job" in f && f.job ? [f.job.key] : []));
        const jobIds = failures.flatMap((f) => ("job" in f && f.job ? [jobId(f.job)] : []));
        await this.sendToDlq(msg.Body ?? "", reason, receiveCount, keys, messageId, jobIds);
        await this.deleteMessage(flight, messageId, { deadLettered: true });
        return true;
    }

    /**
     * Writes `<base>.error.json` (reason, jobId, source and its ETag, attempts, time, processor) next to the job's
     * outputs.
     */
    async writeErrorReport(job: Job, reason: string, attempts: number, messageId?: string): Promise<void> {
        const keys = outputKeys(job.key, { inputPrefix: this.cfg.inputPrefix, outputPrefix: this.cfg.outputPrefix });
        const report = {
            reason,
            jobId: jobId(job),
            sourceBucket: job.bucket,
            sourceKey: job.key,
            ...(job.etag ? { sourceEtag: job.etag } : {}),
            attempts,
            time: new Date().toISOString(),
            processor: this.processorName,
            ...(messageId ? { messageId } : {}),
        };
        await retry(this.log, "error report", new AbortController().signal, () =>
            this.s3.send(
                new PutObjectCommand({
                    Bucket: job.bucket,
                    Key: keys.error,
                    Body: JSON.stringify(report, null, 2) + "\n",
                    ContentType: "application/json",
                }),
            ),
        );
        this.log("error_report_written", { bucket: job.bucket, key: keys.error });
    }

    /**
     * Sends the original body plus `reason`, `jobId` and `jobIds` (the failed jobs' ids; also message attributes) to
     * DLQ_URL. Throws if it cannot. SQS is at-least-once (a send whose answer is lost is sent again): consumers dedupe
     * on `jobId`, the same for every copy (see deadLetterJobId).
     */
    async sendToDlq(body: string, rawReason: string, attempts: number, keys: string[], messageId?: string, jobIds: string[] = []): Promise<void> {
        const reason = sqsSafe(rawReason);
        let parsed: unknown;
        try {
            parsed = JSON.parse(body);
        } catch {
            parsed = undefined;
        }
        const failedAt = new Date().toISOString();
        const id = deadLetterJobId(jobIds, body);
        const ids = jobIds.length ? [...new Set(jobIds)] : [id];
        const dlqBody =
            typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
                ? { ...(parsed as object), reason, jobId: id, jobIds: ids, failedAt, attempts }
                : { body, reason, jobId: id, jobIds: ids, failedAt, attempts };
        const attr = (v: string) => ({ DataType: "String", StringValue: sqsSafe(v) });
        await retry(this.log, "dlq send", new AbortController().signal, () =>
            this.sqs.send(
                new SendMessageCommand({
                    QueueUrl: this.cfg.dlqUrl,
                    MessageBody: sqsSafe(JSON.stringify(dlqBody)),
                    MessageAttributes: {
                        reason: attr(reason.slice(0, 4000) || "unknown"),
                        jobId: attr(id),
                        attempts: { DataType: "Number", StringValue: String(attempts) },
                        failedAt: attr(failedAt),
                        ...(keys.length ? { sourceKey: attr(keys.join("\n").slice(0, 4000)) } : {}),
                        ...(messageId ? { sourceMessageId: attr(messageId) } : {}),
                    },
                }),
            ),
        );
        this.log("dead_lettered", { messageId, jobId: id, reason });
    }

    /** Deletes the message (after heartbeats in flight have landed), retrying transient failures. */
    async deleteMessage(flight: InFlight, messageId: string | undefined, fields: Record<string, unknown>): Promise<void> {
        await this.heartbeatsLanded(flight);
        await retry(this.log, "delete", new AbortController().signal, () =>
            this.sqs.send(new DeleteMessageCommand({ QueueUrl: this.cfg.queueUrl, ReceiptHandle: flight.receiptHandle })),
        );
        flight.settled = true;
        this.log("deleted", { messageId, ...fields });
    }

    /** Makes the message visible again after `seconds` (0 = now). Stops heartbeats first; never throws. */
    async release(flight: InFlight, messageId: string | undefined, seconds: number, reason: string): Promise<void> {
        flight.settled = true;
        await this.heartbeatsLanded(flight);
        try {
            await this.sqs.send(
                new ChangeMessageVisibilityCommand({
                    QueueUrl: this.cfg.queueUrl,
                    ReceiptHandle: flight.receiptHandle,
                    VisibilityTimeout: seconds,
                }),
            );
            this.log("released", { messageId, visibleInSeconds: seconds, reason });
        } catch (err) {
            this.log("release_failed", { messageId, reason: errorMessage(err) });
        }
    }
}
