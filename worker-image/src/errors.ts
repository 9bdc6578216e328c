/** Failure classes the runtime acts on. Anything that is not one of these is treated as transient. */

/** The job can never succeed as submitted (bad zip, no scene, parse error, unknown message): report + DLQ. */
export class PermanentError extends Error {
    readonly kind = "permanent" as const;
    constructor(message: string) {
        super(message);
        this.name = "PermanentError";
    }
}

/** The processor ran past its time limit: retried until the receive count reaches the max, then permanent. */
export class JobTimeoutError extends Error {
    readonly kind = "timeout" as const;
    constructor(message: string) {
        super(message);
        this.name = "JobTimeoutError";
    }
}

/** The job was stopped because the worker is shutting down (SIGTERM): the message goes back to the queue. */
export class AbortedError extends Error {
    readonly kind = "aborted" as const;
    constructor(message = "aborted: worker is stopping") {
        super(message);
        this.name = "AbortedError";
    }
}

/**
 * Local resources a job uses up, so that the same job on the same task runs out again: permanent, never retried.
 * ENOSPC (the scratch file system is full), EDQUOT (a disk quota), EFBIG (a file bigger than the file system allows),
 * ERR_FS_FILE_TOO_LARGE (Node's 2 GiB limit on reading a file whole). Not here, so transient: EMFILE/ENFILE (open
 * files), ENOMEM, EIO, EAGAIN: the machine's state rather than the job's size; another attempt, on another task, may
 * well succeed.
 */
export const LOCAL_RESOURCE_CODES = new Set(["ENOSPC", "EDQUOT", "EFBIG", "ERR_FS_FILE_TOO_LARGE"]);

/** The local-resource code (LOCAL_RESOURCE_CODES) of an error or of its causes, if any. */
export function localResourceCode(err: unknown): string | undefined {
    for (let e = err, depth = 0; e && typeof e === "object" && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
        const code = (e as { code?: unknown }).code;
        if (typeof code === "string" && LOCAL_RESOURCE_CODES.has(code)) return code;
    }
    return undefined;
}

const TRANSIENT_CODES = new Set([
    "ECONNRESET",
    "ECONNREFUSED",
    "ETIMEDOUT",
    "EPIPE",
    "ENOTFOUND",
    "EAI_AGAIN",
    "ENETUNREACH",
    "EHOSTUNREACH",
    "ECONNABORTED",
    "UND_ERR_SOCKET",
    "UND_ERR_CONNECT_TIMEOUT",
]);
const TRANSIENT_NAMES = new Set([
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "ServiceUnavailable",
    "TimeoutError",
]);

/** True for throttling, 5xx, 429/408 and network errors: worth retrying. */
export function isTransient(err: unknown): boolean {
    if (!err || typeof err !== "object") return false;
    const e = err as { name?: string; code?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
    if (e instanceof PermanentError || e instanceof JobTimeoutError || e instanceof AbortedError) return false;
    if (localResourceCode(err) !== undefined) return false;
    if (e.$retryable) return true;
    const status = e.$metadata?.httpStatusCode;
    if (status !== undefined && (status >= 500 || status === 429 || status === 408)) return true;
    if (e.name && TRANSIENT_NAMES.has(e.name)) return true;
    if (isPermanentServiceError(err)) return false;
    if (e.code && TRANSIENT_CODES.has(e.code)) return true;
    const cause = (err as { cause?: unknown }).cause;
    return cause !== undefined && cause !== err && isTransient(cause);
}

/**
 * True for an AWS service error that retrying cannot fix: an HTTP 4xx answer (400 bad request, 403 access denied,
 * 404 not found, 405, 409, 411, 412, 413, 414, 416, ...) other than 408 and 429, and not a throttling or
 * request-timeout error (some services throttle with a 400).
 */
export function isPermanentServiceError(err: unknown): boolean {
    if (!err || typeof err !== "object") return false;
    const e = err as { name?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
    const status = e.$metadata?.httpStatusCode;
    if (status === undefined || status < 400 || status >= 500 || status === 408 || status === 429) return false;
    if (e.$retryable) return false;
    if (e.name && (TRANSIENT_NAMES.has(e.name) || /throttl|slowdown|toomanyrequests/i.test(e.name))) return false;
    return true;
}

export function errorMessage(err: unknown): string {
    if (err instanceof Error) return err.message || err.name;
    return String(err);
}
