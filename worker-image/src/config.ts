/** Worker settings from the environment (documented in worker-image/README.md). */
import * as os from "os";
import * as path from "path";

export interface WorkerConfig {
    queueUrl?: string;
    dlqUrl?: string;
    region?: string;
    waitSeconds: number;
    /** Consecutive empty receives before exiting; 0 = run forever. */
    idleExit: number;
    concurrency: number;
    /** Hard limit on one job's processor run (JOB_TIMEOUT_SECONDS, or its alias RENDER_TIMEOUT_SECONDS). */
    jobTimeoutSeconds: number;
    /** Undefined: read from the queue's RedrivePolicy, else 3. */
    maxReceiveCount?: number;
    /** Undefined: read from the queue's VisibilityTimeout, else 300. */
    visibilityTimeout?: number;
    scratchDir: string;
    inputPrefix: string;
    outputPrefix: string;
    maxInputBytes: number;
    maxUnzippedBytes: number;
    maxZipEntries: number;
    /** OUTPUT_SUFFIXES: the suffixes a job may upload (`.error.json`, the failure report, is always written). */
    outputSuffixes: string[];
    /** One-shot mode when both are set. */
    jobBucket?: string;
    jobKey?: string;
    /** One-shot: the input's ETag its S3 event named (JOB_ETAG, set by the launcher): the job is bound to that version. */
    jobEtag?: string;
    /**
     * Seconds between SIGTERM and SIGKILL (WORKER_STOP_TIMEOUT_SECONDS: the task's stopTimeout, set by the component):
     * the worker's own deadlines after a SIGTERM derive from it (stopDeadlines).
     */
    stopTimeoutSeconds: number;
}

export const DEFAULTS = {
    waitSeconds: 20,
    idleExit: 1,
    concurrency: 1,
    jobTimeoutSeconds: 3600,
    maxReceiveCount: 3,
    visibilityTimeout: 300,
    maxInputBytes: 256 * 1024 * 1024,
    maxUnzippedBytes: 1024 * 1024 * 1024,
    maxZipEntries: 10000,
    /** POV-Ray's outputs. */
    outputSuffixes: [".png", ".log"],
    /** Standalone: a forced exit 20 s after SIGTERM, as before WORKER_STOP_TIMEOUT_SECONDS. */
    stopTimeoutSeconds: 25,
};

/** Seconds before the task's SIGKILL at which the worker exits by itself, whatever is left (STOP_EXIT_MARGIN_SECONDS). */
export const STOP_EXIT_MARGIN_SECONDS = 5;
/** Seconds kept after the uploads' deadline to settle the message (re-send or dead-letter it) before that exit. */
export const STOP_SETTLE_SECONDS = 10;

/**
 * What the worker does within the task's stopTimeout after a SIGTERM: a job whose processor has finished keeps
 * uploading its outputs (and its message is settled) until `finishWithinMs`, when the uploads are aborted (the job is
 * then an interruption); the process exits at `forcedExitMs` in any case, STOP_EXIT_MARGIN_SECONDS before ECS's SIGKILL.
 * With the standalone default (25 s): uploads until 10 s, forced exit at 20 s; with the component's default (120 s):
 * 105 s and 115 s.
 */
export function stopDeadlines(stopTimeoutSeconds: number): { finishWithinMs: number; forcedExitMs: number } {
    const forced = Math.max(1, stopTimeoutSeconds - STOP_EXIT_MARGIN_SECONDS);
    return { finishWithinMs: Math.max(0, forced - STOP_SETTLE_SECONDS) * 1000, forcedExitMs: forced * 1000 };
}

/** The failure report's suffix: always written, never a declared output. */
export const ERROR_REPORT_SUFFIX = ".error.json";

/**
 * OUTPUT_SUFFIXES: a JSON array of suffixes, each a `.` followed by at least one character other than `/` (the
 * component sets it from its `outputSuffixes` argument). Unset: POV-Ray's `[".png", ".log"]`.
 */
export function parseOutputSuffixes(value: string | undefined): string[] {
    if (value === undefined || value.trim() === "") return [...DEFAULTS.outputSuffixes];
    let parsed: unknown;
    try {
        parsed = JSON.parse(value);
    } catch {
        parsed = undefined;
    }
    const bad = (s: unknown) => typeof s !== "string" || !/^\.[^/\x00-\x1f]{1,64}$/.test(s) || s === ERROR_REPORT_SUFFIX;
    if (!Array.isArray(parsed) || parsed.length === 0 || parsed.some(bad)) {
        throw new Error(
            `OUTPUT_SUFFIXES must be a JSON array of one or more suffixes such as [".png",".log"] (each "." plus 1-64 ` +
                `characters, no "/", not ${ERROR_REPORT_SUFFIX}), got ${JSON.stringify(value)}`,
        );
    }
    return [...new Set(parsed as string[])];
}

/** SQS's maximum visibility timeout (12 h). */
export const MAX_JOB_TIMEOUT_SECONDS = 43200;
/** @deprecated The former name of MAX_JOB_TIMEOUT_SECONDS. */
export const MAX_RENDER_TIMEOUT_SECONDS = MAX_JOB_TIMEOUT_SECONDS;

type Env = Record<string, string | undefined>;

function str(env: Env, name: string): string | undefined {
    const v = env[name];
    return v === undefined || v.trim() === "" ? undefined : v.trim();
}

function int(env: Env, name: string, def: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const v = str(env, name);
    if (v === undefined) return def;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
        throw new Error(`${name} must be an integer between ${min} and ${max}, got ${JSON.stringify(v)}`);
    }
    return Number(v);
}

/** JOB_TIMEOUT_SECONDS if set, else its alias RENDER_TIMEOUT_SECONDS (so that errors name the variable read). */
function timeoutVariable(env: Env): string {
    return str(env, "JOB_TIMEOUT_SECONDS") === undefined && str(env, "RENDER_TIMEOUT_SECONDS") !== undefined
        ? "RENDER_TIMEOUT_SECONDS"
        : "JOB_TIMEOUT_SECONDS";
}

export function configFromEnv(env: Env = process.env): WorkerConfig {
    const cfg: WorkerConfig = {
        queueUrl: str(env, "QUEUE_URL"),
        dlqUrl: str(env, "DLQ_URL"),
        region: str(env, "AWS_REGION") ?? str(env, "AWS_DEFAULT_REGION"),
        waitSeconds: int(env, "WORKER_WAIT_SECONDS", DEFAULTS.waitSeconds, 0, 20)!,
        idleExit: int(env, "WORKER_IDLE_EXIT", DEFAULTS.idleExit, 0)!,
        concurrency: int(env, "WORKER_CONCURRENCY", DEFAULTS.concurrency, 1, 64)!,
        // At most SQS's 12 h visibility cap (which also keeps it far from setTimeout's 2^31-1 ms limit).
        // RENDER_TIMEOUT_SECONDS is the former name (scripts outside the repo set it): JOB_TIMEOUT_SECONDS wins.
        jobTimeoutSeconds: int(env, timeoutVariable(env), DEFAULTS.jobTimeoutSeconds, 1, MAX_JOB_TIMEOUT_SECONDS)!,
        maxReceiveCount: int(env, "WORKER_MAX_RECEIVE_COUNT", undefined, 1, 1000),
        visibilityTimeout: int(env, "WORKER_VISIBILITY_TIMEOUT", undefined, 1, 43200),
        // Per process by default: each worker sweeps its scratch dir of everything but its own live job dirs.
        scratchDir: str(env, "WORKER_SCRATCH_DIR") ?? path.join(os.tmpdir(), "lambda-ecs-worker", String(process.pid)),
        inputPrefix: env.INPUT_PREFIX ?? "",
        outputPrefix: env.OUTPUT_PREFIX ?? "",
        maxInputBytes: int(env, "MAX_INPUT_BYTES", DEFAULTS.maxInputBytes, 1)!,
        maxUnzippedBytes: int(env, "MAX_UNZIPPED_BYTES", DEFAULTS.maxUnzippedBytes, 1)!,
        maxZipEntries: int(env, "MAX_ZIP_ENTRIES", DEFAULTS.maxZipEntries, 1)!,
        outputSuffixes: parseOutputSuffixes(env.OUTPUT_SUFFIXES),
        jobBucket: str(env, "JOB_BUCKET"),
        jobKey: env.JOB_KEY !== undefined && env.JOB_KEY !== "" ? env.JOB_KEY : undefined,
        jobEtag: str(env, "JOB_ETAG"),
        // ECS allows a container's stopTimeout of 2-120 s.
        stopTimeoutSeconds: int(env, "WORKER_STOP_TIMEOUT_SECONDS", DEFAULTS.stopTimeoutSeconds, 2, 120)!,
    };
    if (!(cfg.jobBucket && cfg.jobKey) && !cfg.queueUrl) {
        throw new Error("QUEUE_URL is required (or JOB_BUCKET and JOB_KEY for one-shot mode)");
    }
    return cfg;
}
