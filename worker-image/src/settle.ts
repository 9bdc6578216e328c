/**
 * Settling an SQS message once its jobs have run: delete it (success, test event, dead-lettered), re-send it for
 * another attempt (a copy carrying what the job went through, then the original deleted), or dead-letter it (error
 * report per job, then the DLQ with the reason, then delete). While a message is in flight, heartbeats extend its
 * visibility; settling waits for heartbeats already sent so that a late one cannot re-hide a released message.
 *
 * Attempts. SQS counts every receive (`ApproximateReceiveCount`), whatever ended it. The worker counts only failures:
 * an interruption (SIGTERM: Spot reclaim, scale-in, deploy) or a failure that gets another attempt (transient, timeout)
 * is never left to SQS's receive count: the worker sends a copy of the message (same body, its attributes, plus
 * `attempts`, `interruptions` and `lastReason`) and deletes the original. So `ApproximateReceiveCount - 1` of a message
 * counts only receives that ended without the worker settling it: crashes (SIGKILL, out of memory). A job's failed
 * attempts are `attempts` + (receive count - 1); the attempt that reaches `maxReceiveCount` is dead-lettered by the
 * worker with its reason, and so is the 6th interruption in a row (MAX_INTERRUPTIONS). The queue's redrive policy (one
 * receive more, set by the component) is only a safety net for a worker that dies while dead-lettering.
 */
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import {
    ChangeMessageVisibilityCommand,
    DeleteMessageCommand,
    GetQueueAttributesCommand,
    Message,
    MessageAttributeValue,
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
    /**
     * A job's attempts: the one that fails (transiently, timed out, or its task stopped without finishing it) as the
     * `maxReceiveCount`-th is dead-lettered by the worker.
     */
    maxReceiveCount: number;
}

/** SIGTERMs in a row a job may get before the next one dead-letters it (interruptions are not failures). */
export const MAX_INTERRUPTIONS = 5;

/** The message attributes of a copy the worker sent for another attempt (see the file's comment). */
export const DELIVERY_ATTRIBUTES = { attempts: "attempts", interruptions: "interruptions", lastReason: "lastReason" } as const;

/** What a received message says of its job's earlier attempts. */
export interface Delivery {
    /** SQS's ApproximateReceiveCount: every receive but the current one ended without the worker settling it (a crash). */
    receiveCount: number;
    /** Failed attempts before this message was sent (its `attempts` attribute): failures re-sent, crashes of earlier copies. */
    attempts: number;
    /** Interruptions in a row before this message was sent (its `interruptions` attribute). */
    interruptions: number;
    /** Why the last failed attempt failed (its `lastReason` attribute). */
    lastReason?: string;
}

/** The Delivery of a received message (attributes the worker did not write count as 0). */
export function deliveryOf(msg: Pick<Message, "Attributes" | "MessageAttributes">): Delivery {
    const count = (name: string) => {
        const v = Number(msg.MessageAttributes?.[name]?.StringValue);
        return Number.isInteger(v) && v > 0 ? v : 0;
    };
    const lastReason = msg.MessageAttributes?.[DELIVERY_ATTRIBUTES.lastReason]?.StringValue;
    return {
        receiveCount: Number(msg.Attributes?.ApproximateReceiveCount ?? "1") || 1,
        attempts: count(DELIVERY_ATTRIBUTES.attempts),
        interruptions: count(DELIVERY_ATTRIBUTES.interruptions),
        ...(lastReason ? { lastReason } : {}),
    };
}

/** The failed attempts before a delivery: those carried (`attempts`) plus its receives that ended in a crash. */
function failedBefore(d: Pick<Delivery, "attempts" | "receiveCount">): number {
    return d.attempts + d.receiveCount - 1;
}

/** The number of the attempt a delivery is: the failed ones before it, plus one. */
export function attemptOf(d: Pick<Delivery, "attempts" | "receiveCount">): number {
    return failedBefore(d) + 1;
}

/** One dead-letter failure per job of the message (one without a job when it has none), all with `reason`. */
function failuresOf(jobs: Job[], reason: string): { job?: Job; reason: string }[] {
    return jobs.length > 0 ? jobs.map((job) => ({ job, reason })) : [{ reason }];
}

/** The configured queue settings, with the defaults (300 s, 3) where unset. */
export function configuredQueueSettings(cfg: Pick<WorkerConfig, "visibilityTimeout" | "maxReceiveCount">): QueueSettings {
    return { visibilityTimeout: cfg.visibilityTimeout ?? 300, maxReceiveCount: cfg.maxReceiveCount ?? 3 };
}

/**
 * Fills in visibility timeout / maxReceiveCount from the queue's attributes where not configured (in place): the
 * attempts are one fewer than the redrive policy's maxReceiveCount, so that the worker dead-letters the last one.
 */
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
            // One attempt fewer than the redrive allows receives: the worker, not SQS's redrive, dead-letters the last.
            const n = Number(JSON.parse(a.RedrivePolicy).maxReceiveCount);
            if (n > 0) settings.maxReceiveCount = Math.max(1, n - 1);
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
    /** Set as soon as settling (release/delete) begins: no new heartbeat starts after that. */
    settled: boolean;
    /** Heartbeats sent and not answered yet: settling waits for them, so that none lands after a release. */
    heartbeats?: Set<Promise<void>>;
    /** Set once SQS's 12 h limit left no time for another heartbeat (logged once). */
    limitReached?: boolean;
}

/** Why the job of a message interrupted this many times in a row is dead-lettered. */
export function interruptedReason(interruptions: number): string {
    return `interrupted ${interruptions} times in a row: the task running it was stopped (SIGTERM: Spot reclaim, scale-in, deploy) before it finished each time`;
}

/** Why a job whose earlier receives all ended without the worker settling it (crashes) is dead-lettered. */
export function stoppedReason(d: Delivery): string {
    const n = d.receiveCount - 1;
    const earlier = d.lastReason ? `; earlier attempts failed: ${d.lastReason}` : "";
    return `the task running it stopped ${n} time${n === 1 ? "" : "s"} without finishing: its worker was killed (SIGKILL, out of memory) or crashed before it could settle the job${earlier}`;
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
     * Extends the message's visibility by the visibility timeout until it is settled (also while a stopping worker still
     * uploads a finished job's outputs); never past SQS's 12 h from the receipt (less RECEIPT_MARGIN_SECONDS): shortened
     * to what is left, none once nothing is.
     */
    heartbeat(flight: InFlight, messageId?: string): Promise<void> {
        if (flight.settled) return Promise.resolve();
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
    private visibilityLeft(flight: Pick<InFlight, "receivedAt">): number {
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
     * Settles a message with failed jobs (`failures`: the outcomes other than ok; none aborted). A transient failure or
     * a timeout before the last attempt (`maxReceiveCount`): re-sent for another attempt (a transient one after a
     * back-off of 10 s x 2^(attempt-1), at most 640 s; a timeout at once), its attempts counted in the copy. Otherwise
     * (permanent, or the last attempt): an error report per job, the DLQ (with the reasons), then delete; without
     * DLQ_URL the message is left to the queue's redrive policy.
     * Returns whether the message's jobs have ended (for job events): dead-lettered, or (without DLQ_URL) failed on the
     * last attempt. A re-send for another attempt: false.
     */
    async settleFailures(msg: Message, flight: InFlight, delivery: Delivery, failures: Outcome[]): Promise<boolean> {
        const messageId = msg.MessageId;
        const { maxReceiveCount } = this.queue;
        const attempt = attemptOf(delivery);
        const retryable = failures.filter((f) => f.status === "transient" || f.status === "timeout") as { status: string; reason: string }[];
        if (retryable.length > 0 && attempt < maxReceiveCount) {
            const transient = retryable.some((f) => f.status === "transient");
            const delaySeconds = transient ? 10 * 2 ** Math.min(attempt - 1, 6) : 0;
            const reason = retryable.map((f) => f.reason).join("; ");
            this.log("retry_later", { messageId, attempt, maxReceiveCount, reason, inSeconds: delaySeconds });
            await this.requeue(msg, flight, { attempts: attempt, interruptions: 0, lastReason: reason }, delaySeconds, transient ? "transient failure" : "timeout, retrying");
            return false;
        }
        // Permanent (including a timeout or transient failure on the last attempt): error reports, then DLQ, then delete.
        const dead = failures.flatMap((f) => {
            if (f.status !== "permanent" && f.status !== "timeout" && f.status !== "transient") return [];
            return [{ job: f.job, reason: f.status === "permanent" ? f.reason : `${f.reason} (attempt ${attempt} of ${maxReceiveCount})` }];
        });
        return this.deadLetter(msg, flight, attempt, dead);
    }

    /**
     * The message's jobs were interrupted (the worker is stopping): an interruption is not a failure, so the message is
     * re-sent at once with `interruptions` + 1 (its failed attempts, crashes of this copy included, carried), unless
     * that makes more than MAX_INTERRUPTIONS in a row: then it is dead-lettered (error report per job, DLQ) with a reason
     * saying so. Returns whether the jobs have ended (dead-lettered).
     */
    async interrupted(msg: Message, flight: InFlight, delivery: Delivery, jobs: Job[]): Promise<boolean> {
        const interruptions = delivery.interruptions + 1;
        if (interruptions <= MAX_INTERRUPTIONS) {
            const next = { attempts: failedBefore(delivery), interruptions, lastReason: delivery.lastReason };
            await this.requeue(msg, flight, next, 0, "worker stopping");
            return false;
        }
        const reason = interruptedReason(interruptions);
        return this.deadLetter(msg, flight, attemptOf(delivery), failuresOf(jobs, reason));
    }

    /**
     * Whether the job's attempts are used up before this receive runs: its earlier receives ended without the worker
     * settling it (its task stopped: SIGKILL, out of memory, a crash), and with the failed attempts carried they reach
     * `maxReceiveCount`. Never without DLQ_URL (failed jobs are then left to the queue's redrive).
     */
    attemptsUsedUp(delivery: Delivery): boolean {
        // Without DLQ_URL a failed job is left in the queue (its redrive moves it): its receives are no crashes.
        if (!this.cfg.dlqUrl) return false;
        return delivery.receiveCount > 1 && failedBefore(delivery) >= this.queue.maxReceiveCount;
    }

    /**
     * Dead-letters a message whose attempts are used up by crashes (attemptsUsedUp): error report per job, DLQ with the
     * reason ("the task running it stopped N times without finishing: ..."), delete. Returns the reason.
     */
    async deadLetterStopped(msg: Message, flight: InFlight, delivery: Delivery, jobs: Job[]): Promise<string> {
        const reason = stoppedReason(delivery);
        await this.deadLetter(msg, flight, failedBefore(delivery), failuresOf(jobs, reason));
        return reason;
    }

    /**
     * Error reports (for the failures with a job), the DLQ with the reasons, then delete. Without DLQ_URL the message
     * is left to the queue's redrive policy. Returns whether the jobs have ended (dead-lettered; without DLQ_URL:
     * `attempts` reached maxReceiveCount).
     */
    private async deadLetter(msg: Message, flight: InFlight, attempts: number, failures: { job?: Job; reason: string }[]): Promise<boolean> {
        const messageId = msg.MessageId;
        const reasons: string[] = [];
        for (const f of failures) {
            reasons.push(f.job ? `${f.job.key}: ${f.reason}` : f.reason);
            if (f.job) await this.writeErrorReport(f.job, f.reason, attempts, messageId);
        }
        const reason = reasons.join("; ");
        if (!this.cfg.dlqUrl) {
            this.log("failed", { messageId, reason, action: "left for the queue's redrive policy (no DLQ_URL)" });
            return attempts >= this.queue.maxReceiveCount;
        }
        const keys = failures.flatMap((f) => (f.job ? [f.job.key] : []));
        const jobIds = failures.flatMap((f) => (f.job ? [jobId(f.job)] : []));
        await this.sendToDlq(msg.Body ?? "", reason, attempts, keys, messageId, jobIds);
        await this.deleteMessage(flight, messageId, { deadLettered: true });
        return true;
    }

    /**
     * Another attempt: sends a copy of the message (its body, its own attributes, and `attempts`, `interruptions`,
     * `lastReason` from `next`), visible after `delaySeconds`, then deletes the original. The copy starts at receive
     * count 1: SQS's count never includes interruptions or failures the worker saw. If the copy cannot be sent, the
     * original is released instead (visible after the same delay; that receive then counts). If the copy was sent but
     * the original cannot be deleted, both exist: the job runs twice at worst (version binding and the jobId make that
     * safe: the same outputs, one jobId), logged `requeue_delete_failed`.
     */
    async requeue(msg: Message, flight: InFlight, next: Omit<Delivery, "receiveCount">, delaySeconds: number, why: string): Promise<void> {
        const messageId = msg.MessageId;
        flight.settled = true;
        await this.heartbeatsLanded(flight);
        const own = Object.entries(msg.MessageAttributes ?? {}).filter(([k]) => !Object.values<string>(DELIVERY_ATTRIBUTES).includes(k));
        const attributes: Record<string, MessageAttributeValue> = Object.fromEntries(
            own.map(([k, v]) => [k, { DataType: v.DataType, ...(v.StringValue !== undefined ? { StringValue: v.StringValue } : {}), ...(v.BinaryValue !== undefined ? { BinaryValue: v.BinaryValue } : {}) }]),
        );
        attributes[DELIVERY_ATTRIBUTES.attempts] = { DataType: "Number", StringValue: String(next.attempts) };
        attributes[DELIVERY_ATTRIBUTES.interruptions] = { DataType: "Number", StringValue: String(next.interruptions) };
        if (next.lastReason) attributes[DELIVERY_ATTRIBUTES.lastReason] = { DataType: "String", StringValue: sqsSafe(next.lastReason).slice(0, 1000) };
        let copyId: string | undefined;
        try {
            const sent = await retry(this.log, "requeue", new AbortController().signal, () =>
                this.sqs.send(
                    new SendMessageCommand({
                        QueueUrl: this.cfg.queueUrl,
                        MessageBody: msg.Body ?? "",
                        DelaySeconds: Math.min(900, Math.max(0, Math.round(delaySeconds))),
                        MessageAttributes: attributes,
                    }),
                ),
            );
            copyId = sent.MessageId;
        } catch (err) {
            this.log("requeue_failed", { messageId, reason: errorMessage(err), action: "released instead" });
            flight.settled = false;
            await this.release(flight, messageId, delaySeconds, why);
            return;
        }
        try {
            await retry(this.log, "delete", new AbortController().signal, () =>
                this.sqs.send(new DeleteMessageCommand({ QueueUrl: this.cfg.queueUrl, ReceiptHandle: flight.receiptHandle })),
            );
        } catch (err) {
            this.log("requeue_delete_failed", { messageId, copyId, reason: errorMessage(err), action: "two copies: the job may run twice" });
            return;
        }
        this.log("requeued", { messageId, copyId, visibleInSeconds: delaySeconds, reason: why, attempts: next.attempts, interruptions: next.interruptions });
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
