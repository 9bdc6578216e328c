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
 *  - "drain" (default): queue every job, then start just enough tasks: one per waiting message less the tasks of this
 *    worker still starting, never more than MAX_TASKS − running (tasks counted by `startedBy`). Each task drains the
 *    queue and exits when it is empty. The component also invokes the launcher every minute with a scheduled
 *    EventBridge event ("reconcile": the same decision, no new job), so that jobs whose task could not be started,
 *    jobs redelivered after a task was stopped (e.g. a Spot interruption), and a job that arrived just as the last task
 *    was exiting still get a task.
 *  - "per-job": the job is NOT queued; it travels in the task's container environment (`JOB_BUCKET`, `JOB_KEY`), one
 *    RunTask per job, and the task processes that job alone. There is no queue to fall back on, so a job whose task
 *    could not be started after the retries is sent to the dead-letter queue (`DLQ_URL`) with the failure reason.
 *    MAX_TASKS does not apply: one task per upload.
 *  - "service": queue the jobs and start nothing; an autoscaled ECS service consumes the queue.
 *
 * In drain and service modes every job is queued BEFORE any task is started, so a failed start never loses a job. A
 * failed send fails the invocation (Lambda's async retry, then its on-failure destination, the dead-letter queue);
 * a failed start does not: its jobs wait in the queue for the reconcile schedule, as Lambda's retry of the whole event
 * would queue them again. In per-job mode only a job neither started nor dead-lettered fails the invocation.
 */
import type { ECSClient, RunTaskCommandInput } from "@aws-sdk/client-ecs";
import type { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { ERROR_REPORT_SUFFIX, LAUNCH_MODES, LAUNCHER_ENV, LaunchMode, METRICS, OUTPUT_SUFFIXES, ROUTED_EVENTS } from "./launcher-settings";

// ---------------------------------------------------------------------------------------------------------------------
// Settings

export interface CapacityProviderStrategyItem {
    capacityProvider: string;
    weight?: number;
    base?: number;
}

export interface LauncherSettings {
    mode: LaunchMode;
    /** Work queue (required except in per-job mode). */
    queueUrl: string;
    /** Dead-letter queue (required in per-job mode). */
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
    /** Lower-cased suffixes of the worker's outputs, `.error.json` included: keys ending in one are never jobs. */
    outputSuffixes: string[];
    startedBy: string;
    /** Job events (issue #11): PutEvents' EventBusName; "" = publish none. */
    eventBusName: string;
    eventSource: string;
    /** `detail.worker` of the events and the metrics' Worker dimension. */
    workerName: string;
    metricsNamespace: string;
    /** Service mode: the service to wake on each upload ("" = none). */
    serviceName: string;
    /** Service mode: jobs one task may have waiting (desired count = ceil(backlog / this)). */
    backlogPerTask: number;
    /** Drain and per-job: retry a start on FARGATE after a Spot capacity failure (strategies with FARGATE_SPOT). */
    spotFallback: boolean;
}

/**
 * Parse and validate the launcher's environment. Throws one Error listing every problem, each naming its variable.
 * OUTPUT_SUFFIXES always gains `.error.json` (the failure report is an output of every worker).
 * Defaults: LAUNCH_MODE drain, MAX_TASKS 1, ASSIGN_PUBLIC_IP DISABLED, no prefixes, any suffix, launch type FARGATE.
 */
export function parseLauncherSettings(env: Record<string, string | undefined>): LauncherSettings {
    const E = LAUNCHER_ENV;
    const errors: string[] = [];
    const str = (name: string) => (env[name] ?? "").trim();
    const bad = (name: string, what: string) => errors.push(`${name} must be ${what} (got ${JSON.stringify(env[name])})`);
    const list = (name: string) => str(name).split(",").map((x) => x.trim()).filter((x) => x !== "");
    const jsonArray = (name: string): unknown[] => {
        try {
            const v = JSON.parse(str(name) || "[]");
            if (Array.isArray(v)) return v;
        } catch {}
        bad(name, "a JSON array");
        return [];
    };

    let mode = (str(E.launchMode) || "drain") as LaunchMode;
    if (!LAUNCH_MODES.includes(mode)) {
        bad(E.launchMode, LAUNCH_MODES.join(" | "));
        mode = "drain";
    }
    const tasks = mode !== "service";
    const required = (name: string, needed: boolean) => {
        if (needed && str(name) === "") errors.push(`${name} is required in ${mode} mode`);
        return str(name);
    };
    const s: LauncherSettings = {
        mode,
        queueUrl: required(E.queueUrl, mode !== "per-job"),
        deadLetterQueueUrl: required(E.deadLetterQueueUrl, mode === "per-job"),
        cluster: required(E.cluster, tasks),
        taskDefinition: required(E.taskDefinition, tasks),
        containerName: required(E.containerName, mode === "per-job"),
        subnets: list(E.subnets),
        securityGroups: list(E.securityGroups),
        assignPublicIp: (str(E.assignPublicIp) || "DISABLED").toUpperCase() as "ENABLED" | "DISABLED",
        capacityProviderStrategy: [],
        maxTasks: Number(str(E.maxTasks) || "1"),
        inputPrefix: env[E.inputPrefix] ?? "",
        inputSuffixes: [],
        outputPrefix: env[E.outputPrefix] ?? "",
        outputSuffixes: str(E.outputSuffixes) === "" ? [...OUTPUT_SUFFIXES] : [],
        startedBy: required(E.startedBy, tasks),
        eventBusName: str(E.eventBusName),
        eventSource: str(E.eventSource),
        workerName: str(E.workerName) || str(E.startedBy) || "worker",
        metricsNamespace: str(E.metricsNamespace) || METRICS.namespace,
        serviceName: mode === "service" ? str(E.serviceName) : "",
        backlogPerTask: Number(str(E.backlogPerTask) || "1"),
        spotFallback: str(E.spotFallback).toLowerCase() !== "false",
    };
    s.eventSource ||= `lambda-ecs-worker.${s.workerName}`;
    if (s.serviceName && !s.cluster) bad(E.cluster, `set with ${E.serviceName}`);
    if (!(s.backlogPerTask > 0)) bad(E.backlogPerTask, "a number > 0");
    if (!/^(true|false|)$/i.test(str(E.spotFallback))) bad(E.spotFallback, "true or false");
    if (!/^(?!aws\.)[\w./-]{1,256}$/.test(s.eventSource)) bad(E.eventSource, "1-256 of A-Z a-z 0-9 . _ / -, not aws.*");
    if (tasks && s.subnets.length === 0) bad(E.subnets, "comma-separated subnet ids");
    if (s.startedBy !== "" && !/^[A-Za-z0-9_/-]{1,36}$/.test(s.startedBy)) bad(E.startedBy, "1-36 letters, digits, '-', '_' or '/'");
    if (s.assignPublicIp !== "ENABLED" && s.assignPublicIp !== "DISABLED") bad(E.assignPublicIp, "ENABLED or DISABLED");
    if (!Number.isSafeInteger(s.maxTasks) || s.maxTasks < 1) bad(E.maxTasks, "an integer >= 1");
    if (str(E.outputSuffixes) !== "") {
        for (const x of jsonArray(E.outputSuffixes)) {
            if (typeof x === "string" && x !== "") s.outputSuffixes.push(x.toLowerCase());
            else bad(E.outputSuffixes, "a JSON array of non-empty strings");
        }
        if (!s.outputSuffixes.includes(ERROR_REPORT_SUFFIX)) s.outputSuffixes.push(ERROR_REPORT_SUFFIX);
    }
    for (const x of jsonArray(E.inputSuffixes)) {
        if (typeof x === "string" && x !== "") s.inputSuffixes.push(x.toLowerCase());
        else bad(E.inputSuffixes, "a JSON array of non-empty strings");
    }
    const int = (v: unknown, max: number) => v === undefined || (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max);
    for (const x of jsonArray(E.capacityProviderStrategy) as any[]) {
        if (x && typeof x.capacityProvider === "string" && x.capacityProvider !== "" && int(x.weight, 1000) && int(x.base, 100000)) {
            const { capacityProvider, weight, base } = x;
            s.capacityProviderStrategy.push(JSON.parse(JSON.stringify({ capacityProvider, weight, base })));
        } else {
            bad(E.capacityProviderStrategy, "a JSON array of { capacityProvider, weight?, base? }");
        }
    }
    if (errors.length > 0) throw new Error(`Invalid launcher settings: ${errors.join("; ")}`);
    return s;
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
    /** The job's stable id, when known (issue #12). */
    jobId?: string;
}

export interface IgnoredRecord {
    /** Index of the record in `event.Records` (-1 for the event as a whole). */
    index: number;
    reason: string;
    bucket?: string;
    key?: string;
    eventName?: string;
}

/** `outputSuffixes` unset: {@link OUTPUT_SUFFIXES} (POV-Ray's). */
export type KeyFilter = Pick<LauncherSettings, "inputPrefix" | "inputSuffixes" | "outputPrefix"> & Partial<Pick<LauncherSettings, "outputSuffixes">>;

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
    if ((filter.outputSuffixes ?? OUTPUT_SUFFIXES).some((s) => lower.endsWith(s.toLowerCase()))) return "worker output";
    if (filter.outputPrefix !== "" && key.startsWith(filter.outputPrefix)) return "under the output prefix";
    if (!key.startsWith(filter.inputPrefix)) return "outside the input prefix";
    if (filter.inputSuffixes.length > 0 && !filter.inputSuffixes.some((s) => lower.endsWith(s.toLowerCase()))) {
        return "suffix not accepted";
    }
    return undefined;
}

/**
 * Split an S3 notification event into accepted jobs and ignored records (with reasons). Never throws: a malformed
 * record is ignored without affecting the others.
 */
export function extractJobs(event: any, filter: KeyFilter): { jobs: Job[]; ignored: IgnoredRecord[] } {
    const jobs: Job[] = [];
    const ignored: IgnoredRecord[] = [];
    const test = event?.Event === "s3:TestEvent";
    if (event?.["detail-type"] === "Scheduled Event") return { jobs, ignored };
    if (test || !Array.isArray(event?.Records)) {
        ignored.push({ index: -1, reason: test ? "s3:TestEvent" : "not an S3 notification (no Records array)" });
        return { jobs, ignored };
    }
    event.Records.forEach((rec: any, index: number) => {
        const eventName = rec?.eventName;
        const bucket = rec?.s3?.bucket?.name;
        const raw = rec?.s3?.object?.key;
        const skip = (reason: string, key?: string) => {
            ignored.push({ index, reason, eventName, bucket, key });
        };
        if (rec?.eventSource !== undefined && rec.eventSource !== "aws:s3") return skip("not an S3 record");
        if (!/^(s3:)?ObjectCreated:/.test(eventName)) return skip("not an ObjectCreated event");
        if (typeof bucket !== "string" || bucket === "" || typeof raw !== "string") return skip("malformed record");
        let key: string;
        try {
            key = decodeS3Key(raw);
        } catch {
            return skip("malformed key encoding", raw);
        }
        const reason = keyRejection(key, filter);
        if (reason !== undefined) return skip(reason, key);
        const { size, eTag } = rec.s3.object;
        const job: Job = { bucket, key };
        if (typeof size === "number") job.size = size;
        if (typeof eTag === "string") job.etag = eTag;
        if (typeof rec.eventTime === "string") job.eventTime = rec.eventTime;
        jobs.push(job);
    });
    return { jobs, ignored };
}

// ---------------------------------------------------------------------------------------------------------------------
// Decisions

/**
 * How many tasks to start in drain mode: one per waiting message, less the tasks still starting (`pending`: each will
 * take a message), never more than `maxTasks − running` (`running` counts pending ones too). Tasks already running are
 * busy with a job or would have taken a waiting message. At least one when none runs and there is work.
 */
export function tasksToStart(maxTasks: number, running: number, pending: number, backlog: number): number {
    return Math.max(0, Math.min((Math.ceil(backlog) || 0) - Math.max(0, pending), maxTasks - Math.max(0, running)));
}

/** Split into consecutive chunks of at most `size` (SendMessageBatch takes ≤ 10 entries, RunTask `count` ≤ 10). */
export function chunk<T>(items: readonly T[], size: number): T[][] {
    const out: T[][] = [];
    for (let i = 0; i < items.length; i += Math.max(1, size)) out.push(items.slice(i, i + Math.max(1, size)));
    return out;
}

/**
 * The RunTask request: `count` tasks, or (with `job`, per-job mode) one task with the job in its container environment
 * (`JOB_BUCKET`, `JOB_KEY`, in this order, and the event's `JOB_ETAG`, so that the worker binds to that version).
 * A non-empty capacity provider strategy replaces the launch type (ECS rejects both at once). `clientToken` makes the
 * call idempotent (see {@link runTaskToken}); `strategy` overrides the settings' (the on-demand fallback).
 */
export function buildRunTaskInput(
    s: LauncherSettings,
    count: number,
    job?: Job,
    clientToken?: string,
    capacityProviderStrategy = s.capacityProviderStrategy,
): RunTaskCommandInput {
    const { subnets, securityGroups, assignPublicIp } = s;
    const environment = job && [{ name: "JOB_BUCKET", value: job.bucket }, { name: "JOB_KEY", value: job.key }, ...(job.etag ? [{ name: "JOB_ETAG", value: job.etag }] : [])];
    return {
        cluster: s.cluster,
        taskDefinition: s.taskDefinition,
        count,
        startedBy: s.startedBy,
        propagateTags: "TASK_DEFINITION",
        networkConfiguration: { awsvpcConfiguration: { subnets, ...(securityGroups.length > 0 && { securityGroups }), assignPublicIp } },
        ...(capacityProviderStrategy.length > 0 ? { capacityProviderStrategy } : { launchType: "FARGATE" }),
        ...(environment && { overrides: { containerOverrides: [{ name: s.containerName, environment }] } }),
        ...(clientToken && { clientToken }),
    };
}

/**
 * RunTask's `clientToken` (ECS: up to 64 ASCII characters 33-126, per cluster, kept 24 h or the tasks' lifetime + 1 h;
 * the same token with other parameters is a ConflictException) is `<base>-<serial>`. The base names the start: per job
 * (per-job mode: 40 hex of SHA-256 over bucket, key, ETag and event time, so that a redelivered S3 event
 * or a retried invocation starts no second task) or per decision (drain: "d" + 32 random hex per RunTask batch). The
 * serial counts the answers received: a call that threw (timeout, 5xx: it may have started tasks) is retried with the
 * same token, a call that was answered (partly failed, or the on-demand fallback: other parameters) with the next one,
 * since ECS would replay its first answer.
 *
 * This function: hex SHA-256 of a value's JSON (UTF-8), for those tokens and {@link launcherJobId}.
 */
export function sha256Hex(value: unknown): string {
    return require("crypto").createHash("sha256").update(JSON.stringify(value), "utf8").digest("hex");
}

/** The worker's jobId (worker-image/src/binding.ts; a test keeps both equal): 32 hex of SHA-256 over bucket, key, bare ETag. */
export function launcherJobId(job: Pick<Job, "bucket" | "key" | "etag">): string {
    return sha256Hex(["job", job.bucket, job.key, (job.etag ?? "").trim().replace(/^W\//, "").replace(/^"(.*)"$/, "$1")]).slice(0, 32);
}

/**
 * The on-demand strategy to retry a start on, or undefined: only with SPOT_FALLBACK on, a strategy that includes
 * FARGATE_SPOT, and failures that are all capacity shortages (Fargate: "Capacity is unavailable at this time...").
 */
export function spotFallback(s: Pick<LauncherSettings, "spotFallback">, strategy: readonly CapacityProviderStrategyItem[], fails: { reason?: string }[]) {
    const short = fails.length > 0 && fails.every((f) => /capacity|SERVICE_UNAVAILABLE|^RESOURCE:/i.test(f.reason ?? ""));
    return s.spotFallback && short && strategy.some((x) => x.capacityProvider === "FARGATE_SPOT") ? [{ capacityProvider: "FARGATE", weight: 1 }] : undefined;
}

/**
 * One EMF line (CloudWatch Embedded Metric Format): Count metrics on the Worker dimension. `msg` is a plain member,
 * as in every log line. Written raw to stdout: console.log's prefix in Lambda would hide the JSON from CloudWatch.
 */
export function launcherMetrics(s: Pick<LauncherSettings, "metricsNamespace" | "workerName">, values: Record<string, number>, now = Date.now()) {
    const Metrics = Object.keys(values).map((Name) => ({ Name, Unit: "Count" }));
    return { msg: "metrics", _aws: { Timestamp: Math.floor(now), CloudWatchMetrics: [{ Namespace: s.metricsNamespace, Dimensions: [["Worker"]], Metrics }] }, Worker: s.workerName, ...values };
}

/** A job that ended in the launcher (or was routed to it): the `Job Failed` detail, as the worker's. */
export interface FailedJob {
    job: Job;
    reason: string;
    failureClass: string;
    attempts: number;
}

/** The PutEvents entry of a `Job Failed` event (the worker's detail shape; nothing written, no seconds). */
export function jobFailedEntry(s: LauncherSettings, { job, reason, failureClass, attempts }: FailedJob) {
    const detail = { worker: s.workerName, bucket: job.bucket, key: job.key, outputs: [], seconds: 0, attempts, reason: reason.slice(0, 2000), failureClass, jobId: job.jobId ?? launcherJobId(job) };
    return { EventBusName: s.eventBusName, Source: s.eventSource, DetailType: "Job Failed", Detail: JSON.stringify(detail) };
}

/**
 * The jobs an event routed to the launcher ended ({@link ROUTED_EVENTS}; a test keeps these literals equal to it), or
 * undefined for any other event: a per-job task's stop (ECS's "ECS Task State Change", its job in the JOB_BUCKET,
 * JOB_KEY and JOB_ETAG overrides), or Lambda's on-failure record of one of its own invocations (the S3 notification in
 * `requestPayload`). A task that failed to start (stopCode TaskFailedToStart; its rule dead-letters the job):
 * failureClass `not-started`. Any other stop whose worker container (CONTAINER_NAME) did not exit with one of
 * {@link SETTLED_EXIT_CODES} (0, 3, 4: it settled its job): `task-stopped`, the reason naming ECS's stoppedReason, the
 * stop code, the exit code and the container's reason (e.g. OutOfMemoryError), for the handler to dead-letter too; a
 * settled one: none.
 */
export function routedFailures(event: any, s: LauncherSettings): FailedJob[] | undefined {
    const d = event?.detail ?? {};
    const kind = `${event?.source} ${event?.["detail-type"]}`;
    if (kind === "aws.ecs ECS Task State Change") {
        const start = d.stopCode === "TaskFailedToStart";
        const c = d.containers?.find((x: any) => x?.name === s.containerName) ?? {};
        if (!start && [0, 3, 4].includes(c.exitCode)) return [];
        const reason = start ? `task failed to start: ${d.stoppedReason}` : `the task running it stopped without finishing: ${d.stoppedReason} (stop code ${d.stopCode}, exit code ${c.exitCode ?? "none"}${c.reason ? `, ${c.reason}` : ""})`;
        const env = (d.overrides?.containerOverrides ?? []).map((o: any) => Object.fromEntries((o?.environment ?? []).map((e: any) => [e?.name, e?.value])));
        const job = (e: any) => ({ job: { bucket: e.JOB_BUCKET, key: e.JOB_KEY, ...(e.JOB_ETAG && { etag: e.JOB_ETAG }) }, reason, failureClass: start ? "not-started" : "task-stopped", attempts: 1 });
        return env.filter((e: any) => e.JOB_BUCKET && e.JOB_KEY).map(job);
    }
    if (kind !== "lambda Lambda Function Invocation Result - Failure") return undefined;
    const reason = `launcher failed: ${d.responsePayload?.errorMessage ?? d.requestContext?.condition}`;
    const attempts = +d.requestContext?.approximateInvokeCount || 1;
    return extractJobs(d.requestPayload, s).jobs.map((job) => ({ job, reason, failureClass: "launcher", attempts }));
}

const RETRYABLE_ERROR = /throttl|too ?many ?requests|limitexceeded|slowdown|server|unavailable|internal|timeout/i;
const RETRYABLE_MESSAGE = /throttl|rate exceeded|too many requests|capacity|try again/i;

/** Whether an SDK error is worth retrying (throttling, capacity, server-side or network trouble). */
export function isRetryableError(err: any): boolean {
    const status = err?.$metadata?.httpStatusCode ?? 0;
    return (
        !!err?.$retryable ||
        status >= 500 ||
        status === 429 ||
        RETRYABLE_ERROR.test(String(err?.name)) ||
        /^E(CONNRESET|CONNREFUSED|TIMEDOUT|PIPE|AI_AGAIN)$/.test(String(err?.code)) ||
        RETRYABLE_MESSAGE.test(String(err?.message))
    );
}

/** Whether a RunTask `failures[].reason` is transient (capacity, throttling, placement resources, agent). */
export function isRetryableFailureReason(reason: string | undefined): boolean {
    return reason !== undefined && (RETRYABLE_MESSAGE.test(reason) || /^RESOURCE:|AGENT/i.test(reason));
}

/** Full-jitter exponential backoff: a delay in [0, min(cap, base·2^(attempt−1))) for `random` in [0, 1). */
export function backoffDelayMs(attempt: number, random: number, baseMs: number, capMs: number): number {
    return Math.floor(Math.max(0, Math.min(1, random)) * Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1)));
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
    /** Drain: tasks wanted but not started after the retries. Per-job: jobs whose task could not be started. */
    notStarted: number;
    /** Per-job: jobs sent to the dead-letter queue. */
    deadLettered: number;
    /** Drain and per-job, when any: tasks started on FARGATE after a Spot capacity failure. */
    spotFallbacks?: number;
    /** Service mode with SERVICE_NAME: the service's desired count after the wake decision (when known). */
    desiredCount?: number;
}

export interface LauncherClients {
    sqs: SQSClient;
    ecs: ECSClient;
    /** Job events (created on first use). */
    events: EventBridgeClient;
}

export interface HandlerOptions {
    /** Attempts per call, the first one included. Default 5. */
    maxAttempts?: number;
    /** Backoff base and cap; defaults 200 ms and 5 s. */
    baseDelayMs?: number;
    maxDelayMs?: number;
    sleep?: (ms: number) => Promise<void>;
    random?: () => number;
    /** Receives every decision; default: one JSON line on stdout. */
    log?: (entry: Record<string, unknown>) => void;
    /** Per-job mode: RunTask calls in flight at once. Default 5. */
    concurrency?: number;
    /** Receives each EMF metrics record; default: one raw JSON line on stdout (not console.log, whose prefix EMF cannot read). */
    metrics?: (record: Record<string, unknown>) => void;
}

export type LauncherHandler = (event: any, context?: any) => Promise<LaunchSummary>;

/**
 * Build the handler from settings and (optionally injected) clients. The SDK modules are required here, not at module
 * level, so that the serialized Lambda resolves them from the runtime.
 *
 * Inside the handler: `backoff` sleeps before the next attempt (false when out of attempts, or when the Lambda
 * `context` says the function would time out); `call` retries one call on transient errors; `sendAll` sends message
 * bodies ≤ 10 per call and retries the failed entries (sender faults are not retried), throwing unless all were sent;
 * `runTasks` starts ≤ 10 tasks, retrying transient errors and transient `failures`, and never throws; its clientToken
 * base is per job, or per drain decision (a fresh one per RunTask batch; see {@link sha256Hex}), and a Spot capacity
 * shortage retries the rest of a start at once on FARGATE (once). `publish` sends the Job Failed events, PutEvents ≤ 10
 * entries a call, failed entries retried; logged, never thrown. `wake` (service mode) raises the service's desired
 * count to what the backlog needs (≤ MAX_TASKS, never lowered); a failure is logged (the jobs are queued; the
 * service's own scaling still starts tasks, only later). (These notes live here, not in the body: comments inside it
 * count toward the serialized package's 32 KiB.) `context` is the
 * Lambda context of the invocation in progress (Lambda runs one invocation at a time per instance). `recent` holds the
 * tasks this instance started in the last minute: ECS is eventually consistent, and until ListTasks lists them they
 * count as running and still starting.
 *
 * A routed event ({@link routedFailures}): a per-job task that stopped without settling its job is dead-lettered first
 * (a failed send throws, for Lambda's retry), then every job it ended gets its Job Failed; nothing is queued or started.
 *
 * Once the jobs are queued (or, per job, dead-lettered), a task that could not be started is left to the reconcile
 * schedule, not to Lambda's async retry, which would queue the whole event again (duplicate renders) and then hand an
 * invocation record to the dead-letter queue. Only a job that could be lost (not queued, or neither started nor
 * dead-lettered) fails the invocation.
 */
export function createHandler(s: LauncherSettings, clients?: Partial<LauncherClients>, o: HandlerOptions = {}): LauncherHandler {
    const SQS: typeof import("@aws-sdk/client-sqs") = require("@aws-sdk/client-sqs");
    const ECS: typeof import("@aws-sdk/client-ecs") = require("@aws-sdk/client-ecs");
    const sqs = clients?.sqs ?? new SQS.SQSClient({});
    const ecs = clients?.ecs ?? new ECS.ECSClient({});
    const sleep = o.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    const log = o.log ?? ((entry: Record<string, unknown>) => console.log(JSON.stringify(entry)));
    const text = (e: any) => `${e?.name ?? "Error"}: ${e?.message ?? e}`;

    let context: any;
    const recent = new Map<string, number>();
    const backoff = async (what: string, attempt: number, reason: string) => {
        const delayMs = backoffDelayMs(attempt, (o.random ?? Math.random)(), o.baseDelayMs ?? 200, o.maxDelayMs ?? 5000);
        const retry = attempt < (o.maxAttempts ?? 5) && (context?.getRemainingTimeInMillis?.() ?? Infinity) > delayMs + 3000;
        log({ msg: retry ? "retry" : "giving up", what, attempt, delayMs, reason });
        if (retry) await sleep(delayMs);
        return retry;
    };
    const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
        for (let attempt = 1; ; attempt++) {
            try {
                return await fn();
            } catch (e) {
                if (!isRetryableError(e) || !(await backoff(what, attempt, text(e)))) throw e;
            }
        }
    };
    const sendAll = async (QueueUrl: string, bodies: object[]) => {
        const problems: string[] = [];
        for (const batch of chunk(bodies.map((b, i) => ({ Id: `m${i}`, MessageBody: JSON.stringify(b) })), 10)) {
            let pending = batch;
            for (let attempt = 1; pending.length > 0; attempt++) {
                let reason: string;
                try {
                    const failed = (await sqs.send(new SQS.SendMessageBatchCommand({ QueueUrl, Entries: pending }))).Failed ?? [];
                    reason = failed.map((f) => `${f.Id}: ${f.Code}${f.SenderFault ? " (sender fault)" : ""}`).join(", ");
                    if (failed.length > 0) log({ msg: "SendMessageBatch failures", QueueUrl, attempt, reason });
                    for (const f of failed) if (f.SenderFault) problems.push(`${f.Id}: ${f.Code} ${f.Message}`);
                    pending = pending.filter((e) => failed.some((f) => f.Id === e.Id && !f.SenderFault));
                } catch (e) {
                    if (!isRetryableError(e)) throw e;
                    reason = text(e);
                }
                if (pending.length > 0 && !(await backoff("SendMessageBatch", attempt, reason))) {
                    problems.push(...pending.map((e) => `${e.Id}: ${reason}`));
                    break;
                }
            }
        }
        if (problems.length > 0) throw new Error(`${problems.length} of ${bodies.length} message(s) not sent to ${QueueUrl}: ${problems.join("; ")}`);
        return bodies.length;
    };
    const runTasks = async (count: number, job?: Job, base = job ? "j" + sha256Hex([job.bucket, job.key, job.etag ?? "", job.eventTime ?? ""]).slice(0, 40) : "d" + require("crypto").randomBytes(16).toString("hex")) => {
        const r = { started: 0, notStarted: count, failures: 0, reason: "", fallbacks: 0 };
        let strategy = s.capacityProviderStrategy;
        let serial = 0;
        for (let attempt = 1; r.notStarted > 0; attempt++) {
            let retryable: boolean;
            try {
                const input = buildRunTaskInput(s, r.notStarted, job, `${base}-${serial}`, strategy);
                const out = await ecs.send(new ECS.RunTaskCommand(input));
                serial++;
                for (const t of out.tasks ?? []) recent.set(t.taskArn!, Date.now());
                const fails = out.failures ?? [];
                r.started += out.tasks?.length ?? 0;
                r.notStarted = count - r.started;
                r.failures += fails.length;
                r.reason = fails.map((f) => `${f.reason}${f.detail ? ` (${f.detail})` : ""}`).join(", ") || "fewer tasks than requested";
                retryable = fails.length > 0 && fails.every((f) => isRetryableFailureReason(f.reason));
                const onDemand = strategy === s.capacityProviderStrategy && spotFallback(s, strategy, fails);
                if (onDemand && r.notStarted > 0) {
                    log({ msg: "spot fallback", count: r.notStarted, reason: r.reason, key: job?.key, clientToken: input.clientToken });
                    strategy = onDemand;
                    r.fallbacks += r.notStarted;
                    continue;
                }
            } catch (e) {
                r.failures++;
                r.reason = text(e);
                retryable = isRetryableError(e);
            }
            if (r.notStarted > 0) log({ msg: "RunTask failed", attempt, started: r.started, reason: r.reason, retryable, key: job?.key });
            if (r.notStarted > 0 && !(retryable && (await backoff("RunTask", attempt, r.reason)))) break;
        }
        return r;
    };
    let events = clients?.events;
    const publish = async (failed: FailedJob[]) => {
        for (const batch of s.eventBusName ? chunk(failed.map((f) => jobFailedEntry(s, f)), 10) : []) {
            let Entries = batch;
            for (let attempt = 1, reason = ""; Entries.length > 0; attempt++) {
                try {
                    const EB: typeof import("@aws-sdk/client-eventbridge") = require("@aws-sdk/client-eventbridge");
                    const out = (await (events ??= new EB.EventBridgeClient({})).send(new EB.PutEventsCommand({ Entries }))).Entries ?? [];
                    reason = out.map((e) => e.ErrorCode ?? "").join(" ");
                    Entries = Entries.filter((_, i) => out[i]?.EventId === undefined);
                } catch (e) {
                    reason = text(e);
                }
                if (Entries.length > 0 && !(attempt < 3 && (await backoff("PutEvents", attempt, reason)))) break;
            }
            log({ msg: "job events", published: batch.length - Entries.length, of: batch.length });
        }
    };
    const wake = async (queued: number) => {
        try {
            const AttributeNames = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] as const;
            const q = (await call("GetQueueAttributes", () => sqs.send(new SQS.GetQueueAttributesCommand({ QueueUrl: s.queueUrl, AttributeNames: [...AttributeNames] })))).Attributes ?? {};
            const backlog = Math.max(queued, +(q.ApproximateNumberOfMessages ?? 0) + +(q.ApproximateNumberOfMessagesNotVisible ?? 0));
            const svc = (await call("DescribeServices", () => ecs.send(new ECS.DescribeServicesCommand({ cluster: s.cluster, services: [s.serviceName] })))).services?.[0];
            const desired = svc?.desiredCount ?? 0;
            const wanted = Math.min(s.maxTasks, Math.ceil(backlog / s.backlogPerTask));
            log({ msg: "wake decision", service: s.serviceName, found: !!svc, backlog, desired, wanted });
            if (svc && wanted > desired) await call("UpdateService", () => ecs.send(new ECS.UpdateServiceCommand({ cluster: s.cluster, service: s.serviceName, desiredCount: wanted })));
            return svc && Math.max(desired, wanted);
        } catch (e) {
            log({ msg: "wake failed", reason: text(e) });
            return undefined;
        }
    };

    return async (event: any, invocation?: any): Promise<LaunchSummary> => {
        context = invocation;
        const routed = routedFailures(event, s);
        if (routed) {
            log({ msg: "routed failure", source: event.source, detailType: event["detail-type"], jobs: routed.length });
            const dead = routed.filter((f) => f.failureClass === "task-stopped").map((f) => ({ ...f.job, jobId: launcherJobId(f.job), reason: f.reason }));
            if (dead.length > 0) await sendAll(s.deadLetterQueueUrl, dead);
            await publish(routed);
            return { mode: s.mode, accepted: 0, ignored: 0, queued: 0, tasksStarted: 0, failures: 0, notStarted: 0, deadLettered: dead.length };
        }
        const tick = event?.["detail-type"] === "Scheduled Event";
        const { jobs, ignored } = extractJobs(event, s);
        for (const i of ignored) log({ msg: "ignored", ...i });
        for (const j of jobs) log({ msg: "accepted", ...j });
        const summary: LaunchSummary = { mode: s.mode, accepted: jobs.length, ignored: ignored.length, queued: 0, tasksStarted: 0, failures: 0, notStarted: 0, deadLettered: 0 };
        const lost: string[] = [];
        const failed: FailedJob[] = [];
        let fallbacks = 0;
        const add = (r: { started: number; notStarted: number; failures: number; fallbacks: number }) => {
            summary.tasksStarted += r.started;
            summary.failures += r.failures;
            summary.notStarted += r.notStarted;
            fallbacks += r.fallbacks;
        };

        if (jobs.length > 0 && s.mode === "per-job") {
            for (const group of chunk(jobs, Math.max(1, o.concurrency ?? 5))) {
                await Promise.all(
                    group.map(async (job) => {
                        const r = await runTasks(1, job);
                        add(r);
                        if (r.notStarted === 0) return;
                        try {
                            await sendAll(s.deadLetterQueueUrl, [{ ...job, reason: `task could not be started: ${r.reason}` }]);
                            summary.deadLettered++;
                            log({ msg: "dead-lettered", ...job, reason: r.reason });
                            failed.push({ job, reason: `task could not be started: ${r.reason}`, failureClass: "not-started", attempts: 1 });
                        } catch (e) {
                            lost.push(`${job.key}: ${r.reason}; ${text(e)}`);
                        }
                    }),
                );
            }
        } else if (jobs.length > 0 || (s.mode === "drain" && tick)) {
            if (!tick) summary.queued = await sendAll(s.queueUrl, jobs);
            log({ msg: tick ? "reconcile" : "queued", count: summary.queued });
            if (s.mode === "service" && s.serviceName !== "") {
                const desired = await wake(summary.queued);
                if (desired !== undefined) summary.desiredCount = desired;
            }
            if (s.mode === "drain") {
                let toStart = 0;
                try {
                    const arns: string[] = [];
                    let pending = 0;
                    let nextToken: string | undefined;
                    do {
                        const page = await call("ListTasks", () => ecs.send(new ECS.ListTasksCommand({ cluster: s.cluster, startedBy: s.startedBy, nextToken })));
                        const tasks = page.taskArns ?? [];
                        arns.push(...tasks);
                        const described = tasks.length > 0 ? await call("DescribeTasks", () => ecs.send(new ECS.DescribeTasksCommand({ cluster: s.cluster, tasks }))) : undefined;
                        pending += (described?.tasks ?? []).filter((t) => t.lastStatus !== "RUNNING").length;
                        nextToken = page.nextToken;
                    } while (nextToken);
                    for (const [arn, t] of recent) if (arns.includes(arn) || Date.now() - t > 60000) recent.delete(arn);
                    pending += recent.size;
                    const running = arns.length + recent.size;
                    const attrs = await call("GetQueueAttributes", () =>
                        sqs.send(new SQS.GetQueueAttributesCommand({ QueueUrl: s.queueUrl, AttributeNames: ["ApproximateNumberOfMessages"] })),
                    ).catch((e) => log({ msg: "backlog unknown", reason: text(e) }));
                    const backlog = Math.max(summary.queued, Number(attrs?.Attributes?.ApproximateNumberOfMessages) || 0);
                    toStart = tasksToStart(s.maxTasks, running, pending, backlog);
                    log({ msg: "drain decision", running, pending, backlog, maxTasks: s.maxTasks, toStart });
                    for (let left = toStart; left > 0 && summary.notStarted === 0; left -= 10) add(await runTasks(Math.min(10, left)));
                } catch (e) {
                    log({ msg: "tasks not counted", reason: text(e) });
                }
                summary.notStarted = toStart - summary.tasksStarted;
            }
        }
        await publish(failed);
        if (fallbacks > 0) summary.spotFallbacks = fallbacks;
        const record = launcherMetrics(s, { TasksNotStarted: summary.notStarted, SpotFallbacks: fallbacks });
        if (s.mode !== "service" && (jobs.length > 0 || tick)) (o.metrics ?? ((r) => process.stdout.write(JSON.stringify(r) + "\n")))(record);
        log({ msg: "summary", ...summary, lost });
        if (lost.length > 0) throw new Error(`${lost.length} job(s) neither started nor dead-lettered: ${lost.join("; ")}`);
        return summary;
    };
}

/**
 * The `callbackFactory` of the component's `aws.lambda.CallbackFunction`: runs once per Lambda cold start, reads the
 * settings from the environment, creates the SDK clients and returns the handler.
 */
export function launcherFactory(): LauncherHandler {
    return createHandler(parseLauncherSettings(process.env));
}
