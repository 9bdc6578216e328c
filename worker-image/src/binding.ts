/**
 * Version binding and job identity. A job is bound to one version of its input: the ETag its S3 event names (or, for
 * a direct `{bucket, key}` job without one, the ETag it downloads). The download asks for that ETag (GetObject
 * If-Match); before its outputs are uploaded the input is checked again (HeadObject If-Match). A mismatch means a newer
 * upload, with its own event: the job is stale and writes nothing.
 *
 * `jobId` names a job stably: the same bucket, key and input ETag always give the same id, so that consumers of the
 * (at-least-once) dead-letter queue, the error reports and the outputs can count a job once.
 */
import { createHash } from "crypto";

/** The input changed (or disappeared) since the event that queued this job: a newer upload has its own event. */
export class StaleInputError extends Error {
    readonly kind = "stale" as const;
    /** @param deleted the input no longer exists at all (rather than having a newer version). */
    constructor(
        message: string,
        readonly deleted = false,
    ) {
        super(message);
        this.name = "StaleInputError";
    }
}

/**
 * An ETag without its quotes (and without a weak `W/` prefix): S3 event notifications carry `eTag` bare
 * (`6654c7...`), S3's GetObject/HeadObject answer it quoted (`"6654c7..."`). Undefined or empty stays undefined.
 */
export function bareEtag(etag: string | undefined): string | undefined {
    if (etag === undefined) return undefined;
    const bare = etag.trim().replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
    return bare === "" ? undefined : bare;
}

/** The quoted form for an If-Match header (what S3 answers in ETag; S3 and moto accept it on GetObject and HeadObject). */
export function ifMatch(etag: string): string {
    return `"${bareEtag(etag) ?? ""}"`;
}

/** True when two ETags name the same version (quoting ignored). */
export function sameEtag(a: string | undefined, b: string | undefined): boolean {
    const x = bareEtag(a);
    return x !== undefined && x === bareEtag(b);
}

/** Hex characters of a jobId (128 bits of SHA-256). */
export const JOB_ID_LENGTH = 32;

/**
 * The stable id of a job: the first 32 hex characters of SHA-256 over the bucket, the key and the input's bare ETag
 * (empty when unknown, e.g. a direct job whose download failed). Quoting of the ETag does not change it.
 */
export function jobId(job: { bucket: string; key: string; etag?: string }): string {
    return createHash("sha256")
        .update(JSON.stringify(["job", job.bucket, job.key, bareEtag(job.etag) ?? ""]), "utf8")
        .digest("hex")
        .slice(0, JOB_ID_LENGTH);
}

/**
 * The stable id of a message that names no job (its body is not a job): the same body always gives the same id, so
 * that the duplicates of one dead-lettered message are recognisable too.
 */
export function messageJobId(body: string): string {
    return createHash("sha256").update(JSON.stringify(["message", body]), "utf8").digest("hex").slice(0, JOB_ID_LENGTH);
}

/**
 * The jobId a dead-letter message is counted under: the one failed job's id, else (several failed jobs in one S3
 * event) an id over their sorted ids, else (no job: the body was not a job) the body's id.
 */
export function deadLetterJobId(jobIds: string[], body: string): string {
    const ids = [...new Set(jobIds)].sort();
    if (ids.length === 1) return ids[0];
    if (ids.length === 0) return messageJobId(body);
    return createHash("sha256").update(JSON.stringify(["jobs", ...ids]), "utf8").digest("hex").slice(0, JOB_ID_LENGTH);
}

/** True for S3's answer to a failed If-Match (412 Precondition Failed; HeadObject's has no body, so no error name). */
export function isPreconditionFailed(err: unknown): boolean {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
    return e?.name === "PreconditionFailed" || e?.$metadata?.httpStatusCode === 412;
}
