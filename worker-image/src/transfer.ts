/**
 * Moving files between the scratch dir and S3 in bounded memory, whatever their size (up to S3's 5 TiB object limit):
 *
 * - uploadFile: a file up to one part (UPLOAD_MIN_PART_BYTES) is one PutObject; a bigger one is a multipart upload
 *   read from disk part by part, its part size chosen from the file's size so that 10,000 parts reach the 5 TiB limit,
 *   and at most UPLOAD_BUFFER_BYTES of parts in flight. On failure or abort the multipart upload is aborted once every
 *   part request has ended, so that no parts are left (and billed). (Not `@aws-sdk/lib-storage`'s Upload: its stream
 *   chunker copies each part twice over (~2.5x the parts in flight, measured: 280 vs 196 MiB peak RSS for the same
 *   1 GiB upload), its `done()` rejects on abort before its own AbortMultipartUpload is sent, and a failed part does
 *   not stop the others.)
 * - downloadFile: one GetObject for the first DOWNLOAD_THRESHOLD_BYTES (the whole object when it is no bigger); the
 *   rest of a bigger object as ranged GETs of DOWNLOAD_PART_BYTES, DOWNLOAD_CONCURRENCY at a time, each with If-Match
 *   on the ETag the first answer had (or the job is bound to), written at its offset into the file. The size is
 *   known from the first answer, before anything is written: MAX_INPUT_BYTES and the free-space check apply then.
 * - ensureScratchSpace: the scratch dir's free space (statfs) against what a job is about to write.
 *
 * Errors are the SDK's (a 412 is the caller's to read as a stale input), PermanentError for a rule the object breaks,
 * AbortedError when the caller's signal aborted.
 */
import {
    AbortMultipartUploadCommand,
    CompleteMultipartUploadCommand,
    CreateMultipartUploadCommand,
    GetObjectCommand,
    GetObjectCommandOutput,
    PutObjectCommand,
    S3Client,
    UploadPartCommand,
} from "@aws-sdk/client-s3";
import * as fs from "fs";
import { Readable, Writable } from "stream";
import { pipeline } from "stream/promises";
import { bareEtag, ifMatch } from "./binding";
import { AbortedError, PermanentError, errorMessage, isTransient, localResourceCode } from "./errors";
import { Logger } from "./log";
import { retry, sleep } from "./retry";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** S3's limits: parts per multipart upload, smallest part (but the last), largest object. */
export const S3_MAX_PARTS = 10000;
export const S3_MIN_PART_BYTES = 5 * MiB;
export const S3_MAX_OBJECT_BYTES = 5 * 1024 * GiB;

/** Smallest part this worker uploads (above S3's 5 MiB); a file up to this size is one PutObject. */
export const UPLOAD_MIN_PART_BYTES = 8 * MiB;
/** Bytes of parts one upload keeps in flight (parts in flight x part size), at most UPLOAD_MAX_PARTS_IN_FLIGHT parts. */
export const UPLOAD_BUFFER_BYTES = 64 * MiB;
export const UPLOAD_MAX_PARTS_IN_FLIGHT = 8;

/** Objects up to this size come down as one GetObject (one stream); bigger ones as parallel ranged GETs. */
export const DOWNLOAD_THRESHOLD_BYTES = 64 * MiB;
export const DOWNLOAD_PART_BYTES = 16 * MiB;
/** Ranged GETs of one download at a time (the first, threshold-sized one included). */
export const DOWNLOAD_CONCURRENCY = 8;

/**
 * The part size of a `size`-byte upload: at least UPLOAD_MIN_PART_BYTES, else the smallest whole number of MiB with
 * which S3_MAX_PARTS parts hold the file (5 TiB: 525 MiB parts).
 */
export function uploadPartSize(size: number): number {
    return Math.max(UPLOAD_MIN_PART_BYTES, Math.ceil(size / S3_MAX_PARTS / MiB) * MiB);
}

/** Parts in flight for a part size: UPLOAD_BUFFER_BYTES worth, 1 to UPLOAD_MAX_PARTS_IN_FLIGHT. */
export function uploadPartsInFlight(partSize: number): number {
    return Math.max(1, Math.min(UPLOAD_MAX_PARTS_IN_FLIGHT, Math.floor(UPLOAD_BUFFER_BYTES / partSize)));
}

/** `1234567890 bytes (1.15 GiB)`: exact for the record, readable for people. */
export function formatBytes(n: number): string {
    const units: Array<[number, string]> = [[1024 * GiB, "TiB"], [GiB, "GiB"], [MiB, "MiB"], [1024, "KiB"]];
    const [div, unit] = units.find(([d]) => n >= d) ?? [1, ""];
    return unit ? `${n} bytes (${(n / div).toFixed(2)} ${unit})` : `${n} bytes`;
}

function abortedError(signal: AbortSignal): AbortedError {
    return signal.reason instanceof AbortedError ? signal.reason : new AbortedError();
}

/** A controller aborted when `parent` aborts (or already is); `dispose` stops listening. */
function linkedController(parent: AbortSignal): { controller: AbortController; dispose: () => void } {
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    if (parent.aborted) controller.abort();
    else parent.addEventListener("abort", onAbort, { once: true });
    return { controller, dispose: () => parent.removeEventListener("abort", onAbort) };
}

// ---------------------------------------------------------------------------------------------------------------
// Upload

export interface UploadFileOptions {
    bucket: string;
    key: string;
    /** The local file to upload. */
    file: string;
    contentType?: string;
    metadata?: Record<string, string>;
    /** Aborts the upload (a multipart upload is then aborted on S3 too). */
    signal: AbortSignal;
    log?: Logger;
    /** Overrides for tests and benchmarks (defaults: uploadPartSize, uploadPartsInFlight). */
    partSize?: number;
    partsInFlight?: number;
}

export interface UploadFileResult {
    bytes: number;
    /** 0: one PutObject; else the number of parts. */
    parts: number;
    etag?: string;
}

/** Uploads `file` to s3://bucket/key: one PutObject up to one part's size, else a multipart upload (see the top). */
export async function uploadFile(s3: S3Client, o: UploadFileOptions): Promise<UploadFileResult> {
    if (o.signal.aborted) throw abortedError(o.signal);
    const size = (await fs.promises.stat(o.file)).size;
    if (size > S3_MAX_OBJECT_BYTES) {
        throw new PermanentError(`output ${o.key} is ${formatBytes(size)}, more than S3's object size limit of ${formatBytes(S3_MAX_OBJECT_BYTES)}`);
    }
    const partSize = Math.max(S3_MIN_PART_BYTES, o.partSize ?? uploadPartSize(size));
    const params = { Bucket: o.bucket, Key: o.key, ContentType: o.contentType, Metadata: o.metadata };
    if (size <= partSize) {
        const body = await fs.promises.readFile(o.file);
        const res = await s3.send(new PutObjectCommand({ ...params, Body: body }), { abortSignal: o.signal });
        return { bytes: body.length, parts: 0, etag: res.ETag };
    }
    return multipartUpload(s3, o, params, size, partSize);
}

/** Reads `length` bytes at `position` into the start of `buf`. */
async function readFully(fh: fs.promises.FileHandle, buf: Buffer, length: number, position: number): Promise<void> {
    let done = 0;
    while (done < length) {
        const { bytesRead } = await fh.read(buf, done, length - done, position + done);
        if (bytesRead === 0) throw new Error(`file ended at byte ${position + done}, expected ${length} bytes from ${position}`);
        done += bytesRead;
    }
}

/**
 * The multipart upload: CreateMultipartUpload (content type, metadata; CRC32 checksums when the client computes them,
 * as S3 then wants for every part), then `partsInFlight` workers, each reading its next part from the file at its
 * offset into its own buffer (reused: parts in flight x part size is all the memory the upload holds) and sending it
 * (UploadPart, retried on transient failures), then CompleteMultipartUpload with every part's ETag. The first failure,
 * or the caller's abort, cancels the parts in flight and stops the others; once every part request has ended the
 * upload is aborted (AbortMultipartUpload, awaited), so that no part is left behind or lands after the abort.
 * CreateMultipartUpload is never cancelled (its UploadId is what the abort needs); a CompleteMultipartUpload under way
 * finishes (the abort then finds nothing to do).
 */
async function multipartUpload(
    s3: S3Client,
    o: UploadFileOptions,
    params: { Bucket: string; Key: string; ContentType?: string; Metadata?: Record<string, string> },
    size: number,
    partSize: number,
): Promise<UploadFileResult> {
    const count = Math.ceil(size / partSize);
    if (count > S3_MAX_PARTS) throw new PermanentError(`output ${o.key}: ${count} parts of ${partSize} bytes, more than S3's ${S3_MAX_PARTS}`);
    const inFlight = Math.min(count, o.partsInFlight ?? uploadPartsInFlight(partSize));
    const checksum = (await s3.config.requestChecksumCalculation()) === "WHEN_SUPPORTED" ? ("CRC32" as const) : undefined;
    const { controller, dispose } = linkedController(o.signal);
    const created = await s3.send(new CreateMultipartUploadCommand({ ...params, ...(checksum && { ChecksumAlgorithm: checksum }) }));
    const uploadId = created.UploadId!;
    const fh = await fs.promises.open(o.file, "r");
    const parts: Array<{ PartNumber: number; ETag?: string; ChecksumCRC32?: string }> = new Array(count);
    let next = 0;
    let failure: unknown;
    // Each worker reads its parts into its own buffer, reused once the part's request has ended.
    const worker = async () => {
        const buf = Buffer.allocUnsafe(partSize);
        while (failure === undefined && !controller.signal.aborted && next < count) {
            const n = next++;
            const start = n * partSize;
            const length = Math.min(partSize, size - start);
            try {
                await readFully(fh, buf, length, start);
                const body = buf.subarray(0, length);
                const out = await retry(o.log ?? (() => undefined), `upload part ${n + 1}`, controller.signal, () =>
                    s3.send(
                        new UploadPartCommand({ Bucket: o.bucket, Key: o.key, UploadId: uploadId, PartNumber: n + 1, Body: body, ContentLength: length, ...(checksum && { ChecksumAlgorithm: checksum }) }),
                        { abortSignal: controller.signal },
                    ),
                );
                parts[n] = { PartNumber: n + 1, ETag: out.ETag, ...(out.ChecksumCRC32 !== undefined && { ChecksumCRC32: out.ChecksumCRC32 }) };
            } catch (err) {
                if (!controller.signal.aborted) failure ??= err;
                controller.abort();
            }
        }
    };
    try {
        await Promise.all(Array.from({ length: inFlight }, worker));
        if (o.signal.aborted) throw abortedError(o.signal);
        if (failure !== undefined) throw failure;
        const out = await s3.send(new CompleteMultipartUploadCommand({ Bucket: o.bucket, Key: o.key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
        o.log?.("multipart_uploaded", { key: o.key, bytes: size, parts: count, partSize });
        return { bytes: size, parts: count, etag: out.ETag };
    } catch (err) {
        const cause = o.signal.aborted ? abortedError(o.signal) : err;
        await abortMultipart(s3, o, uploadId, errorMessage(cause));
        throw cause;
    } finally {
        dispose();
        await fh.close().catch(() => undefined);
    }
}

/** AbortMultipartUpload, retried on transient errors; NoSuchUpload (already gone) counts as done. Never throws. */
async function abortMultipart(s3: S3Client, o: UploadFileOptions, uploadId: string, reason: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
        try {
            await s3.send(new AbortMultipartUploadCommand({ Bucket: o.bucket, Key: o.key, UploadId: uploadId }), {
                abortSignal: AbortSignal.timeout(30000),
            });
            o.log?.("multipart_aborted", { key: o.key, uploadId, reason });
            return;
        } catch (err) {
            const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
            if (e.name === "NoSuchUpload" || e.$metadata?.httpStatusCode === 404) {
                o.log?.("multipart_aborted", { key: o.key, uploadId, reason, already: true });
                return;
            }
            if (attempt >= 4 || !isTransient(err)) {
                // The bucket's lifecycle rule (the component's) removes it after a day.
                o.log?.("multipart_abort_failed", { key: o.key, uploadId, reason: errorMessage(err) });
                return;
            }
            await sleep(250 * 2 ** (attempt - 1));
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Download

export interface DownloadFileOptions {
    bucket: string;
    key: string;
    /** The ETag the job is bound to (bare or quoted): every GET asks for it (If-Match). Else the first answer's. */
    etag?: string;
    /** Where to write (created or truncated, mode 0600). */
    file: string;
    /** MAX_INPUT_BYTES: a bigger object fails before anything is written (and while streaming, should S3 lie). */
    maxBytes: number;
    /** Called with the object's size before anything is written; throws to refuse (the free-space check). */
    beforeWrite?: (size: number) => Promise<void> | void;
    signal: AbortSignal;
    log?: Logger;
    /** Overrides for tests and benchmarks. */
    threshold?: number;
    partSize?: number;
    concurrency?: number;
}

export interface DownloadFileResult {
    /** The ETag as S3 answered it (quoted). */
    etag?: string;
    bytes: number;
    /** GETs made (1: one stream). */
    requests: number;
}

/** `bytes a-b/total` of a 206's Content-Range. */
function contentRange(v: string | undefined): { start: number; end: number; total: number } | undefined {
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(v ?? "");
    return m ? { start: Number(m[1]), end: Number(m[2]), total: Number(m[3]) } : undefined;
}

function isInvalidRange(err: unknown): boolean {
    const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
    return e?.name === "InvalidRange" || e?.Code === "InvalidRange" || e?.$metadata?.httpStatusCode === 416;
}

/** A Writable that writes what it gets at `offset` onwards of an open file, at most `limit` bytes. */
function writerAt(fh: fs.promises.FileHandle, offset: number, limit: number, tooMuch: () => Error): Writable & { written: () => number } {
    let written = 0;
    const w = new Writable({
        highWaterMark: MiB,
        write(chunk: Buffer, _enc, cb) {
            if (written + chunk.length > limit) return cb(tooMuch());
            const at = offset + written;
            written += chunk.length;
            writeFully(fh, chunk, at).then(() => cb(), cb);
        },
    });
    return Object.assign(w, { written: () => written });
}

async function writeFully(fh: fs.promises.FileHandle, chunk: Buffer, position: number): Promise<void> {
    let done = 0;
    while (done < chunk.length) {
        const { bytesWritten } = await fh.write(chunk, done, chunk.length - done, position + done);
        done += bytesWritten;
    }
}

/**
 * Downloads s3://bucket/key to `file` (see the top). Returns the ETag S3 answered and the bytes written. A range that
 * ends early is an error (transient), so is one that answers another range; a 412 is the SDK's error (stale input).
 */
export async function downloadFile(s3: S3Client, o: DownloadFileOptions): Promise<DownloadFileResult> {
    if (o.signal.aborted) throw abortedError(o.signal);
    const threshold = o.threshold ?? DOWNLOAD_THRESHOLD_BYTES;
    const partSize = o.partSize ?? DOWNLOAD_PART_BYTES;
    const concurrency = Math.max(1, o.concurrency ?? DOWNLOAD_CONCURRENCY);
    const bound = bareEtag(o.etag);
    const get = (etag: string | undefined, range?: [number, number], signal = o.signal) =>
        s3.send(
            new GetObjectCommand({
                Bucket: o.bucket,
                Key: o.key,
                ...(etag !== undefined ? { IfMatch: ifMatch(etag) } : {}),
                ...(range ? { Range: `bytes=${range[0]}-${range[1]}` } : {}),
            }),
            { abortSignal: signal },
        );
    let first: GetObjectCommandOutput;
    try {
        first = await get(bound, [0, threshold - 1]);
    } catch (err) {
        // An empty object has no byte 0: S3 answers a range with 416. Ask for the whole (empty) object.
        if (!isInvalidRange(err)) throw err;
        first = await get(bound);
    }
    const range = contentRange(first.ContentRange);
    // No Content-Range: the whole object (an empty one, or a server that ignores Range), of ContentLength bytes
    // (unknown without it: counted against MAX_INPUT_BYTES while streaming).
    const known = range !== undefined || first.ContentLength !== undefined;
    const total = range ? range.total : (first.ContentLength ?? 0);
    const firstLength = range ? range.end - range.start + 1 : total;
    const destroy = () => (first.Body as Readable | undefined)?.destroy?.();
    if (total > o.maxBytes) {
        destroy();
        throw new PermanentError(`input is ${total} bytes, more than MAX_INPUT_BYTES=${o.maxBytes}`);
    }
    if (range && range.start !== 0) {
        destroy();
        throw new Error(`asked for bytes 0-${threshold - 1} of s3://${o.bucket}/${o.key}, got ${first.ContentRange}`);
    }
    try {
        await o.beforeWrite?.(total);
    } catch (err) {
        destroy();
        throw err;
    }
    const etag = bareEtag(bound ?? first.ETag);
    const fh = await fs.promises.open(o.file, "w", 0o600);
    const { controller, dispose } = linkedController(o.signal);
    let requests = 1;
    let streamed = 0;
    try {
        if (firstLength < total) await fh.truncate(total);
        // Part 0 is the first answer's body; parts 1.. are the rest in DOWNLOAD_PART_BYTES ranges.
        const ranges: Array<[number, number]> = [[0, firstLength - 1]];
        for (let start = firstLength; start < total; start += partSize) ranges.push([start, Math.min(total, start + partSize) - 1]);
        let firstBody: Readable | undefined = first.Body as Readable | undefined;
        const fetchRange = async (i: number): Promise<void> => {
            const [start, end] = ranges[i];
            const length = end - start + 1;
            await retry(o.log ?? (() => undefined), `download bytes ${start}-${end}`, controller.signal, async () => {
                let body: Readable | undefined;
                if (i === 0 && firstBody) {
                    body = firstBody;
                    firstBody = undefined;
                } else {
                    requests++;
                    const res = await get(etag, total > 0 ? [start, end] : undefined, controller.signal);
                    const got = contentRange(res.ContentRange);
                    if (total > 0 && (!got || got.start !== start || got.end !== end)) {
                        (res.Body as Readable | undefined)?.destroy?.();
                        throw new Error(`asked for bytes ${start}-${end} of s3://${o.bucket}/${o.key}, got ${res.ContentRange ?? "the whole object"}`);
                    }
                    body = res.Body as Readable;
                }
                if (!body) throw new Error(`no body for bytes ${start}-${end} of s3://${o.bucket}/${o.key}`);
                const sink = known
                    ? writerAt(fh, start, length, () => new Error(`bytes ${start}-${end} of s3://${o.bucket}/${o.key}: more bytes than asked for`))
                    : writerAt(fh, 0, o.maxBytes, () => new PermanentError(`input is more than MAX_INPUT_BYTES=${o.maxBytes} bytes`));
                await pipeline(body, sink, { signal: controller.signal });
                if (!known) streamed = sink.written();
                else if (sink.written() !== length) {
                    throw Object.assign(new Error(`bytes ${start}-${end} of s3://${o.bucket}/${o.key} ended after ${sink.written()} of ${length}`), { code: "ECONNRESET" });
                }
            });
        };
        // A pool of `concurrency` workers over the ranges; the first failure aborts the others.
        let next = 0;
        let failure: unknown;
        const worker = async () => {
            while (failure === undefined && !controller.signal.aborted && next < ranges.length) {
                const i = next++;
                try {
                    await fetchRange(i);
                } catch (err) {
                    failure ??= err;
                    controller.abort();
                }
            }
        };
        await Promise.all(Array.from({ length: Math.min(concurrency, ranges.length) }, worker));
        (firstBody as Readable | undefined)?.destroy();
        if (o.signal.aborted) throw abortedError(o.signal);
        if (failure !== undefined) throw failure;
        if (ranges.length > 1) o.log?.("ranged_download", { key: o.key, bytes: total, requests, partSize, concurrency });
        return { etag: first.ETag, bytes: known ? total : streamed, requests };
    } finally {
        dispose();
        destroy();
        await fh.close().catch(() => undefined);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Scratch space

export interface SpaceInfo {
    /** Bytes an unprivileged process may still write (statfs bavail x bsize). */
    free: number;
    /** Size of the file system (blocks x bsize). */
    total: number;
}

/** Probes a directory's file system. */
export type SpaceProbe = (dir: string) => Promise<SpaceInfo>;

export const statfsProbe: SpaceProbe = async (dir) => {
    const s = await fs.promises.statfs(dir);
    return { free: Number(s.bavail) * Number(s.bsize), total: Number(s.blocks) * Number(s.bsize) };
};

/** What to say about the fix in a scratch-space failure. */
export const SCRATCH_SPACE_HINT =
    "give the task more scratch space (the component's ephemeralStorageGiB; WORKER_SCRATCH_DIR's file system elsewhere)";

/**
 * Throws a PermanentError when `dir`'s file system has less than `need` bytes free, naming what needs them
 * (`what`, e.g. "the input s3://b/k (20 GiB)"), the free and total space, and ephemeralStorageGiB. Never throws for a
 * probe that fails (the write itself will tell).
 */
export async function ensureScratchSpace(dir: string, need: number, what: string, probe: SpaceProbe = statfsProbe): Promise<void> {
    let space: SpaceInfo;
    try {
        space = await probe(dir);
    } catch {
        return;
    }
    if (space.free >= need) return;
    throw new PermanentError(
        `not enough scratch space: ${what} needs ${formatBytes(need)}, ${dir} has ${formatBytes(space.free)} free of ` +
            `${formatBytes(space.total)}; ${SCRATCH_SPACE_HINT}`,
    );
}

/** What a tool prints when the disk is full (the strerror of ENOSPC and EDQUOT). */
const OUT_OF_SPACE = /no space left on device|disk quota exceeded/i;

/**
 * A job's failure as the reason to report when it ran out of a local resource: a PermanentError naming the scratch
 * dir's free and total space and ephemeralStorageGiB for a local resource error (ENOSPC, EDQUOT: see
 * LOCAL_RESOURCE_CODES) or a processor failure whose message says the disk was full; a PermanentError for a file too
 * large (EFBIG, ERR_FS_FILE_TOO_LARGE). Anything else is returned as it is.
 */
export async function scratchFailure(err: unknown, dir: string, probe: SpaceProbe = statfsProbe): Promise<unknown> {
    const code = localResourceCode(err);
    const toolSaysFull = err instanceof PermanentError && OUT_OF_SPACE.test(err.message);
    if (code === undefined && !toolSaysFull) return err;
    if (code === "EFBIG" || code === "ERR_FS_FILE_TOO_LARGE") return new PermanentError(`a file is too large (${code}): ${errorMessage(err)}`);
    let space = "";
    try {
        const s = await probe(dir);
        space = `: ${dir} has ${formatBytes(s.free)} free of ${formatBytes(s.total)}`;
    } catch {
        // the reason without the figures
    }
    return new PermanentError(`scratch space ran out (${errorMessage(err)})${space}; ${SCRATCH_SPACE_HINT}`);
}
