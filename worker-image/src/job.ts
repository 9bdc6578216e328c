/**
 * One job's pipeline, independent of SQS: download the input from S3 -> unpack it (a `.zip`; any other input stays
 * one file) -> run the processor -> upload its outputs (those ending in a declared OUTPUT_SUFFIXES suffix) next to the
 * input (or under OUTPUT_PREFIX), in a private scratch dir removed afterwards. `runJob` classifies
 * how it went (an Outcome) for the caller to settle the message; it never throws.
 */
import { DeleteObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { StaleInputError, bareEtag, ifMatch, isPreconditionFailed, jobId, sameEtag } from "./binding";
import { WorkerConfig } from "./config";
import { AbortedError, JobTimeoutError, PermanentError, errorMessage, isPermanentServiceError } from "./errors";
import { Job, OutputKeys, jobBaseName, outputKeys } from "./keys";
import type { JobStats } from "./events";
import { Logger } from "./log";
import { Processor, ProcessorResult } from "./processor";
import { retry } from "./retry";
import { SpaceProbe, UPLOAD_MIN_PART_BYTES, downloadFile, ensureScratchSpace, formatBytes, scratchFailure, statfsProbe, uploadFile } from "./transfer";
import { extractZip } from "./unzip";

/**
 * How one job went. `permanent` without a job: the message itself could not be parsed. `stale`: the input changed
 * since the job's event (a newer upload has its own event); nothing was written. A failure's `job` carries the
 * ETag the job was bound to (the event's, else the downloaded one), from which its jobId is computed.
 */
export type Outcome = (
    | { status: "ok"; /** The job as bound (a direct job carries the ETag it downloaded). */ job?: Job }
    | { status: "stale"; job: Job; reason: string }
    | { status: "permanent"; job?: Job; reason: string }
    | { status: "timeout"; job: Job; reason: string }
    | { status: "transient"; job: Job; reason: string }
    | { status: "aborted" }
) & {
    /** What the job measured (job events and metrics); absent when it never started. */
    stats?: JobStats;
};

/**
 * The receive loop's hook into a job (ReceiveLoop.start): `ready()` when the job is about to run its processor (its
 * download and unpacking are done), `processed()` once the processor has finished, which may return when to go on to
 * the uploads: the loop lets a finished job's uploads wait while its next job is received, downloaded and unpacked.
 * A plain `() => void` is one too.
 */
export interface ProcessedHook {
    (): void | Promise<void>;
    ready?: () => void;
}

/** The settings a job reads. */
export type JobConfig = Pick<
    WorkerConfig,
    | "scratchDir"
    | "inputPrefix"
    | "outputPrefix"
    | "maxInputBytes"
    | "maxUnzippedBytes"
    | "maxZipEntries"
    | "jobTimeoutSeconds"
    | "outputSuffixes"
>;

/** Whether the input is a zip to unpack (its key ends in `.zip`, any case); any other input is one file. */
export function isZipKey(key: string): boolean {
    return key.toLowerCase().endsWith(".zip");
}

/**
 * The local file name of a single-file input: `input` plus the key's extension when it is a plain one (letters,
 * digits, `_`, `-`; at most 16), so that tools that go by the extension see it; never the key's own (untrusted) name.
 */
export function inputFileName(key: string): string {
    const name = key.slice(key.lastIndexOf("/") + 1);
    const ext = /\.[A-Za-z0-9_-]{1,16}$/.exec(name)?.[0] ?? "";
    return `input${ext}`;
}

export interface JobRunnerDeps {
    s3: S3Client;
    processor: Processor;
    log: Logger;
    /**
     * Aborts the uploads of a job whose processor has finished (the Stopper's deadline after a SIGTERM): a stop does
     * not abort them (the job's own signal aborts only what comes before). Default: never aborted.
     */
    finishing?: AbortSignal;
    /** The scratch dir's free space (default: statfs); tests inject their own. */
    space?: SpaceProbe;
    /** Runs work no outcome depends on (removing a stale error report) in the background; default: unawaited. */
    background?: (work: Promise<unknown>) => void;
}

function toMetadataValue(v: string): string {
    // S3 user metadata travels as HTTP headers: keep it ASCII.
    return encodeURIComponent(v);
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

/** True while a process with this pid exists (signal 0; EPERM: it exists, owned by someone else). */
function processAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch (err) {
        return (err as NodeJS.ErrnoException).code === "EPERM";
    }
}

export class JobRunner {
    private readonly s3: S3Client;
    private readonly processor: Processor;
    private readonly log: Logger;
    private readonly finishing: AbortSignal;
    private readonly space: SpaceProbe;
    private readonly background: (work: Promise<unknown>) => void;
    /** Job directories (absolute) in use by this worker: everything else under the scratch dir is swept. */
    private readonly liveJobDirs = new Set<string>();

    constructor(
        private readonly cfg: JobConfig,
        deps: JobRunnerDeps,
    ) {
        this.s3 = deps.s3;
        this.processor = deps.processor;
        this.log = deps.log;
        this.finishing = deps.finishing ?? new AbortController().signal;
        this.space = deps.space ?? statfsProbe;
        this.background = deps.background ?? ((work) => void work);
    }

    /** One job: download, unpack, process, upload. Never throws: returns how it went. */
    async runJob(unbound: Job, signal: AbortSignal, attempt: number, processed?: ProcessedHook): Promise<Outcome> {
        const started = Date.now();
        const stats: JobStats = { seconds: 0, bytesIn: 0, bytesOut: 0, outputs: [] };
        const measured = () => ((stats.seconds = (Date.now() - started) / 1000), stats);
        // Bound to the event's ETag now, or to the downloaded one by processJob.
        const { etag: eventEtag, ...unversioned } = unbound;
        const job: Job = bareEtag(eventEtag) ? { ...unversioned, etag: bareEtag(eventEtag) } : unversioned;
        const phase = { finishing: false };
        try {
            await this.processJob(job, signal, processed, stats, phase);
            this.log("job_done", { bucket: job.bucket, key: job.key, jobId: jobId(job), seconds: (Date.now() - started) / 1000 });
            return { status: "ok", job, stats: measured() };
        } catch (err) {
            // Once the processor has finished, only the finishing deadline stops the job (not the stop itself).
            if ((phase.finishing ? this.finishing.aborted : signal.aborted) || err instanceof AbortedError) {
                this.log("aborted", { bucket: job.bucket, key: job.key, ...(phase.finishing ? { while: "uploading" } : {}) });
                return { status: "aborted", stats: measured() };
            }
            const reason = errorMessage(err);
            // A non-retryable 4xx from S3/SQS (403, 404, 400...) will answer the same next time: permanent.
            const status =
                err instanceof PermanentError || isPermanentServiceError(err)
                    ? "permanent"
                    : err instanceof JobTimeoutError
                      ? "timeout"
                      : "transient";
            // A final failure of an input replaced or deleted since is none to report (no error report, no DLQ): the
            // newer upload has its own job, and a deleted input is no job any more.
            const stale =
                err instanceof StaleInputError
                    ? err
                    : status !== "transient"
                      ? await this.staleSince(job, signal).catch(() => undefined)
                      : undefined;
            if (stale) {
                this.log("stale", { bucket: job.bucket, key: job.key, etag: job.etag, jobId: jobId(job), reason: stale.message, action: "nothing written" });
                return { status: "stale", job, reason: stale.message, stats: measured() };
            }
            this.log("failed", { bucket: job.bucket, key: job.key, jobId: jobId(job), status, reason, attempt });
            return { status, job, reason, stats: measured() };
        }
    }

    /**
     * Download -> unpack -> process -> upload, in a private scratch dir removed afterwards. Throws on failure;
     * StaleInputError when the input is no longer the version `job.etag` names (at the download or before the
     * uploads). A job without an ETag is bound to the downloaded one (`job.etag` is set).
     * `processed` is called once the processor has finished (before the uploads; they wait for what it returns), its
     * `ready` just before the processor starts. From then on (`phase.finishing`) the version check and the uploads run
     * under the finishing signal, not `signal`: a SIGTERM lets them complete.
     */
    async processJob(job: Job, signal: AbortSignal, processed?: ProcessedHook, stats?: JobStats, phase: { finishing: boolean } = { finishing: false }): Promise<void> {
        const keys = outputKeys(job.key, { inputPrefix: this.cfg.inputPrefix, outputPrefix: this.cfg.outputPrefix });
        await fs.promises.mkdir(this.cfg.scratchDir, { recursive: true });
        // Named and registered before it exists, so that a concurrent sweep never removes it.
        const jobDir = path.join(path.resolve(this.cfg.scratchDir), `job-${randomBytes(8).toString("hex")}`);
        this.liveJobDirs.add(jobDir);
        try {
            await fs.promises.mkdir(jobDir, { mode: 0o700 });
            const zip = isZipKey(job.key);
            const downloadPath = path.join(jobDir, zip ? "input.zip" : "download");
            const { etag, bytes } = await retry(this.log, "download", signal, () => this.download(job, downloadPath, signal));
            job.etag = bareEtag(job.etag) ?? bareEtag(etag);
            if (stats) stats.bytesIn = bytes;
            this.log("downloaded", { bucket: job.bucket, key: job.key, bytes, etag: job.etag, jobId: jobId(job) });
            if (signal.aborted) throw new AbortedError();

            const inputDir = path.join(jobDir, "in");
            const workDir = path.join(jobDir, "work");
            await fs.promises.mkdir(inputDir, { mode: 0o700 });
            await fs.promises.mkdir(workDir, { mode: 0o700 });
            let inputPath = inputDir;
            if (zip) {
                // One probe of the free space: room for MAX_UNZIPPED_BYTES (the cap while inflating) needs no look at
                // what the entries declare, and a probe that failed can't check them either (the writes will tell).
                const space = await this.space(this.cfg.scratchDir).catch(() => undefined);
                const room = (declared: number) =>
                    ensureScratchSpace(this.cfg.scratchDir, declared, `unpacking the input (${formatBytes(declared)} unzipped)`, async () => space!);
                const unpacked = await extractZip(downloadPath, inputDir, {
                    maxEntries: this.cfg.maxZipEntries,
                    maxBytes: this.cfg.maxUnzippedBytes,
                }, signal, space === undefined || space.free >= this.cfg.maxUnzippedBytes ? undefined : room);
                await fs.promises.rm(downloadPath, { force: true });
                this.log("unpacked", { key: job.key, files: unpacked.files, bytes: unpacked.bytes });
            } else {
                // One file, alone in the input dir (downloaded under the same MAX_INPUT_BYTES cap).
                inputPath = path.join(inputDir, inputFileName(job.key));
                await fs.promises.rename(downloadPath, inputPath);
            }
            if (signal.aborted) throw new AbortedError();

            processed?.ready?.();
            const result = await this.processor.process({
                inputKind: zip ? "directory" : "file",
                inputPath,
                inputDir,
                workDir,
                baseName: jobBaseName(job.key),
                sourceKey: job.key,
                timeoutMs: this.cfg.jobTimeoutSeconds * 1000,
                signal,
                log: this.log,
            });
            // Only the outputs (in workDir) are needed from here on: free the unpacked input before the uploads,
            // which may run in the background while the next job downloads and runs.
            await fs.promises.rm(inputDir, { recursive: true, force: true });
            // The render is done: a stop from now on lets its outputs upload, until the finishing deadline.
            phase.finishing = true;
            const finishing = this.finishing;
            // The receive loop may let the uploads wait (briefly) while it readies the next job.
            await processed?.();

            // Bound to a version: outputs of an input that changed meanwhile would overwrite the newer render's.
            const stale = await this.staleSince(job, finishing);
            if (stale) throw stale;
            // `source-etag` as S3 answers it (quoted), as before.
            await this.uploadOutputs(job, keys, result, job.etag && ifMatch(job.etag), finishing, stats);
        } catch (err) {
            if (phase.finishing ? this.finishing.aborted : signal.aborted) throw new AbortedError();
            // Out of scratch space (the download, unzip, the tool): permanent, with the sizes and the way out.
            throw await scratchFailure(err, this.cfg.scratchDir, this.space);
        } finally {
            await fs.promises.rm(jobDir, { recursive: true, force: true }).catch(() => undefined);
            this.liveJobDirs.delete(jobDir);
            await this.sweepScratch();
        }
    }

    /** Uploads the outputs in parallel; a success also removes an earlier failure report for the same input. */
    private async uploadOutputs(job: Job, keys: OutputKeys, result: ProcessorResult, etag: string | undefined, signal: AbortSignal, stats?: JobStats): Promise<void> {
        const metadata = {
            ...sourceKeyMetadata(job.key),
            "source-etag": toMetadataValue(etag ?? ""),
            "job-id": jobId(job),
            "processor-seconds": result.seconds.toFixed(3),
            processor: this.processor.name,
        };
        // Only declared outputs: the task role may write nothing else (and the launcher ignores only those).
        const declared = (out: ProcessorResult["outputs"][number]) => this.cfg.outputSuffixes.includes(out.suffix);
        for (const out of result.outputs.filter((o) => !declared(o))) {
            this.log("output_not_declared", { key: job.key, suffix: out.suffix, declared: this.cfg.outputSuffixes });
        }
        if (!result.outputs.some(declared)) {
            const made = result.outputs.map((o) => o.suffix).join(", ") || "nothing";
            throw new PermanentError(`the ${this.processor.name} processor made ${made}, none of OUTPUT_SUFFIXES ${this.cfg.outputSuffixes.join(", ")}`);
        }
        // Outputs up to one part go up at once (one PutObject each); bigger ones (multipart, parts in flight bounded
        // by transfer.ts) one after another, so that memory stays bounded whatever their number and size.
        const outputs = result.outputs.filter(declared);
        const sizes = await Promise.all(outputs.map((o) => fs.promises.stat(o.path).then((st) => st.size)));
        const upload = async (out: ProcessorResult["outputs"][number]) => {
            const key = keys.base + out.suffix;
            const up = await retry(this.log, "upload", signal, () =>
                uploadFile(this.s3, { bucket: job.bucket, key, file: out.path, contentType: out.contentType, metadata, signal, log: this.log }),
            );
            this.log("uploaded", { bucket: job.bucket, key, bytes: up.bytes, ...(up.parts > 0 ? { parts: up.parts } : {}) });
            if (stats) (stats.bytesOut += up.bytes), stats.outputs.push(key);
        };
        // Best effort, and no outcome depends on it: in the background (the worker waits for it before exiting).
        this.background(this.s3.send(new DeleteObjectCommand({ Bucket: job.bucket, Key: keys.error }), { abortSignal: signal }).catch(() => undefined));
        await Promise.all([
            ...outputs.filter((_, i) => sizes[i] <= UPLOAD_MIN_PART_BYTES).map(upload),
            (async () => {
                for (const out of outputs.filter((_, i) => sizes[i] > UPLOAD_MIN_PART_BYTES)) await upload(out);
            })(),
        ]);
    }

    /**
     * At start, before the first job: sweeps the scratch dir (what a killed worker on this dir left), and, when the
     * scratch dir is the per-process default (`<tmp>/lambda-ecs-worker/<pid>`), the sibling dirs of workers whose
     * process is gone (a worker killed with SIGKILL never removes its own).
     */
    async sweepAtStart(): Promise<void> {
        await this.sweepScratch();
        const root = path.resolve(this.cfg.scratchDir);
        const parent = path.dirname(root);
        if (path.basename(root) !== String(process.pid) || parent !== path.resolve(os.tmpdir(), "lambda-ecs-worker")) return;
        let names: string[];
        try {
            names = await fs.promises.readdir(parent);
        } catch {
            return;
        }
        for (const name of names) {
            if (!/^\d+$/.test(name) || name === String(process.pid) || processAlive(Number(name))) continue;
            const p = path.join(parent, name);
            await fs.promises.rm(p, { recursive: true, force: true }).then(
                () => this.log("scratch_swept", { path: p, reason: `worker ${name} is gone` }),
                (err) => this.log("scratch_sweep_failed", { path: p, reason: errorMessage(err) }),
            );
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

    /**
     * Undefined while the input still has the ETag the job is bound to (or the job is bound to none), else the
     * StaleInputError to end the job with (a newer version, or the input is gone). HeadObject with If-Match, and the
     * answered ETag compared as well.
     */
    async staleSince(job: Job, signal: AbortSignal): Promise<StaleInputError | undefined> {
        const etag = bareEtag(job.etag);
        if (etag === undefined) return undefined;
        try {
            const head = await retry(this.log, "version check", signal, () =>
                this.s3.send(new HeadObjectCommand({ Bucket: job.bucket, Key: job.key, IfMatch: ifMatch(etag) }), { abortSignal: signal }),
            );
            if (head?.ETag === undefined || sameEtag(head.ETag, etag)) return undefined;
            return new StaleInputError(`input changed: s3://${job.bucket}/${job.key} is now ETag ${bareEtag(head.ETag)}, the job was for ${etag}`);
        } catch (err) {
            if (isPreconditionFailed(err)) {
                return new StaleInputError(`input changed: s3://${job.bucket}/${job.key} no longer has ETag ${etag} (newer upload)`);
            }
            // 404, or 403 (a missing key without s3:ListBucket): deleted (stale), or unreadable (thrown).
            const gone = await this.inputGone(job, err, signal);
            if (gone instanceof StaleInputError) return gone;
            throw gone ?? err;
        }
    }

    /**
     * After a GetObject or HeadObject of the input failed: the StaleInputError (deleted) of an input that no longer
     * exists, or the error to end the job with, or undefined when `err` is not a 404 or 403. S3 answers a missing key
     * with 404 only to a caller allowed s3:ListBucket, else 403 AccessDenied (and a HeadObject's 403 has no body): so
     * both are told apart by listing the key (ListObjectsV2, Prefix = the key, MaxKeys 1; the task role may list
     * exactly the input prefix). Absent: deleted. Present after a 403: the input exists and cannot be read, a
     * permanent failure naming AccessDenied and what to check. Present after a 404: it was just re-created, tried again.
     */
    private async inputGone(job: Job, err: unknown, signal: AbortSignal): Promise<Error | undefined> {
        const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
        const status = e.$metadata?.httpStatusCode;
        const where = `s3://${job.bucket}/${job.key}`;
        if (e.name === "NoSuchBucket") return new PermanentError(`input not found: bucket ${job.bucket} does not exist (${where})`);
        const notFound = e.name === "NotFound" || e.name === "NoSuchKey" || status === 404;
        const denied = e.name === "AccessDenied" || e.name === "Forbidden" || status === 403;
        if (!notFound && !denied) return undefined;
        let listed;
        try {
            listed = await retry(this.log, "input listing", signal, () =>
                this.s3.send(new ListObjectsV2Command({ Bucket: job.bucket, Prefix: job.key, MaxKeys: 1 }), { abortSignal: signal }),
            );
        } catch (listErr) {
            if (!isPermanentServiceError(listErr)) throw listErr;
            return new PermanentError(
                `input not readable: ${where}: ${notFound ? "NotFound" : "AccessDenied"}, and listing it (to tell a deleted input from an ` +
                    `unreadable one) failed: ${errorMessage(listErr)} (the task role needs s3:ListBucket on the bucket for the input prefix)`,
            );
        }
        const exists = (listed.Contents ?? []).some((o) => o.Key === job.key);
        if (!exists) return new StaleInputError(`input deleted: ${where}${job.etag ? ` (ETag ${bareEtag(job.etag)})` : ""} no longer exists`, true);
        if (notFound) return new Error(`input ${where} answered 404 but is listed: re-created meanwhile`);
        return new PermanentError(
            `input not readable: ${where} exists but reading it was refused (AccessDenied): for an SSE-KMS bucket set ` +
                `bucketKmsKeyArn (the task role needs kms:Decrypt on its key), and check the bucket policy`,
        );
    }

    /**
     * Downloads the input to `dest` (transfer.ts: one stream, or parallel ranged GETs for a big one), at most
     * MAX_INPUT_BYTES and only when the scratch dir has room for it; a missing or unreadable input is permanent. With
     * a bound ETag, asks for that version only (If-Match): a 412 is a StaleInputError.
     */
    private async download(job: Job, dest: string, signal: AbortSignal): Promise<{ etag?: string; bytes: number }> {
        const max = this.cfg.maxInputBytes;
        const etag = bareEtag(job.etag);
        try {
            const room = (size: number) => ensureScratchSpace(this.cfg.scratchDir, size, `the input s3://${job.bucket}/${job.key} (${formatBytes(size)})`, this.space);
            return await downloadFile(this.s3, { bucket: job.bucket, key: job.key, etag, file: dest, maxBytes: max, beforeWrite: room, signal, log: this.log });
        } catch (err) {
            if (etag !== undefined && isPreconditionFailed(err)) {
                throw new StaleInputError(`input changed: s3://${job.bucket}/${job.key} no longer has ETag ${etag} (newer upload)`);
            }
            // 404, or 403 (S3's answer for a missing key to a caller without s3:ListBucket): deleted, or unreadable.
            throw (await this.inputGone(job, err, signal)) ?? err;
        }
    }
}
