/** Output key rule (shared with the launcher) and SQS message parsing. Pure functions. */
import { PermanentError } from "./errors";

export interface KeyOptions {
    /** INPUT_PREFIX: removed from the front of the input key when OUTPUT_PREFIX is set. Default "". */
    inputPrefix?: string;
    /** OUTPUT_PREFIX: "" = outputs next to the input. Default "". */
    outputPrefix?: string;
}

export interface OutputKeys {
    /** Key without the last extension; every output is `base + suffix`. */
    base: string;
    png: string;
    log: string;
    error: string;
}

/** Removes the last extension of the last path segment: "a/b.c.zip" -> "a/b.c", "a.d/b" -> "a.d/b". */
export function stripLastExtension(key: string): string {
    return key.replace(/\.[^./]*$/, "");
}

/**
 * Output keys for input key K: B = K without its last extension. OUTPUT_PREFIX O = "" -> `B.png`, `B.log`,
 * `B.error.json` next to the input. Otherwise rel = K minus INPUT_PREFIX P (when K starts with P) and the outputs
 * are `O + rel-without-last-extension + ".png"` etc.
 */
export function outputKeys(key: string, opts: KeyOptions = {}): OutputKeys {
    const inputPrefix = opts.inputPrefix ?? "";
    const outputPrefix = opts.outputPrefix ?? "";
    let base: string;
    if (outputPrefix === "") {
        base = stripLastExtension(key);
    } else {
        const rel = inputPrefix !== "" && key.startsWith(inputPrefix) ? key.slice(inputPrefix.length) : key;
        base = outputPrefix + stripLastExtension(rel);
    }
    return { base, png: `${base}.png`, log: `${base}.log`, error: `${base}.error.json` };
}

/** The job name: the key's last path segment without its extension. */
export function jobBaseName(key: string): string {
    const name = key.slice(key.lastIndexOf("/") + 1);
    return stripLastExtension(name);
}

/** S3 event keys are URL-encoded with `+` for spaces. */
export function decodeS3Key(raw: string): string {
    return decodeURIComponent(raw.replace(/\+/g, " "));
}

export interface Job {
    bucket: string;
    key: string;
    /** ETag / size from the event, when known (informational). */
    etag?: string;
    size?: number;
}

export type ParsedMessage = { kind: "test" } | { kind: "jobs"; jobs: Job[] };

function isObject(v: unknown): v is Record<string, unknown> {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Accepts: an S3 event notification (every record), `s3:TestEvent`, or a direct job `{ bucket, key, ... }`.
 * Throws PermanentError for anything else.
 */
export function parseMessage(body: string | undefined): ParsedMessage {
    let msg: unknown;
    try {
        msg = JSON.parse(body ?? "");
    } catch {
        throw new PermanentError(`unrecognised message: body is not JSON: ${JSON.stringify((body ?? "").slice(0, 200))}`);
    }
    if (!isObject(msg)) throw new PermanentError("unrecognised message: body is not a JSON object");
    if (msg.Event === "s3:TestEvent") return { kind: "test" };
    if ("Records" in msg) {
        const records = msg.Records;
        if (!Array.isArray(records) || records.length === 0) {
            throw new PermanentError("unrecognised message: Records is not a non-empty array");
        }
        const jobs: Job[] = records.map((r, i) => {
            const s3 = isObject(r) && isObject(r.s3) ? r.s3 : undefined;
            const bucket = s3 && isObject(s3.bucket) ? s3.bucket.name : undefined;
            const object = s3 && isObject(s3.object) ? s3.object : undefined;
            const key = object?.key;
            if (typeof bucket !== "string" || bucket === "" || typeof key !== "string" || key === "") {
                throw new PermanentError(`unrecognised message: Records[${i}] has no s3.bucket.name / s3.object.key`);
            }
            let decoded: string;
            try {
                decoded = decodeS3Key(key);
            } catch {
                throw new PermanentError(`unrecognised message: Records[${i}] key is not valid URL encoding: ${key}`);
            }
            return {
                bucket,
                key: decoded,
                etag: typeof object?.eTag === "string" ? object.eTag : undefined,
                size: typeof object?.size === "number" ? object.size : undefined,
            };
        });
        return { kind: "jobs", jobs };
    }
    if (typeof msg.bucket === "string" && msg.bucket !== "" && typeof msg.key === "string" && msg.key !== "") {
        return {
            kind: "jobs",
            jobs: [
                {
                    bucket: msg.bucket,
                    key: msg.key,
                    etag: typeof msg.etag === "string" ? msg.etag : undefined,
                    size: typeof msg.size === "number" ? msg.size : undefined,
                },
            ],
        };
    }
    throw new PermanentError("unrecognised message: expected an S3 event, s3:TestEvent or { bucket, key }");
}
