/**
 * The launcher Lambda: S3 "object created" notification → one SQS job message per accepted object → ECS Fargate tasks.
 *
 * Packaging: the component passes {@link launcherFactory} as an `aws.lambda.CallbackFunction` `callbackFactory`.
 * Pulumi serializes the factory and everything it closes over (the plain functions and consts of this module, and the
 * exports of `./launcher-settings`) into a single `__index.js`; the archive contains no node_modules. So:
 *  - the AWS SDK v3 clients are `require`d INSIDE {@link createHandler} (called by the factory at cold start): the
 *    Node.js 22 Lambda runtime ships them, and the component excludes them from the package;
 *  - everything the handler uses is a plain function declaration or a non-exported const of this module (no classes,
 *    no `exports.x` references, no `@pulumi/*` imports), which keeps the serialized code small and self-contained;
 *  - settings come from `process.env` (names in {@link LAUNCHER_ENV}), parsed once per cold start.
 *
 * Modes ({@link LaunchMode}):
 *  - "drain" (default): queue every job, then start just enough tasks: min(backlog, MAX_TASKS) minus the tasks of this
 *    worker already running or pending (counted by `startedBy`), never more than MAX_TASKS − running. Each task drains
 *    the queue and exits when it is empty.
 *  - "per-job": the job is NOT queued; it travels in the task's container environment (`JOB_BUCKET`, `JOB_KEY`), one
 *    RunTask per job, and the task processes that job alone. There is no queue to fall back on, so a job whose task
 *    could not be started after the retries is sent to the dead-letter queue (`DLQ_URL`) with the failure reason, and
 *    the invocation then throws (function error → Lambda's async retry; started tasks may then be started again, which
 *    the worker tolerates since its outputs are idempotent). MAX_TASKS does not apply: one task per upload.
 *  - "service": queue the jobs and start nothing; an autoscaled ECS service consumes the queue.
 *
 * Jobs are always queued BEFORE any task is started, so a failed start never loses a job.
 */
import type { ECSClient, RunTaskCommandInput } from "@aws-sdk/client-ecs";
import type { SendMessageBatchRequestEntry, SQSClient } from "@aws-sdk/client-sqs";
import { LAUNCHER_ENV, LaunchMode, OUTPUT_SUFFIXES } from "./launcher-settings";

// ---------------------------------------------------------------------------------------------------------------------
// Settings

export interface CapacityProviderStrategyItem {
    capacityProvider: string;
    weight?: number;
    base?: number;
}

export interface LauncherSettings {
    mode: LaunchMode;
    /** Work queue; "" in per-job mode when unset. */
    queueUrl: string;
    /** Dead-letter queue; required in per-job mode. */
    deadLetterQueueUrl: string;
    cluster: string;
    taskDefinition: string;
    containerName: string;
    subnets: string[];
    securityGroups: string[];
    assignPublicIp: "ENABLED" | "DISABLED";
    capacityProviderStrategy: CapacityProviderStrategyItem[];
    maxTasks: number;
    inputPrefix: string;
    /** Lower-cased; empty = any suffix. */
    inputSuffixes: string[];
    outputPrefix: string;
    startedBy: string;
}

const LAUNCH_MODES: readonly string[] = ["drain", "per-job", "service"];
const STARTED_BY_PATTERN = /^[A-Za-z0-9_/-]{1,36}$/;

function splitList(value: string | undefined): string[] {
    return (value ?? "")
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s !== "");
}

/**
 * Parse and validate the launcher's environment. Throws one Error listing every problem, each naming its variable.
 */
export function parseLauncherSettings(env: Record<string, string | undefined>): LauncherSettings {
    const E = LAUNCHER_ENV;
    const errors: string[] = [];
    const str = (name: string) => (env[name] ?? "").trim();

    const modeRaw = str(E.launchMode) || "drain";
    if (!LAUNCH_MODES.includes(modeRaw)) {
        errors.push(`${E.launchMode} must be one of ${LAUNCH_MODES.join(", ")} (got ${JSON.stringify(modeRaw)})`);
    }
    const mode = (LAUNCH_MODES.includes(modeRaw) ? modeRaw : "drain") as LaunchMode;
    const startsTasks = mode !== "service";

    const required = (name: string, when: boolean) => {
        const v = str(name);
        if (when && v === "") errors.push(`${name} is required in ${mode} mode`);
        return v;
    };
    const queueUrl = required(E.queueUrl, mode !== "per-job");
    const deadLetterQueueUrl = required(E.deadLetterQueueUrl, mode === "per-job");
    const cluster = required(E.cluster, startsTasks);
    const taskDefinition = required(E.taskDefinition, startsTasks);
    const containerName = required(E.containerName, mode === "per-job");
    const startedBy = required(E.startedBy, startsTasks);
    if (startedBy !== "" && !STARTED_BY_PATTERN.test(startedBy)) {
        errors.push(`${E.startedBy} must be 1-36 letters, digits, '-', '_' or '/' (got ${JSON.stringify(startedBy)})`);
    }

    const subnets = splitList(env[E.subnets]);
    if (startsTasks && subnets.length === 0) errors.push(`${E.subnets} (comma-separated subnet ids) is required in ${mode} mode`);
    const securityGroups = splitList(env[E.securityGroups]);

    const assignRaw = (str(E.assignPublicIp) || "DISABLED").toUpperCase();
    if (assignRaw !== "ENABLED" && assignRaw !== "DISABLED") {
        errors.push(`${E.assignPublicIp} must be ENABLED or DISABLED (got ${JSON.stringify(env[E.assignPublicIp])})`);
    }
    const assignPublicIp = assignRaw === "ENABLED" ? "ENABLED" : "DISABLED";

    const maxRaw = str(E.maxTasks) || "1";
    const maxTasks = Number(maxRaw);
    if (!/^\d+$/.test(maxRaw) || !Number.isSafeInteger(maxTasks) || maxTasks < 1) {
        errors.push(`${E.maxTasks} must be an integer >= 1 (got ${JSON.stringify(env[E.maxTasks])})`);
    }

    const jsonArray = (name: string): unknown[] => {
        const raw = str(name);
        if (raw === "") return [];
        try {
            const v = JSON.parse(raw);
            if (Array.isArray(v)) return v;
        } catch {
            /* reported below */
        }
        errors.push(`${name} must be a JSON array (got ${JSON.stringify(raw)})`);
        return [];
    };

    const suffixItems = jsonArray(E.inputSuffixes);
    const inputSuffixes: string[] = [];
    for (const s of suffixItems) {
        if (typeof s === "string" && s !== "") inputSuffixes.push(s.toLowerCase());
        else errors.push(`${E.inputSuffixes} must contain only non-empty strings (got ${JSON.stringify(s)})`);
    }

    const capacityProviderStrategy: CapacityProviderStrategyItem[] = [];
    for (const item of jsonArray(E.capacityProviderStrategy)) {
        const o = item as Record<string, unknown> | null;
        const okNum = (v: unknown, max: number) => v === undefined || (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max);
        if (
            o === null ||
            typeof o !== "object" ||
            typeof o.capacityProvider !== "string" ||
            o.capacityProvider === "" ||
            !okNum(o.weight, 1000) ||
            !okNum(o.base, 100000)
        ) {
            errors.push(
                `${E.capacityProviderStrategy} items must be { capacityProvider: string, weight?: 0-1000, base?: 0-100000 } (got ${JSON.stringify(item)})`,
            );
            continue;
        }
        const entry: CapacityProviderStrategyItem = { capacityProvider: o.capacityProvider };
        if (o.weight !== undefined) entry.weight = o.weight as number;
        if (o.base !== undefined) entry.base = o.base as number;
        capacityProviderStrategy.push(entry);
    }

    if (errors.length > 0) throw new Error(`Invalid launcher settings: ${errors.join("; ")}`);
    return {
        mode,
        queueUrl,
        deadLetterQueueUrl,
        cluster,
        taskDefinition,
        containerName,
        subnets,
        securityGroups,
        assignPublicIp,
        capacityProviderStrategy,
        maxTasks,
        inputPrefix: env[E.inputPrefix] ?? "",
        inputSuffixes,
        outputPrefix: env[E.outputPrefix] ?? "",
        startedBy,
    };
}

// ---------------------------------------------------------------------------------------------------------------------
// Event → jobs

/** The job message body (the worker accepts these direct job messages). */
export interface Job {
    bucket: string;
    key: string;
    size?: number;
    etag?: string;
    eventTime?: string;
}

export interface IgnoredRecord {
    /** Index of the record in `event.Records` (-1 for the event as a whole). */
    index: number;
    reason: string;
    bucket?: string;
    key?: string;
    eventName?: string;
}

export type KeyFilter = Pick<LauncherSettings, "inputPrefix" | "inputSuffixes" | "outputPrefix">;

/**
 * Decode an S3 event key: S3 form-encodes keys (`+` is a space, `%2B` a plus, `%XX` UTF-8 bytes).
 * Throws URIError on a malformed `%` sequence.
 */
export function decodeS3Key(raw: string): string {
    return decodeURIComponent(raw.replace(/\+/g, "%20"));
}

/** Why a decoded key is not a job for this worker, or undefined when it is one. */
export function keyRejection(key: string, filter: KeyFilter): string | undefined {
    if (key === "" || key.endsWith("/")) return "not an object key";
    const lower = key.toLowerCase();
    if (OUTPUT_SUFFIXES.some((s) => lower.endsWith(s))) return "worker output";
    if (filter.outputPrefix !== "" && key.startsWith(filter.outputPrefix)) return "under the output prefix";
    if (!key.startsWith(filter.inputPrefix)) return "outside the input prefix";
    if (filter.inputSuffixes.length > 0 && !filter.inputSuffixes.some((s) => lower.endsWith(s.toLowerCase()))) {
        return "suffix not accepted";
    }
    return undefined;
}

/** Split an S3 notification event into accepted jobs and ignored records (with reasons). Never throws. */
export function extractJobs(event: unknown, filter: KeyFilter): { jobs: Job[]; ignored: IgnoredRecord[] } {
    const jobs: Job[] = [];
    const ignored: IgnoredRecord[] = [];
    const ev = event as Record<string, unknown> | null | undefined;
    if (ev === null || typeof ev !== "object") {
        ignored.push({ index: -1, reason: "event is not an object" });
        return { jobs, ignored };
    }
    if (ev.Event === "s3:TestEvent") {
        ignored.push({ index: -1, reason: "s3:TestEvent" });
        return { jobs, ignored };
    }
    if (!Array.isArray(ev.Records)) {
        ignored.push({ index: -1, reason: "event has no Records array" });
        return { jobs, ignored };
    }
    ev.Records.forEach((rec: any, index: number) => {
        try {
            if (rec === null || typeof rec !== "object") {
                ignored.push({ index, reason: "malformed record: not an object" });
                return;
            }
            const eventName = rec.eventName;
            if (rec.eventSource !== undefined && rec.eventSource !== "aws:s3") {
                ignored.push({ index, reason: `not an S3 record (eventSource ${String(rec.eventSource)})`, eventName });
                return;
            }
            if (typeof eventName !== "string" || !/^(s3:)?ObjectCreated:/.test(eventName)) {
                ignored.push({ index, reason: "not an ObjectCreated event", eventName: typeof eventName === "string" ? eventName : undefined });
                return;
            }
            const bucket = rec.s3?.bucket?.name;
            const rawKey = rec.s3?.object?.key;
            if (typeof bucket !== "string" || bucket === "" || typeof rawKey !== "string") {
                ignored.push({ index, reason: "malformed record: missing s3.bucket.name or s3.object.key", eventName });
                return;
            }
            let key: string;
            try {
                key = decodeS3Key(rawKey);
            } catch {
                ignored.push({ index, reason: "malformed key encoding", bucket, key: rawKey, eventName });
                return;
            }
            const rejection = keyRejection(key, filter);
            if (rejection !== undefined) {
                ignored.push({ index, reason: rejection, bucket, key, eventName });
                return;
            }
            const job: Job = { bucket, key };
            const size = rec.s3.object.size;
            if (typeof size === "number" && Number.isFinite(size)) job.size = size;
            const etag = rec.s3.object.eTag;
            if (typeof etag === "string") job.etag = etag;
            if (typeof rec.eventTime === "string") job.eventTime = rec.eventTime;
            jobs.push(job);
        } catch (e) {
            ignored.push({ index, reason: `malformed record: ${(e as Error).message}` });
        }
    });
    return { jobs, ignored };
}

// ---------------------------------------------------------------------------------------------------------------------
// Decisions

/**
 * How many tasks to start in drain mode: one per queued message up to `maxTasks`, minus the tasks already running or
 * pending (each drains the queue), never more than `maxTasks − running`. At least one when none runs and there is work.
 */
export function tasksToStart(maxTasks: number, running: number, backlog: number): number {
    if (!(backlog > 0) || !(maxTasks > 0)) return 0;
    const room = Math.max(0, maxTasks - Math.max(0, running));
    const wanted = Math.min(Math.ceil(backlog), maxTasks) - Math.max(0, running);
    return Math.max(0, Math.min(room, wanted));
}

/** Split into consecutive chunks of at most `size` (SendMessageBatch takes ≤ 10 entries, RunTask `count` ≤ 10). */
export function chunk<T>(items: readonly T[], size: number): T[][] {
    if (!(size >= 1)) throw new Error(`chunk size must be >= 1 (got ${size})`);
    const out: T[][] = [];
    for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
    return out;
}

/** RunTask `count`s for starting `n` tasks: [10, 10, ..., rest]. */
export function runTaskCounts(n: number): number[] {
    const out: number[] = [];
    for (let left = Math.max(0, Math.floor(n)); left > 0; left -= 10) out.push(Math.min(10, left));
    return out;
}

/** SendMessageBatch entries (ids unique within a call) for these message bodies. */
export function messageEntries(bodies: readonly object[]): SendMessageBatchRequestEntry[] {
    return bodies.map((b, i) => ({ Id: `m${i}`, MessageBody: JSON.stringify(b) }));
}

/** The RunTask request: `count` tasks, or (with `job`) one task with the job in its container environment. */
export function buildRunTaskInput(s: LauncherSettings, count: number, job?: Job): RunTaskCommandInput {
    const input: RunTaskCommandInput = {
        cluster: s.cluster,
        taskDefinition: s.taskDefinition,
        count,
        startedBy: s.startedBy,
        propagateTags: "TASK_DEFINITION",
        networkConfiguration: {
            awsvpcConfiguration: {
                subnets: [...s.subnets],
                ...(s.securityGroups.length > 0 ? { securityGroups: [...s.securityGroups] } : {}),
                assignPublicIp: s.assignPublicIp,
            },
        },
    };
    if (s.capacityProviderStrategy.length > 0) {
        input.capacityProviderStrategy = s.capacityProviderStrategy.map((c) => ({ ...c }));
    } else {
        input.launchType = "FARGATE";
    }
    if (job !== undefined) {
        input.overrides = {
            containerOverrides: [
                {
                    name: s.containerName,
                    environment: [
                        { name: "JOB_BUCKET", value: job.bucket },
                        { name: "JOB_KEY", value: job.key },
                    ],
                },
            ],
        };
    }
    return input;
}

const RETRYABLE_ERROR_NAMES = [
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "ServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "KMS.ThrottlingException",
    "TimeoutError",
    "RequestTimeout",
    "RequestTimeoutException",
];
const RETRYABLE_MESSAGE = /throttl|rate exceeded|too many requests|capacity is unavailable|insufficient capacity|try again|timed? ?out|temporar/i;
const RETRYABLE_NETWORK_CODES = ["ECONNRESET", "ECONNREFUSED", "ETIMEDOUT", "EPIPE", "EAI_AGAIN", "ENOTFOUND"];

/** Whether an SDK error is worth retrying (throttling, capacity, server-side or network trouble). */
export function isRetryableError(err: unknown): boolean {
    if (err === null || typeof err !== "object") return false;
    const e = err as { name?: unknown; message?: unknown; code?: unknown; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
    if (typeof e.name === "string" && RETRYABLE_ERROR_NAMES.includes(e.name)) return true;
    if (e.$retryable) return true;
    const status = e.$metadata?.httpStatusCode;
    if (typeof status === "number" && (status >= 500 || status === 429)) return true;
    if (typeof e.code === "string" && RETRYABLE_NETWORK_CODES.includes(e.code)) return true;
    return typeof e.message === "string" && RETRYABLE_MESSAGE.test(e.message);
}

/** Whether a RunTask `failures[].reason` is transient (capacity, throttling, placement resources). */
export function isRetryableFailureReason(reason: string | undefined): boolean {
    if (reason === undefined) return false;
    return RETRYABLE_MESSAGE.test(reason) || /^RESOURCE:|capacity|AGENT/i.test(reason);
}

/** Full-jitter exponential backoff: a random delay in [0, min(cap, base·2^(attempt−1))). */
export function backoffDelayMs(attempt: number, random: number, baseMs: number, capMs: number): number {
    const ceiling = Math.min(capMs, baseMs * Math.pow(2, Math.max(0, attempt - 1)));
    return Math.floor(Math.max(0, Math.min(1, random)) * ceiling);
}

// ---------------------------------------------------------------------------------------------------------------------
// Handler

export interface LaunchSummary {
    mode: LaunchMode;
    /** Records accepted as jobs. */
    accepted: number;
    /** Records (or whole events) ignored. */
    ignored: number;
    /** Job messages sent to the work queue. */
    queued: number;
    tasksStarted: number;
    /** RunTask failure entries and errors seen (retried ones included). */
    failures: number;
    /** Tasks wanted but not started after the retries (drain) / jobs whose task could not start (per-job). */
    notStarted: number;
    /** Per-job mode: jobs sent to the dead-letter queue. */
    deadLettered: number;
}

export interface LauncherClients {
    sqs: SQSClient;
    ecs: ECSClient;
}

export interface HandlerOptions {
    /** Attempts per call (first try included). Default 5. */
    maxAttempts?: number;
    baseDelayMs?: number;
    maxDelayMs?: number;
    sleep?: (ms: number) => Promise<void>;
    random?: () => number;
    log?: (entry: Record<string, unknown>) => void;
    /** Per-job mode: RunTask calls in flight at once. Default 5. */
    concurrency?: number;
}

export type LauncherHandler = (event: any, context?: any) => Promise<LaunchSummary>;

function logJson(entry: Record<string, unknown>): void {
    console.log(JSON.stringify(entry));
}

function sleepMs(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

function errorText(e: unknown): string {
    if (e !== null && typeof e === "object") {
        const o = e as { name?: unknown; message?: unknown };
        return `${String(o.name ?? "Error")}: ${String(o.message ?? "")}`;
    }
    return String(e);
}

/** Run `fn` over `items` with at most `limit` in flight; results in input order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
    const results: R[] = new Array(items.length);
    let next = 0;
    const worker = async () => {
        while (next < items.length) {
            const i = next++;
            results[i] = await fn(items[i], i);
        }
    };
    await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
    return results;
}

/**
 * Build the handler from settings and (optionally injected) clients. The SDK modules are required here, not at module
 * level, so the serialized Lambda resolves them from the runtime.
 */
export function createHandler(settings: LauncherSettings, clients?: Partial<LauncherClients>, options: HandlerOptions = {}): LauncherHandler {
    const sqsSdk: typeof import("@aws-sdk/client-sqs") = require("@aws-sdk/client-sqs");
    const ecsSdk: typeof import("@aws-sdk/client-ecs") = require("@aws-sdk/client-ecs");
    const sqs = clients?.sqs ?? new sqsSdk.SQSClient({});
    const ecs = clients?.ecs ?? new ecsSdk.ECSClient({});
    const s = settings;
    const maxAttempts = Math.max(1, options.maxAttempts ?? 5);
    const baseDelayMs = options.baseDelayMs ?? 200;
    const maxDelayMs = options.maxDelayMs ?? 5000;
    const sleep = options.sleep ?? sleepMs;
    const random = options.random ?? Math.random;
    const log = options.log ?? logJson;
    const concurrency = options.concurrency ?? 5;

    return async function handler(event: any, context?: any): Promise<LaunchSummary> {
        const timeLeft = (): number =>
            context && typeof context.getRemainingTimeInMillis === "function" ? context.getRemainingTimeInMillis() : Infinity;

        /** Sleep before retry `attempt + 1`, or return false when out of attempts or Lambda time. */
        const backoff = async (what: string, attempt: number, why: string): Promise<boolean> => {
            if (attempt >= maxAttempts) return false;
            const delayMs = backoffDelayMs(attempt, random(), baseDelayMs, maxDelayMs);
            if (timeLeft() < delayMs + 3000) {
                log({ msg: "retry abandoned: function about to time out", what, attempt, reason: why });
                return false;
            }
            log({ msg: "retry", what, attempt, delayMs, reason: why });
            await sleep(delayMs);
            return true;
        };

        /** A single call retried on transient errors. */
        const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
            for (let attempt = 1; ; attempt++) {
                try {
                    return await fn();
                } catch (e) {
                    if (!isRetryableError(e) || !(await backoff(what, attempt, errorText(e)))) throw e;
                }
            }
        };

        /** Send bodies to a queue, ≤ 10 per call, retrying failed entries. Returns how many were sent; throws otherwise. */
        const sendAll = async (queueUrl: string, bodies: object[], what: string): Promise<number> => {
            let sent = 0;
            const problems: string[] = [];
            for (const batch of chunk(messageEntries(bodies), 10)) {
                let pending = batch;
                for (let attempt = 1; pending.length > 0; attempt++) {
                    let why = "";
                    try {
                        const out = await sqs.send(new sqsSdk.SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: pending }));
                        const failed = out.Failed ?? [];
                        sent += pending.length - failed.length;
                        const permanent = failed.filter((f) => f.SenderFault);
                        for (const f of permanent) problems.push(`${f.Id}: ${f.Code} ${f.Message ?? ""}`.trim());
                        const retryIds = new Set(failed.filter((f) => !f.SenderFault).map((f) => f.Id));
                        if (failed.length > 0) {
                            log({ msg: "SendMessageBatch partial failure", what, attempt, failed: failed.map((f) => ({ id: f.Id, code: f.Code, senderFault: f.SenderFault })) });
                        }
                        pending = pending.filter((e) => retryIds.has(e.Id));
                        why = failed.map((f) => f.Code).join(",");
                    } catch (e) {
                        if (!isRetryableError(e)) throw e;
                        why = errorText(e);
                    }
                    if (pending.length > 0 && !(await backoff(`SendMessageBatch ${what}`, attempt, why))) {
                        for (const e of pending) problems.push(`${e.Id}: ${why}`);
                        break;
                    }
                }
            }
            if (problems.length > 0) {
                throw new Error(`Could not send ${problems.length} of ${bodies.length} message(s) to the ${what}: ${problems.slice(0, 5).join("; ")}`);
            }
            return sent;
        };

        /** Start `count` tasks (≤ 10), retrying transient errors and transient `failures`. Never throws. */
        const runTasks = async (count: number, job?: Job) => {
            let remaining = count;
            let started = 0;
            let failures = 0;
            let reason = "";
            for (let attempt = 1; remaining > 0; attempt++) {
                let retryable = false;
                try {
                    const out = await ecs.send(new ecsSdk.RunTaskCommand(buildRunTaskInput(s, remaining, job)));
                    const n = out.tasks?.length ?? 0;
                    started += n;
                    remaining -= n;
                    const fails = out.failures ?? [];
                    failures += fails.length;
                    if (fails.length > 0) {
                        log({ msg: "RunTask failures", attempt, requested: n + remaining, started: n, failures: fails.map((f) => ({ arn: f.arn, reason: f.reason, detail: f.detail })), ...(job ? { bucket: job.bucket, key: job.key } : {}) });
                    }
                    reason = fails.map((f) => f.reason ?? "unknown").join(", ") || (remaining > 0 ? "fewer tasks than requested" : "");
                    retryable = fails.length > 0 && fails.every((f) => isRetryableFailureReason(f.reason));
                } catch (e) {
                    failures++;
                    reason = errorText(e);
                    retryable = isRetryableError(e);
                    log({ msg: "RunTask error", attempt, requested: remaining, error: reason, retryable, ...(job ? { bucket: job.bucket, key: job.key } : {}) });
                }
                if (remaining > 0 && !(retryable && (await backoff("RunTask", attempt, reason)))) break;
            }
            return { started, notStarted: remaining, failures, reason };
        };

        const { jobs, ignored } = extractJobs(event, s);
        for (const i of ignored) log({ msg: "ignored", ...i });
        const summary: LaunchSummary = {
            mode: s.mode,
            accepted: jobs.length,
            ignored: ignored.length,
            queued: 0,
            tasksStarted: 0,
            failures: 0,
            notStarted: 0,
            deadLettered: 0,
        };
        if (jobs.length === 0) {
            log({ msg: "summary", ...summary });
            return summary;
        }
        for (const j of jobs) log({ msg: "accepted", bucket: j.bucket, key: j.key, size: j.size });

        const fail = (message: string): never => {
            log({ msg: "summary", ...summary, error: message });
            throw new Error(`${message} (summary: ${JSON.stringify(summary)})`);
        };

        if (s.mode === "per-job") {
            const problems: string[] = [];
            await mapLimit(jobs, concurrency, async (job) => {
                const r = await runTasks(1, job);
                summary.tasksStarted += r.started;
                summary.failures += r.failures;
                if (r.notStarted === 0) return;
                summary.notStarted++;
                problems.push(`${job.key}: ${r.reason}`);
                try {
                    await sendAll(s.deadLetterQueueUrl, [{ ...job, reason: `task could not be started: ${r.reason}` }], "dead-letter queue");
                    summary.deadLettered++;
                    log({ msg: "dead-lettered", bucket: job.bucket, key: job.key, reason: r.reason });
                } catch (e) {
                    log({ msg: "dead-letter failed", bucket: job.bucket, key: job.key, reason: r.reason, error: errorText(e) });
                }
            });
            if (problems.length > 0) {
                fail(`${problems.length} job(s) could not be started (${summary.deadLettered} sent to the dead-letter queue): ${problems.slice(0, 5).join("; ")}`);
            }
            log({ msg: "summary", ...summary });
            return summary;
        }

        // Queue first: from here on a job cannot be lost, whatever happens to the task starts.
        summary.queued = await sendAll(
            s.queueUrl,
            jobs.map((j) => ({ bucket: j.bucket, key: j.key, size: j.size, etag: j.etag, eventTime: j.eventTime })),
            "work queue",
        );
        log({ msg: "queued", count: summary.queued });
        if (s.mode === "service") {
            log({ msg: "summary", ...summary });
            return summary;
        }

        // Drain mode: count this worker's running/pending tasks, read the backlog, start what is missing.
        let running = 0;
        let nextToken: string | undefined;
        do {
            const page = await call("ListTasks", () =>
                ecs.send(new ecsSdk.ListTasksCommand({ cluster: s.cluster, startedBy: s.startedBy, desiredStatus: "RUNNING", nextToken })),
            );
            running += page.taskArns?.length ?? 0;
            nextToken = page.nextToken;
        } while (nextToken);

        let backlog = summary.queued;
        try {
            const attrs = await call("GetQueueAttributes", () =>
                sqs.send(new sqsSdk.GetQueueAttributesCommand({ QueueUrl: s.queueUrl, AttributeNames: ["ApproximateNumberOfMessages"] })),
            );
            const n = Number(attrs.Attributes?.ApproximateNumberOfMessages);
            // The count is approximate and may lag the messages just sent: never below them.
            if (Number.isFinite(n)) backlog = Math.max(backlog, n);
        } catch (e) {
            log({ msg: "backlog unknown; using the messages just queued", error: errorText(e) });
        }

        const wanted = tasksToStart(s.maxTasks, running, backlog);
        log({ msg: "drain decision", running, backlog, maxTasks: s.maxTasks, toStart: wanted });
        const reasons: string[] = [];
        for (const count of runTaskCounts(wanted)) {
            const r = await runTasks(count);
            summary.tasksStarted += r.started;
            summary.failures += r.failures;
            summary.notStarted += r.notStarted;
            if (r.notStarted > 0) {
                reasons.push(r.reason);
                // The rest would fail the same way; the jobs wait in the queue for the async retry.
                summary.notStarted = wanted - summary.tasksStarted;
                break;
            }
        }
        if (summary.notStarted > 0) {
            fail(`${summary.notStarted} of ${wanted} task(s) could not be started (jobs stay queued): ${reasons.join("; ")}`);
        }
        log({ msg: "summary", ...summary });
        return summary;
    };
}

/**
 * The `callbackFactory` of the component's `aws.lambda.CallbackFunction`: runs once per Lambda cold start, reads the
 * settings from the environment and creates the SDK clients, and returns the handler.
 */
export function launcherFactory(): LauncherHandler {
    return createHandler(parseLauncherSettings(process.env));
}
