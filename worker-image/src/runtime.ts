/**
 * The generic job runtime: receive -> download -> unpack -> processor -> upload -> delete, with heartbeats,
 * retries, error reports, dead-lettering and graceful SIGTERM handling. Knows nothing about POV-Ray.
 */
import {
    DeleteObjectCommand,
    GetObjectCommand,
    PutObjectCommand,
    S3Client,
} from "@aws-sdk/client-s3";
import {
    ChangeMessageVisibilityCommand,
    DeleteMessageCommand,
    GetQueueAttributesCommand,
    Message,
    ReceiveMessageCommand,
    SendMessageCommand,
    SQSClient,
} from "@aws-sdk/client-sqs";
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Readable, Transform, TransformCallback } from "stream";
import { pipeline } from "stream/promises";
import { WorkerConfig } from "./config";
import { AbortedError, JobTimeoutError, PermanentError, errorMessage, isPermanentServiceError, isTransient } from "./errors";
import { Job, jobBaseName, outputKeys, parseMessage } from "./keys";
import { Logger, createLogger } from "./log";
import { Processor } from "./processor";
import { extractZip } from "./unzip";

export interface WorkerDeps {
    s3?: S3Client;
    sqs?: SQSClient;
    log?: Logger;
}

/** S3 client honouring AWS_ENDPOINT_URL (path-style addressing when an endpoint is set, e.g. for moto). */
export function makeS3(region?: string): S3Client {
    return new S3Client({ region, forcePathStyle: !!process.env.AWS_ENDPOINT_URL, maxAttempts: 3 });
}

export function makeSqs(region?: string): SQSClient {
    return new SQSClient({ region, maxAttempts: 3 });
}

type Outcome =
    | { status: "ok" }
    | { status: "permanent"; job?: Job; reason: string }
    | { status: "timeout"; job: Job; reason: string }
    | { status: "transient"; job: Job; reason: string }
    | { status: "aborted" };

interface InFlight {
    receiptHandle: string;
    controller: AbortController;
    /** Set as soon as settling (release/delete) begins: no new heartbeat starts after that. */
    settled: boolean;
    /** Heartbeats sent and not answered yet: settling waits for them, so that none lands after a release. */
    heartbeats?: Set<Promise<void>>;
}

/** Longest wait for in-flight heartbeats before releasing a message anyway. */
const HEARTBEAT_SETTLE_WAIT_MS = 10000;

const sleep = (ms: number, signal?: AbortSignal) =>
    new Promise<void>((resolve) => {
        if (signal?.aborted) return resolve();
        const t = setTimeout(done, ms);
        function done() {
            clearTimeout(t);
            signal?.removeEventListener("abort", done);
            resolve();
        }
        signal?.addEventListener("abort", done, { once: true });
    });

function toMetadataValue(v: string): string {
    // S3 user metadata travels as HTTP headers: keep it ASCII.
    return encodeURIComponent(v);
}

/**
 * SQS accepts only #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF in message bodies and attribute
 * values: every other character (control characters a scene's `#error` printed, lone surrogates, U+FFFE/U+FFFF)
 * becomes U+FFFD.
 */
export function sqsSafe(v: string): string {
    return v.replace(/[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, "\uFFFD");
}

/** Longest `source-key` metadata value (S3 allows 2 KB of user metadata in total). */
export const MAX_SOURCE_KEY_METADATA = 1024;

/**
 * `source-key` metadata: the URL-encoded key (up to 3x the key's length for non-ASCII keys); past
 * MAX_SOURCE_KEY_METADATA it is truncated (on a character boundary, so that it still decodes) and `source-key-sha256` (hex SHA-256 of the
 * key's UTF-8 bytes) identifies the key.
 */
export function sourceKeyMetadata(key: string): Record<string, string> {
    const encoded = toMetadataValue(key);
    if (encoded.length <= MAX_SOURCE_KEY_METADATA) return { "source-key": encoded };
    // Whole characters only, so that the value still decodes.
    let cut = "";
    for (const ch of key) {
        const e = toMetadataValue(ch);
        if (cut.length + e.length > MAX_SOURCE_KEY_METADATA) break;
        cut += e;
    }
    return { "source-key": cut, "source-key-sha256": createHash("sha256").update(key, "utf8").digest("hex") };
}

export class Worker {
    private readonly s3: S3Client;
    private readonly sqs: SQSClient;
    private readonly log: Logger;
    private stopping = false;
    private stopReason = "SIGTERM";
    private readonly stopController = new AbortController();
    private readonly inflight = new Set<InFlight>();
    /** Job directories (absolute) in use by this worker: everything else under the scratch dir is swept. */
    private readonly liveJobDirs = new Set<string>();
    private visibilityTimeout: number;
    private maxReceiveCount: number;

    constructor(
        private readonly cfg: WorkerConfig,
        private readonly processor: Processor,
        deps: WorkerDeps = {},
    ) {
        this.s3 = deps.s3 ?? makeS3(cfg.region);
        this.sqs = deps.sqs ?? makeSqs(cfg.region);
        this.log = deps.log ?? createLogger({ worker: processor.name });
        this.visibilityTimeout = cfg.visibilityTimeout ?? 300;
        this.maxReceiveCount = cfg.maxReceiveCount ?? 3;
    }

    get isStopping(): boolean {
        return this.stopping;
    }

    /** SIGTERM: stop receiving, abort in-flight jobs (their messages become visible again). */
    stop(reason = "SIGTERM"): void {
        if (this.stopping) return;
        this.stopping = true;
        this.stopReason = reason;
        this.log("stopping", { reason, inflight: this.inflight.size });
        this.stopController.abort();
        for (const f of this.inflight) f.controller.abort();
    }

    /** Runs until the queue is drained (WORKER_IDLE_EXIT), forever (0) or stop(). Returns the exit code. */
    async run(): Promise<number> {
        if (this.cfg.jobBucket && this.cfg.jobKey) return this.runOneShot(this.cfg.jobBucket, this.cfg.jobKey);
        await fs.promises.mkdir(this.cfg.scratchDir, { recursive: true });
        await this.resolveQueueSettings();
        this.log("started", {
            queueUrl: this.cfg.queueUrl,
            concurrency: this.cfg.concurrency,
            idleExit: this.cfg.idleExit,
            visibilityTimeout: this.visibilityTimeout,
            maxReceiveCount: this.maxReceiveCount,
        });
        const loops = Array.from({ length: this.cfg.concurrency }, (_, i) => this.loop(i));
        await Promise.all(loops);
        this.log("exiting", { reason: this.stopping ? "stopped" : "queue drained", code: 0 });
        return 0;
    }

    /** Fills in visibility timeout / maxReceiveCount from the queue when not configured. */
    private async resolveQueueSettings(): Promise<void> {
        if (this.cfg.visibilityTimeout !== undefined && this.cfg.maxReceiveCount !== undefined) return;
        try {
            const res = await this.sqs.send(
                new GetQueueAttributesCommand({
                    QueueUrl: this.cfg.queueUrl,
                    AttributeNames: ["VisibilityTimeout", "RedrivePolicy"],
                }),
            );
            const a = res.Attributes ?? {};
            if (this.cfg.visibilityTimeout === undefined && a.VisibilityTimeout) {
                this.visibilityTimeout = Math.max(1, Number(a.VisibilityTimeout));
            }
            if (this.cfg.maxReceiveCount === undefined && a.RedrivePolicy) {
                const n = Number(JSON.parse(a.RedrivePolicy).maxReceiveCount);
                if (n > 0) this.maxReceiveCount = n;
            }
        } catch (err) {
            this.log("queue_attributes_failed", { reason: errorMessage(err) });
        }
    }

    /**
     * One receive loop: one job renders at a time per loop. A job's uploads and its message's deletion finish in the
     * background while the loop receives and renders the next job, so the worker's I/O hides behind the renders; at
     * most one job finishes in the background (the loop waits for it before starting a second).
     */
    private async loop(index: number): Promise<void> {
        const finishing = new Set<Promise<void>>();
        try {
            await this.receiveLoop(index, finishing);
        } finally {
            await Promise.all(finishing);
        }
    }

    private async receiveLoop(index: number, finishing: Set<Promise<void>>): Promise<void> {
        let empty = 0;
        let failures = 0;
        while (!this.stopping) {
            let messages: Message[];
            try {
                const res = await this.sqs.send(
                    new ReceiveMessageCommand({
                        QueueUrl: this.cfg.queueUrl,
                        MaxNumberOfMessages: 1,
                        WaitTimeSeconds: this.cfg.waitSeconds,
                        VisibilityTimeout: this.visibilityTimeout,
                        MessageSystemAttributeNames: ["ApproximateReceiveCount"],
                        MessageAttributeNames: ["All"],
                    }),
                    { abortSignal: this.stopController.signal },
                );
                messages = res.Messages ?? [];
                failures = 0;
            } catch (err) {
                if (this.stopping) break;
                failures++;
                const delay = Math.min(30000, 500 * 2 ** Math.min(failures, 6));
                this.log("receive_failed", { loop: index, reason: errorMessage(err), retryInMs: delay });
                await sleep(delay, this.stopController.signal);
                continue;
            }
            if (messages.length === 0) {
                empty++;
                if (this.cfg.idleExit > 0 && empty >= this.cfg.idleExit) break;
                continue;
            }
            empty = 0;
            for (const m of messages) {
                let processed!: () => void;
                const rendered = new Promise<void>((resolve) => (processed = resolve));
                const done: Promise<void> = this.handleMessage(m, processed).finally(() => {
                    processed();
                    finishing.delete(done);
                });
                finishing.add(done);
                await rendered;
                // At most one job finishing in the background per loop: wait for older ones before the next job.
                const older = [...finishing].filter((p) => p !== done);
                if (older.length) await Promise.all(older);
            }
        }
    }

    /**
     * Processes one SQS message (all its jobs) and settles it: delete, release, dead-letter or leave.
     * `processed` is called once the last job's processor has finished (before its uploads), or when the message
     * settles without reaching it.
     */
    async handleMessage(msg: Message, processed?: () => void): Promise<void> {
        const receiptHandle = msg.ReceiptHandle!;
        const receiveCount = Number(msg.Attributes?.ApproximateReceiveCount ?? "1") || 1;
        const flight: InFlight = { receiptHandle, controller: new AbortController(), settled: false };
        if (this.stopping) flight.controller.abort();
        this.inflight.add(flight);
        this.log("received", { messageId: msg.MessageId, receiveCount });
        const heartbeatMs = Math.max(1000, Math.floor((this.visibilityTimeout * 1000) / 3));
        const heartbeat = setInterval(() => void this.heartbeat(flight, msg.MessageId), heartbeatMs);
        try {
            let parsed;
            try {
                parsed = parseMessage(msg.Body);
            } catch (err) {
                await this.settleFailures(msg, flight, receiveCount, [{ status: "permanent", reason: errorMessage(err) }]);
                return;
            }
            if (parsed.kind === "test") {
                await this.deleteMessage(flight, msg.MessageId, { test: true });
                return;
            }
            const outcomes: Outcome[] = [];
            for (const [i, job] of parsed.jobs.entries()) {
                if (flight.controller.signal.aborted) {
                    outcomes.push({ status: "aborted" });
                    break;
                }
                const last = i === parsed.jobs.length - 1;
                outcomes.push(await this.runJob(job, flight.controller.signal, receiveCount, last ? processed : undefined));
            }
            if (outcomes.some((o) => o.status === "aborted")) {
                await this.release(flight, msg.MessageId, 0, "worker stopping");
                return;
            }
            if (outcomes.every((o) => o.status === "ok")) {
                await this.deleteMessage(flight, msg.MessageId, { jobs: parsed.jobs.length });
                return;
            }
            await this.settleFailures(msg, flight, receiveCount, outcomes.filter((o) => o.status !== "ok"));
        } catch (err) {
            // Something unexpected (e.g. S3/SQS down while settling): leave the message for redelivery.
            this.log("failed", { messageId: msg.MessageId, reason: errorMessage(err), action: "left for redelivery" });
        } finally {
            clearInterval(heartbeat);
            this.inflight.delete(flight);
        }
    }

    private heartbeat(flight: InFlight, messageId?: string): Promise<void> {
        if (flight.settled || flight.controller.signal.aborted) return Promise.resolve();
        const pending = (flight.heartbeats ??= new Set());
        const call = this.sendHeartbeat(flight, messageId).finally(() => pending.delete(call));
        pending.add(call);
        return call;
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

    private async sendHeartbeat(flight: InFlight, messageId?: string): Promise<void> {
        try {
            await this.sqs.send(
                new ChangeMessageVisibilityCommand({
                    QueueUrl: this.cfg.queueUrl,
                    ReceiptHandle: flight.receiptHandle,
                    VisibilityTimeout: this.visibilityTimeout,
                }),
            );
            this.log("heartbeat", { messageId, visibilityTimeout: this.visibilityTimeout });
        } catch (err) {
            this.log("heartbeat_failed", { messageId, reason: errorMessage(err) });
        }
    }

    private async settleFailures(msg: Message, flight: InFlight, receiveCount: number, failures: Outcome[]): Promise<void> {
        const messageId = msg.MessageId;
        if (failures.some((f) => f.status === "transient")) {
            // Retries are exhausted for now: leave it, back off a little, let SQS redeliver.
            const delay = Math.min(this.visibilityTimeout, 10 * 2 ** Math.min(receiveCount - 1, 6));
            await this.release(flight, messageId, delay, "transient failure").catch(() => undefined);
            return;
        }
        const timeouts = failures.filter((f) => f.status === "timeout");
        if (timeouts.length > 0 && receiveCount < this.maxReceiveCount) {
            this.log("retry_later", {
                messageId,
                receiveCount,
                maxReceiveCount: this.maxReceiveCount,
                reason: timeouts.map((t) => (t as { reason: string }).reason).join("; "),
            });
            await this.release(flight, messageId, 0, "timeout, retrying");
            return;
        }
        // Permanent (including a timeout on the last allowed receive): error reports, then DLQ, then delete.
        const reasons: string[] = [];
        for (const f of failures) {
            if (f.status !== "permanent" && f.status !== "timeout") continue;
            const reason = f.status === "timeout" ? `${f.reason} (attempt ${receiveCount} of ${this.maxReceiveCount})` : f.reason;
            reasons.push(f.job ? `${f.job.key}: ${reason}` : reason);
            if (f.job) await this.writeErrorReport(f.job, reason, receiveCount, messageId);
        }
        const reason = reasons.join("; ");
        if (!this.cfg.dlqUrl) {
            this.log("failed", { messageId, reason, action: "left for the queue's redrive policy (no DLQ_URL)" });
            return;
        }
        const keys = failures.flatMap((f) => ("job" in f && f.job ? [f.job.key] : []));
        await this.sendToDlq(msg.Body ?? "", reason, receiveCount, keys, messageId);
        await this.deleteMessage(flight, messageId, { deadLettered: true });
    }

    /** One job: download, unpack, process, upload. Never throws: returns how it went. */
    async runJob(job: Job, signal: AbortSignal, receiveCount: number, processed?: () => void): Promise<Outcome> {
        const started = Date.now();
        try {
            await this.processJob(job, signal, processed);
            this.log("job_done", { bucket: job.bucket, key: job.key, seconds: (Date.now() - started) / 1000 });
            return { status: "ok" };
        } catch (err) {
            if (signal.aborted || err instanceof AbortedError) {
                this.log("aborted", { bucket: job.bucket, key: job.key });
                return { status: "aborted" };
            }
            const reason = errorMessage(err);
            // A non-retryable 4xx from S3/SQS (403, 404, 400...) will answer the same next time: permanent.
            const status =
                err instanceof PermanentError || isPermanentServiceError(err)
                    ? "permanent"
                    : err instanceof JobTimeoutError
                      ? "timeout"
                      : "transient";
            this.log("failed", { bucket: job.bucket, key: job.key, status, reason, receiveCount });
            return { status, job, reason };
        }
    }

    /** Download -> unpack -> process -> upload, in a private scratch dir removed afterwards. Throws on failure. */
    async processJob(job: Job, signal: AbortSignal, processed?: () => void): Promise<void> {
        const keys = outputKeys(job.key, { inputPrefix: this.cfg.inputPrefix, outputPrefix: this.cfg.outputPrefix });
        await fs.promises.mkdir(this.cfg.scratchDir, { recursive: true });
        // Named and registered before it exists, so that a concurrent sweep never removes it.
        const jobDir = path.join(path.resolve(this.cfg.scratchDir), `job-${randomBytes(8).toString("hex")}`);
        this.liveJobDirs.add(jobDir);
        try {
            await fs.promises.mkdir(jobDir, { mode: 0o700 });
            const zipPath = path.join(jobDir, "input.zip");
            const { etag, bytes } = await this.retry("download", signal, () => this.download(job, zipPath, signal));
            this.log("downloaded", { bucket: job.bucket, key: job.key, bytes, etag });
            if (signal.aborted) throw new AbortedError();

            const inputDir = path.join(jobDir, "in");
            const workDir = path.join(jobDir, "work");
            await fs.promises.mkdir(inputDir, { mode: 0o700 });
            await fs.promises.mkdir(workDir, { mode: 0o700 });
            const unpacked = await extractZip(zipPath, inputDir, {
                maxEntries: this.cfg.maxZipEntries,
                maxBytes: this.cfg.maxUnzippedBytes,
            }, signal);
            await fs.promises.rm(zipPath, { force: true });
            this.log("unpacked", { key: job.key, files: unpacked.files, bytes: unpacked.bytes });
            if (signal.aborted) throw new AbortedError();

            const result = await this.processor.process({
                inputDir,
                workDir,
                baseName: jobBaseName(job.key),
                sourceKey: job.key,
                timeoutMs: this.cfg.renderTimeoutSeconds * 1000,
                signal,
                log: this.log,
            });
            // Only the outputs (in workDir) are needed from here on: free the unpacked input before the uploads,
            // which may run in the background while the next job downloads and renders.
            await fs.promises.rm(inputDir, { recursive: true, force: true });
            processed?.();
            if (signal.aborted) throw new AbortedError();

            const metadata = {
                ...sourceKeyMetadata(job.key),
                "source-etag": toMetadataValue(etag ?? ""),
                "render-seconds": result.seconds.toFixed(3),
                processor: this.processor.name,
            };
            // Outputs in parallel; a success also removes an earlier failure report for the same input.
            await Promise.all([
                ...result.outputs.map(async (out) => {
                    const key = keys.base + out.suffix;
                    const body = await fs.promises.readFile(out.path);
                    await this.retry("upload", signal, () =>
                        this.s3.send(
                            new PutObjectCommand({
                                Bucket: job.bucket,
                                Key: key,
                                Body: body,
                                ContentType: out.contentType,
                                Metadata: metadata,
                            }),
                            { abortSignal: signal },
                        ),
                    );
                    this.log("uploaded", { bucket: job.bucket, key, bytes: body.length });
                }),
                this.s3
                    .send(new DeleteObjectCommand({ Bucket: job.bucket, Key: keys.error }), { abortSignal: signal })
                    .catch(() => undefined),
            ]);
        } catch (err) {
            if (signal.aborted) throw new AbortedError();
            throw err;
        } finally {
            await fs.promises.rm(jobDir, { recursive: true, force: true }).catch(() => undefined);
            this.liveJobDirs.delete(jobDir);
            await this.sweepScratch();
        }
    }

    /**
     * Removes everything directly under the scratch dir that is not a live job dir of this worker: files a scene
     * wrote outside its own job dir (POV-Ray's I/O restrictions are not enforced), leftovers of killed workers.
     */
    private async sweepScratch(): Promise<void> {
        const root = path.resolve(this.cfg.scratchDir);
        // Never sweep a shared directory by mistake (WORKER_SCRATCH_DIR=/tmp): the scratch dir must be the worker's own.
        if ([path.parse(root).root, path.resolve(os.tmpdir()), path.resolve(os.homedir())].includes(root)) return;
        let names: string[];
        try {
            names = await fs.promises.readdir(root);
        } catch {
            return;
        }
        for (const name of names) {
            const p = path.join(root, name);
            if (this.liveJobDirs.has(p)) continue;
            await fs.promises.rm(p, { recursive: true, force: true }).then(
                () => this.log("scratch_swept", { path: p }),
                (err) => this.log("scratch_sweep_failed", { path: p, reason: errorMessage(err) }),
            );
        }
    }

    private async download(job: Job, dest: string, signal: AbortSignal): Promise<{ etag?: string; bytes: number }> {
        const max = this.cfg.maxInputBytes;
        let res;
        try {
            res = await this.s3.send(new GetObjectCommand({ Bucket: job.bucket, Key: job.key }), { abortSignal: signal });
        } catch (err) {
            const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
            if (e.name === "NoSuchKey" || e.name === "NoSuchBucket" || e.$metadata?.httpStatusCode === 404) {
                throw new PermanentError(`input not found: s3://${job.bucket}/${job.key}`);
            }
            // Without s3:ListBucket, S3 answers a missing key with 403 AccessDenied instead of 404.
            if (e.name === "AccessDenied" || e.$metadata?.httpStatusCode === 403) {
                throw new PermanentError(`input not found or not readable: s3://${job.bucket}/${job.key}`);
            }
            throw err;
        }
        if (res.ContentLength !== undefined && res.ContentLength > max) {
            (res.Body as Readable | undefined)?.destroy?.();
            throw new PermanentError(`input is ${res.ContentLength} bytes, more than MAX_INPUT_BYTES=${max}`);
        }
        let bytes = 0;
        const counter = new Transform({
            transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
                bytes += chunk.length;
                if (bytes > max) cb(new PermanentError(`input is more than MAX_INPUT_BYTES=${max} bytes`));
                else cb(null, chunk);
            },
        });
        await pipeline(res.Body as Readable, counter, fs.createWriteStream(dest, { mode: 0o600 }));
        return { etag: res.ETag, bytes };
    }

    /** Retries transient failures with exponential backoff (on top of the SDK's own retries). */
    private async retry<T>(what: string, signal: AbortSignal, fn: () => Promise<T>, attempts = 4): Promise<T> {
        for (let i = 1; ; i++) {
            try {
                return await fn();
            } catch (err) {
                if (signal.aborted || i >= attempts || !isTransient(err)) throw err;
                const delay = Math.round(250 * 2 ** (i - 1) * (0.5 + Math.random()));
                this.log("retrying", { what, attempt: i, reason: errorMessage(err), retryInMs: delay });
                await sleep(delay, signal);
            }
        }
    }

    private async writeErrorReport(job: Job, reason: string, attempts: number, messageId?: string): Promise<void> {
        const keys = outputKeys(job.key, { inputPrefix: this.cfg.inputPrefix, outputPrefix: this.cfg.outputPrefix });
        const report = {
            reason,
            sourceBucket: job.bucket,
            sourceKey: job.key,
            attempts,
            time: new Date().toISOString(),
            processor: this.processor.name,
            ...(messageId ? { messageId } : {}),
        };
        await this.retry("error report", new AbortController().signal, () =>
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

    /** Sends the original body plus `reason` (also a message attribute) to DLQ_URL. Throws if it cannot. */
    private async sendToDlq(body: string, rawReason: string, attempts: number, keys: string[], messageId?: string): Promise<void> {
        const reason = sqsSafe(rawReason);
        let parsed: unknown;
        try {
            parsed = JSON.parse(body);
        } catch {
            parsed = undefined;
        }
        const failedAt = new Date().toISOString();
        const dlqBody =
            typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
                ? { ...(parsed as object), reason, failedAt, attempts }
                : { body, reason, failedAt, attempts };
        const attr = (v: string) => ({ DataType: "String", StringValue: sqsSafe(v) });
        await this.retry("dlq send", new AbortController().signal, () =>
            this.sqs.send(
                new SendMessageCommand({
                    QueueUrl: this.cfg.dlqUrl,
                    MessageBody: sqsSafe(JSON.stringify(dlqBody)),
                    MessageAttributes: {
                        reason: attr(reason.slice(0, 4000) || "unknown"),
                        attempts: { DataType: "Number", StringValue: String(attempts) },
                        failedAt: attr(failedAt),
                        ...(keys.length ? { sourceKey: attr(keys.join("\n").slice(0, 4000)) } : {}),
                        ...(messageId ? { sourceMessageId: attr(messageId) } : {}),
                    },
                }),
            ),
        );
        this.log("dead_lettered", { messageId, reason });
    }

    private async deleteMessage(flight: InFlight, messageId: string | undefined, fields: Record<string, unknown>): Promise<void> {
        await this.heartbeatsLanded(flight);
        await this.retry("delete", new AbortController().signal, () =>
            this.sqs.send(new DeleteMessageCommand({ QueueUrl: this.cfg.queueUrl, ReceiptHandle: flight.receiptHandle })),
        );
        flight.settled = true;
        this.log("deleted", { messageId, ...fields });
    }

    /** Makes the message visible again after `seconds` (0 = now). */
    private async release(flight: InFlight, messageId: string | undefined, seconds: number, reason: string): Promise<void> {
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

    /** One-shot mode (JOB_BUCKET + JOB_KEY): process one job from the environment, no queue. */
    async runOneShot(bucket: string, key: string): Promise<number> {
        await fs.promises.mkdir(this.cfg.scratchDir, { recursive: true });
        const job: Job = { bucket, key };
        const flight: InFlight = { receiptHandle: "", controller: new AbortController(), settled: false };
        this.inflight.add(flight);
        if (this.stopping) flight.controller.abort();
        this.log("received", { mode: "one-shot", bucket, key });
        const outcome = await this.runJob(job, flight.controller.signal, 1);
        this.inflight.delete(flight);
        if (outcome.status === "ok") {
            this.log("exiting", { reason: "one-shot job done", code: 0 });
            return 0;
        }
        if (outcome.status === "aborted") {
            // No queue will redeliver it: dead-letter it so that the job is not silently lost.
            if (this.cfg.dlqUrl) {
                try {
                    await this.sendToDlq(JSON.stringify({ bucket, key }), `interrupted (${this.stopReason}) before the job finished`, 1, [key]);
                } catch (err) {
                    this.log("dlq_send_failed", { key, reason: errorMessage(err) });
                }
            }
            this.log("exiting", { reason: "stopped before the one-shot job finished", code: 143 });
            return 143;
        }
        // No queue will redeliver a one-shot job: any failure is final. Report it and dead-letter it.
        const reason = outcome.reason;
        try {
            await this.writeErrorReport(job, reason, 1);
        } catch (err) {
            this.log("error_report_failed", { key, reason: errorMessage(err) });
        }
        if (this.cfg.dlqUrl) {
            try {
                await this.sendToDlq(JSON.stringify({ bucket, key }), reason, 1, [key]);
            } catch (err) {
                this.log("dlq_send_failed", { key, reason: errorMessage(err) });
            }
        }
        this.log("exiting", { reason: `one-shot job failed: ${reason}`, code: 1 });
        return 1;
    }
}
