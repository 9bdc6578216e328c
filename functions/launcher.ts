/**
 * The launcher Lambda: S3 "object created" notifications (buffered in the intake queue, delivered in batches by an
 * SQS event source mapping) → one SQS job message per accepted object → ECS Fargate tasks.
 *
 * Packaging: the component passes {@link launcherFactory} as an `aws.lambda.CallbackFunction` `callbackFactory`.
 * Pulumi serializes the factory and everything it closes over (the plain functions and consts of this module, and the
 * exports of `./launcher-settings`) into a single `__index.js`; the archive contains no node_modules. So:
 *  - the AWS SDK v3 clients are `require`d INSIDE {@link createHandler} (called by the factory at cold start): the
 *    Node.js 22 Lambda runtime ships them, and the component excludes them from the package;
 *  - everything the handler uses is a plain function declaration or a non-exported const of this module (no classes,
 *    no `exports.x` references, no `@pulumi/*` imports), which keeps the serialized code small and self-contained;
 *  - settings come from `process.env` (names in {@link LAUNCHER_ENV}), parsed once per cold start;
 *  - comments stay out of function bodies (the package is capped at 32 KiB): each function's JSDoc says how it works.
 *
 * Events: a batch of intake records (`eventSource` `aws:sqs`, each body an S3 notification; the answer lists the
 * records to retry as `batchItemFailures`), an S3 notification invoked directly, drain's "Scheduled Event"
 * (reconcile), and the events of {@link ROUTED_EVENTS}.
 *
 * Modes ({@link LaunchMode}):
 *  - "drain" (default): queue every job, then start just enough tasks (see {@link tasksToStart}): never more than
 *    MAX_TASKS live tasks, each counted as WORKER_CONCURRENCY slots. Decisions are coordinated across concurrent
 *    invocations through STATE_TABLE (see {@link createHandler}): at most one a second, each a constant number of
 *    calls. Each task drains the queue and exits when it is empty. The component also invokes the launcher every minute
 *    with a scheduled EventBridge event ("reconcile": the same decision, no new job), so that jobs whose task could not
 *    be started, jobs redelivered after a task was stopped (e.g. a Spot interruption), and a job that arrived just as
 *    the last task was exiting still get a task.
 *  - "per-job": the job is NOT queued; it travels in the task's container environment (`JOB_BUCKET`, `JOB_KEY`), one
 *    RunTask per job, paced to the worker's share of RunTask's rate, and the task processes that job alone. A job whose
 *    start was throttled (or that the invocation had no time left for) stays in the intake queue for a retry; one
 *    whose task could not be started after the retries is sent to the dead-letter queue (`DLQ_URL`) with the reason.
 *    MAX_TASKS does not apply: one task per upload.
 *  - "service": queue the jobs and wake the service (at most one wake decision a second); an autoscaled ECS service
 *    consumes the queue.
 *
 * In drain and service modes every job is queued BEFORE any task is started, so a failed start never loses a job. An
 * intake record whose jobs were not queued is retried by the mapping (`batchItemFailures`, hidden for a backoff); on
 * its last allowed receive the launcher dead-letters them itself with the reason and publishes `Job Failed`. A failed
 * start is never retried that way: its jobs wait in the queue for the next decision or the reconcile schedule. A
 * directly invoked S3 notification whose jobs were not queued fails the invocation (Lambda's async retry).
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { ECSClient, RunTaskCommandInput } from "@aws-sdk/client-ecs";
import type { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { ERROR_REPORT_SUFFIX, LAUNCH_MODES, LAUNCHER_ENV, LaunchMode, METRICS, OUTPUT_SUFFIXES, ROUTED_EVENTS, SETTLED_EXIT_CODES } from "./launcher-settings";

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
    /** Drain and service: the coordination table ("" = decide uncoordinated). */
    stateTable: string;
    /** Drain: jobs one task takes at once. */
    workerConcurrency: number;
    /** The intake's maxReceiveCount (0 = unknown: never dead-letter a record's jobs on a receive count). */
    intakeMaxReceives: number;
    /** Per-job: the intake mapping's maximum concurrency (its invocations share the RunTask budget). */
    intakeConcurrency: number;
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
        stateTable: str(E.stateTable),
        workerConcurrency: Number(str(E.workerConcurrency) || "1"),
        intakeMaxReceives: Number(str(E.intakeMaxReceives) || "0"),
        intakeConcurrency: Number(str(E.intakeConcurrency) || "1"),
    };
    for (const k of ["maxTasks", "workerConcurrency", "intakeConcurrency", "intakeMaxReceives"] as const) {
        const min = k === "intakeMaxReceives" ? 0 : 1;
        (!Number.isSafeInteger(s[k]) || s[k] < min) && bad(E[k], `an integer >= ${min}`);
    }
    s.eventSource ||= `lambda-ecs-worker.${s.workerName}`;
    s.serviceName && !s.cluster && bad(E.cluster, `set with ${E.serviceName}`);
    !(s.backlogPerTask > 0) && bad(E.backlogPerTask, "a number > 0");
    !/^(true|false|)$/i.test(str(E.spotFallback)) && bad(E.spotFallback, "true or false");
    !/^(?!aws\.)[\w./-]{1,256}$/.test(s.eventSource) && bad(E.eventSource, "1-256 of A-Z a-z 0-9 . _ / -, not aws.*");
    tasks && s.subnets.length === 0 && bad(E.subnets, "comma-separated subnet ids");
    s.startedBy !== "" && !/^[A-Za-z0-9_/-]{1,36}$/.test(s.startedBy) && bad(E.startedBy, "1-36 letters, digits, '-', '_' or '/'");
    s.assignPublicIp !== "ENABLED" && s.assignPublicIp !== "DISABLED" && bad(E.assignPublicIp, "ENABLED or DISABLED");
    if (str(E.outputSuffixes) !== "") {
        for (const x of jsonArray(E.outputSuffixes)) typeof x === "string" && x !== "" ? s.outputSuffixes.push(x.toLowerCase()) : bad(E.outputSuffixes, "a JSON array of non-empty strings");
        s.outputSuffixes.includes(ERROR_REPORT_SUFFIX) || s.outputSuffixes.push(ERROR_REPORT_SUFFIX);
    }
    for (const x of jsonArray(E.inputSuffixes)) typeof x === "string" && x !== "" ? s.inputSuffixes.push(x.toLowerCase()) : bad(E.inputSuffixes, "a JSON array of non-empty strings");
    const int = (v: unknown, max: number) => v === undefined || (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max);
    for (const x of jsonArray(E.capacityProviderStrategy) as any[]) {
        const ok = x && typeof x.capacityProvider === "string" && x.capacityProvider !== "" && int(x.weight, 1000) && int(x.base, 100000);
        ok ? s.capacityProviderStrategy.push(JSON.parse(JSON.stringify({ capacityProvider: x.capacityProvider, weight: x.weight, base: x.base }))) : bad(E.capacityProviderStrategy, "a JSON array of { capacityProvider, weight?, base? }");
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
 * How many tasks to start in drain mode: one per `slots` waiting messages (a task takes WORKER_CONCURRENCY jobs at
 * once), less the tasks still starting (`pending`: each will take `slots` messages), never more than
 * `maxTasks − running` (`running` counts every live task, pending ones too). Tasks already running are busy or would
 * have taken a waiting message. At least one when none runs and there is work.
 */
export function tasksToStart(maxTasks: number, running: number, pending: number, backlog: number, slots = 1): number {
    return Math.max(0, Math.min(Math.ceil((Math.ceil(backlog) || 0) / Math.max(1, slots)) - Math.max(0, pending), maxTasks - Math.max(0, running)));
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
 * undefined for any other event: {@link taskStateFailures} (per-job) or {@link launcherFailureJobs} (every mode).
 */
export function routedFailures(event: any, s: LauncherSettings): FailedJob[] | undefined {
    return taskStateFailures(event, s) ?? launcherFailureJobs(event, s);
}

/**
 * Per-job mode's routed events: a per-job task's stop (ECS's "ECS Task State Change", its job in the JOB_BUCKET,
 * JOB_KEY and JOB_ETAG overrides), or undefined for any other event. A task that failed to start (stopCode
 * TaskFailedToStart; its rule dead-letters the job): failureClass `not-started`. Any other stop whose worker container
 * (CONTAINER_NAME) did not exit with one of {@link SETTLED_EXIT_CODES} (0, 3, 4: it settled its job): `task-stopped`,
 * the reason naming ECS's stoppedReason, the stop code, the exit code and the container's reason (e.g.
 * OutOfMemoryError), for the handler to dead-letter too; a settled one: none. (Only the per-job package holds it.)
 */
export function taskStateFailures(event: any, s: LauncherSettings): FailedJob[] | undefined {
    const d = event?.detail ?? {};
    if (`${event?.source} ${event?.["detail-type"]}` !== "aws.ecs ECS Task State Change") return undefined;
    const start = d.stopCode === "TaskFailedToStart";
    const c = d.containers?.find((x: any) => x?.name === s.containerName) ?? {};
    if (!start && SETTLED_EXIT_CODES.includes(c.exitCode)) return [];
    const reason = start ? `task failed to start: ${d.stoppedReason}` : `the task running it stopped without finishing: ${d.stoppedReason} (stop code ${d.stopCode}, exit code ${c.exitCode ?? "none"}${c.reason ? `, ${c.reason}` : ""})`;
    const env = (d.overrides?.containerOverrides ?? []).map((o: any) => Object.fromEntries((o?.environment ?? []).map((e: any) => [e?.name, e?.value])));
    const job = (e: any) => ({ job: { bucket: e.JOB_BUCKET, key: e.JOB_KEY, ...(e.JOB_ETAG && { etag: e.JOB_ETAG }) }, reason, failureClass: start ? "not-started" : "task-stopped", attempts: 1 });
    return env.filter((e: any) => e.JOB_BUCKET && e.JOB_KEY).map(job);
}

/**
 * Every mode's routed event: Lambda's on-failure record of one of the launcher's own asynchronous invocations (the S3
 * notification in `requestPayload`): its jobs, failureClass `launcher`; undefined for any other event.
 */
export function launcherFailureJobs(event: any, s: LauncherSettings): FailedJob[] | undefined {
    const d = event?.detail ?? {};
    if (`${event?.source} ${event?.["detail-type"]}` !== "lambda Lambda Function Invocation Result - Failure") return undefined;
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
    /** Jobs sent to the dead-letter queue (per-job: not started; intake records on their last receive: not queued). */
    deadLettered: number;
    /** Drain and per-job, when any: tasks started on FARGATE after a Spot capacity failure. */
    spotFallbacks?: number;
    /** Service mode with SERVICE_NAME: the service's desired count after the wake decision (when known). */
    desiredCount?: number;
    /** A batch of intake records: those the mapping must deliver again (ReportBatchItemFailures). */
    batchItemFailures?: { itemIdentifier: string }[];
}

export interface LauncherClients {
    sqs: SQSClient;
    ecs: ECSClient;
    /** Job events (created on first use). */
    events: EventBridgeClient;
    /** The coordination table (created on first use). */
    dynamodb: DynamoDBClient;
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
    /** Receives each EMF metrics record; default: one raw JSON line on stdout (not console.log, whose prefix EMF cannot read). */
    metrics?: (record: Record<string, unknown>) => void;
    /**
     * The launch mode's part ({@link launchStep}): without one the handler only queues (or, per-job, starts nothing).
     * Each factory passes its own mode's only, so that the serialized package holds no other mode's code.
     */
    step?: LaunchStep;
}

/** What a launch mode's part of the handler gets from it: the settings, the SDK clients and modules, its helpers. */
export interface LaunchKit {
    s: LauncherSettings;
    sqs: SQSClient;
    ecs: ECSClient;
    SQS: typeof import("@aws-sdk/client-sqs");
    ECS: typeof import("@aws-sdk/client-ecs");
    call: <T>(what: string, fn: () => Promise<T>) => Promise<T>;
    log: (entry: Record<string, unknown>) => void;
    text: (e: unknown) => string;
    runTasks: (count: number, job?: Job) => Promise<{ started: number; notStarted: number; failures: number; reason: string; fallbacks: number }>;
    sleep: (ms: number) => Promise<void>;
    /** Sends message bodies (≤ 10 a call, in parallel, failed entries retried); answers per body why it was not sent ("" = sent). */
    send: (QueueUrl: string, bodies: object[]) => Promise<string[]>;
    /** The gate's DynamoDB client (created at its first use when not injected). */
    dynamodb?: DynamoDBClient;
}

/** One accepted job of an invocation: its intake record's id and receive count; why it was left (not queued, not started). */
export interface IntakeItem {
    job: Job;
    id: string;
    n: number;
    why?: string;
    retry?: boolean;
}

/** Counts a start attempt's outcome into the invocation's summary. */
export type AddStarts = (r: { started: number; notStarted: number; failures: number; fallbacks: number }) => void;

/** A launch mode's part of the handler: per-job starts the jobs instead of queueing them; drain and service decide. */
export interface LaunchStep {
    /** Start the items' jobs, marking those left (`why`, `retry`). */
    start?: (k: LaunchKit, items: IntakeItem[], add: AddStarts) => Promise<void>;
    /** The decision behind the gate, given the state item; answers drain's new `starts` ledger (undefined: none). */
    decide?: (k: LaunchKit, summary: LaunchSummary, add: AddStarts, item?: any) => Promise<string | void>;
    /** Runs `decide` at most once a second across invocations ({@link gated}); without one, `decide` runs at once. */
    gate?: (k: LaunchKit, E: number, tick: boolean, decide: (item?: any) => Promise<string | void>) => Promise<unknown>;
    /**
     * The mode's own routed events (per-job: {@link perJobRouted}), besides every mode's {@link launcherFailureJobs}:
     * the jobs they ended (undefined: not one of them), after dead-lettering those that need it.
     */
    routed?: (k: LaunchKit, event: any) => Promise<FailedJob[] | undefined>;
}

export type LauncherHandler = (event: any, context?: any) => Promise<LaunchSummary>;

/** How long a decision may hold the coordination lease: longer than the slowest decision with its retries (~15 s). */
const LEASE_MS = 30000;
/** How long an invocation whose jobs no decision has seen yet keeps trying to get one (else the reconcile decides). */
const GATE_BUDGET_MS = 5000;
/** Drain: tasks one decision starts at most: Fargate's sustained task launch rate, 20 a second per account and Region. */
const MAX_STARTS = 20;
/** Per-job: RunTask calls a second for the worker, shared by its concurrent invocations (RunTask: 20 a second per account and Region). */
const PER_JOB_STARTS_PER_SECOND = 10;
/**
 * Drain: seconds a start counts toward MAX_TASKS on top of ECS's counts. DescribeClusters counts tasks in RUNNING and
 * PENDING only; a new Fargate task is first PROVISIONING (its network interface is attached; Fargate capacity is
 * placed), which takes seconds to tens of seconds, and ECS's counts are eventually consistent: 120 s outlasts both
 * several times over. Counting a start twice meanwhile is the safe side (never more than MAX_TASKS).
 */
const LEDGER_S = 120;
/** Drain: seconds a start counts as a task still starting (it will take WORKER_CONCURRENCY of the waiting jobs). */
const PENDING_S = 30;

/**
 * Build the handler from settings, (optionally injected) clients and the launch mode's part (`o.step`, see
 * {@link LaunchStep}). The SDK modules are required here, not at module level, so that the serialized Lambda resolves
 * them from the runtime.
 *
 * Helpers: `backoff` sleeps before the next attempt (false when out of attempts, or when the Lambda `context` says the
 * function would time out); `call` retries one call on transient errors; `send` sends message bodies ≤ 10 per call,
 * the calls in parallel, retries the failed entries (sender faults are not retried) and answers, per body, why it was
 * not sent ("" = sent); `runTasks` starts ≤ 10 tasks, retrying transient errors and transient `failures` (a Spot
 * capacity shortage: the rest of the start at once on FARGATE, once), and never throws; its clientToken base names the
 * start: per job (per-job mode) or a fresh random one per drain RunTask batch (see {@link sha256Hex}); `publish` puts
 * `Job Failed` events ≤ 10 a call, retrying failed entries, logged and never thrown. `context` is the Lambda context of the invocation in progress (one invocation at a time per instance).
 *
 * The handler turns each intake record (or a direct S3 notification) into items, one per accepted job, and queues
 * their jobs (per-job: the step starts them). It then lets the step decide behind its gate ({@link gated}), and settles the items left:
 * one left retryably (not queued; per-job: throttled) from an intake record is retried by the mapping (its record in
 * `batchItemFailures`, visible again after the intake's visibility timeout); on the record's last allowed receive
 * (INTAKE_MAX_RECEIVE_COUNT), from a direct notification, or when not retryable (a task that could not be started),
 * its job goes to the dead-letter queue with the reason and gets a `Job Failed`. A dead-letter that fails leaves the
 * record to the mapping (beyond its last receive: the intake's redrive to the DLQ), and fails a direct invocation.
 *
 * A routed event (the step's own, {@link perJobRouted}, or {@link launcherFailureJobs}): every job it ended gets its
 * Job Failed (per-job: a task that stopped without settling its job is dead-lettered first, a failed send throws, for
 * Lambda's retry); nothing is queued or started.
 */
export function createHandler(s: LauncherSettings, clients?: Partial<LauncherClients>, o: HandlerOptions = {}): LauncherHandler {
    const SQS: typeof import("@aws-sdk/client-sqs") = require("@aws-sdk/client-sqs");
    const ECS: typeof import("@aws-sdk/client-ecs") = require("@aws-sdk/client-ecs");
    const sqs = clients?.sqs ?? new SQS.SQSClient({}), ecs = clients?.ecs ?? new ECS.ECSClient({});
    const sleep = o.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    const log = o.log ?? ((entry: Record<string, unknown>) => console.log(JSON.stringify(entry)));
    const text = (e: any) => `${e?.name ?? "Error"}: ${e?.message ?? e}`;
    let context: any, events = clients?.events;
    const backoff = async (what: string, attempt: number, reason: string) => {
        const delayMs = backoffDelayMs(attempt, (o.random ?? Math.random)(), o.baseDelayMs ?? 200, o.maxDelayMs ?? 5000);
        const retry = attempt < (o.maxAttempts ?? 5) && (context?.getRemainingTimeInMillis?.() ?? Infinity) > delayMs + 3000;
        log({ msg: retry ? "retry" : "giving up", what, attempt, delayMs, reason });
        return retry && (await sleep(delayMs), true);
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
    const send = async (QueueUrl: string, bodies: object[]) => {
        const why = bodies.map(() => "");
        const batch = async (pending: { Id: string; MessageBody: string }[]) => {
            for (let attempt = 1, reason = "", retryable = true; pending.length > 0; attempt++) {
                try {
                    const failed = (await sqs.send(new SQS.SendMessageBatchCommand({ QueueUrl, Entries: pending }))).Failed ?? [];
                    reason = failed.map((f) => `${f.Id}: ${f.Code}${f.SenderFault ? " (sender fault)" : ""}`).join(", ");
                    failed.length > 0 && log({ msg: "SendMessageBatch failures", QueueUrl, attempt, reason });
                    for (const f of failed) f.SenderFault && (why[+f.Id!.slice(1)] = `${f.Code} ${f.Message}`);
                    pending = pending.filter((e) => failed.some((f) => f.Id === e.Id && !f.SenderFault));
                } catch (e) {
                    reason = text(e);
                    retryable = isRetryableError(e);
                }
                if (pending.length > 0 && !(retryable && (await backoff("SendMessageBatch", attempt, reason)))) return pending.forEach((e) => (why[+e.Id.slice(1)] = reason));
            }
        };
        await Promise.all(chunk(bodies.map((b, i) => ({ Id: `m${i}`, MessageBody: JSON.stringify(b) })), 10).map(batch));
        return why;
    };
    const runTasks = async (count: number, job?: Job, base = job ? "j" + sha256Hex([job.bucket, job.key, job.etag ?? "", job.eventTime ?? ""]).slice(0, 40) : "d" + require("crypto").randomBytes(16).toString("hex")) => {
        const r = { started: 0, notStarted: count, failures: 0, reason: "", fallbacks: 0 };
        let strategy = s.capacityProviderStrategy, serial = 0;
        for (let attempt = 1; r.notStarted > 0; attempt++) {
            let retryable: boolean;
            try {
                const input = buildRunTaskInput(s, r.notStarted, job, `${base}-${serial}`, strategy);
                const out = await ecs.send(new ECS.RunTaskCommand(input));
                const fails = out.failures ?? [];
                serial++;
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
            r.notStarted > 0 && log({ msg: "RunTask failed", attempt, started: r.started, reason: r.reason, retryable, key: job?.key });
            if (r.notStarted > 0 && !(retryable && (await backoff("RunTask", attempt, r.reason)))) break;
        }
        return r;
    };
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
    const kit: LaunchKit = { s, sqs, ecs, SQS, ECS, call, log, text, runTasks, sleep, send, dynamodb: clients?.dynamodb };
    return async (event: any, invocation?: any): Promise<LaunchSummary> => {
        context = invocation;
        const routed = (await o.step?.routed?.(kit, event)) ?? launcherFailureJobs(event, s);
        const summary: LaunchSummary = { mode: s.mode, accepted: 0, ignored: 0, queued: 0, tasksStarted: 0, failures: 0, notStarted: 0, deadLettered: 0 };
        if (routed) {
            log({ msg: "routed failure", source: event.source, detailType: event["detail-type"], jobs: routed.length });
            await publish(routed);
            summary.deadLettered = routed.filter((f) => f.failureClass === "task-stopped").length;
            return summary;
        }
        const tick = event?.["detail-type"] === "Scheduled Event";
        const records: any[] | undefined = event?.Records?.[0]?.eventSource === "aws:sqs" ? event.Records : undefined;
        const items: { job: Job; id: string; n: number; why?: string; retry?: boolean }[] = [], failed: FailedJob[] = [], lost: string[] = [], retry = new Set<string>();
        let fallbacks = 0;
        for (const r of records ?? [{ body: event }]) {
            let body = r.body;
            try {
                records && (body = JSON.parse(body));
            } catch {}
            const x = extractJobs(body, s);
            summary.ignored += x.ignored.length;
            for (const i of x.ignored) log({ msg: "ignored", ...i, messageId: r.messageId });
            for (const job of x.jobs) log({ msg: "accepted", ...job }), items.push({ job, id: r.messageId, n: +r.attributes?.ApproximateReceiveCount || 1 });
        }
        const jobs = items.map((x) => x.job);
        summary.accepted = jobs.length;
        const add = (r: { started: number; notStarted: number; failures: number; fallbacks: number }) => {
            summary.tasksStarted += r.started;
            summary.failures += r.failures;
            summary.notStarted += r.notStarted;
            fallbacks += r.fallbacks;
        };

        if (o.step?.start) await o.step.start(kit, items, add);
        else if (jobs.length > 0) {
            (await send(s.queueUrl, jobs)).forEach((why, i) => (why ? Object.assign(items[i], { why: `not queued: ${why}`, retry: true }) : summary.queued++));
        }
        const E = Date.now();
        (jobs.length > 0 || tick) && log({ msg: tick ? "reconcile" : "queued", count: summary.queued });
        const decide = (item?: any) => o.step!.decide!(kit, summary, add, item);
        o.step?.decide && (summary.queued > 0 || tick) && (await (o.step.gate ? o.step.gate(kit, E, tick, decide) : decide()));

        const dead = items.filter((x) => x.why && (!records || !x.retry || (s.intakeMaxReceives > 0 && x.n >= s.intakeMaxReceives)));
        const reason = (x: (typeof items)[number]) => x.why + (records && x.retry ? ` (gave up after ${x.n} deliveries)` : "");
        const why = await send(s.deadLetterQueueUrl, dead.map((x) => ({ ...x.job, reason: reason(x), jobId: launcherJobId(x.job) })));
        items.forEach((x) => x.why && !dead.includes(x) && retry.add(x.id));
        dead.forEach((x, i) => {
            if (why[i]) return void (records ? retry.add(x.id) : lost.push(`${x.job.key}: ${x.why}; ${why[i]}`));
            summary.deadLettered++;
            log({ msg: "dead-lettered", ...x.job, reason: reason(x) });
            failed.push({ job: x.job, reason: reason(x), failureClass: s.mode === "per-job" ? "not-started" : "launcher", attempts: x.n });
        });
        records && (summary.batchItemFailures = [...retry].map((itemIdentifier) => ({ itemIdentifier })));
        await publish(failed);
        fallbacks > 0 && (summary.spotFallbacks = fallbacks);
        const record = launcherMetrics(s, { TasksNotStarted: summary.notStarted, SpotFallbacks: fallbacks });
        s.mode !== "service" && (jobs.length > 0 || tick) && (o.metrics ?? ((r) => process.stdout.write(JSON.stringify(r) + "\n")))(record);
        log({ msg: "summary", ...summary, lost });
        if (lost.length > 0) throw new Error(`${lost.length} job(s) neither started nor dead-lettered: ${lost.join("; ")}`);
        return summary;
    };
}

/**
 * Drain's and service's gate: runs `decide` so that a decision begins after the jobs were queued at `E`, at most one a
 * second across every invocation, with `db` one UpdateItem on STATE_TABLE's item `gate`. A conditional UpdateItem
 * claims the current 1-second window (`win`) with a lease (`lease` = now + LEASE_MS, `began` = now), only when the
 * window is newer and no lease is held (ReturnValues: the item, with drain's `starts` ledger); the winner decides and
 * releases the lease (with the new ledger) if it still holds it. A loser whose window was claimed at or after `E` is
 * done: that decision sees its jobs. Else it claims the next window's turn (`nxt`, a conditional write): the invocation
 * that gets it sleeps until that window and claims it; the others are done, as that decision begins after their
 * enqueue. Past GATE_BUDGET_MS, the reconcile schedule decides. When the table fails, the jobs stay queued and only
 * the reconcile decides (uncoordinated, logged). (Only the drain and service packages hold it.)
 */
export async function gated(kit: LaunchKit, E: number, tick: boolean, decide: (item?: any) => Promise<string | void>): Promise<unknown> {
    const { s, log, text, sleep } = kit;
    const num = (values: Record<string, number>) => Object.fromEntries(Object.entries(values).map(([k, v]) => [k, { N: String(v) }]));
    const db = async (input: object): Promise<any> => {
        const D: typeof import("@aws-sdk/client-dynamodb") = require("@aws-sdk/client-dynamodb");
        return (kit.dynamodb ??= new D.DynamoDBClient({})).send(new D.UpdateItemCommand({ TableName: s.stateTable, Key: { id: { S: "gate" } }, ...input } as any));
    };
    const ccf = (e: any) => e?.name === "ConditionalCheckFailedException";
    for (let now = Date.now(), w = Math.floor(now / 1000); s.stateTable; now = Date.now(), w = Math.floor(now / 1000)) {
        const claim = { UpdateExpression: "SET win = :w, lease = :l, began = :n", ConditionExpression: "attribute_not_exists(win) OR (win < :w AND lease < :n)", ReturnValues: "ALL_NEW" };
        const out = await db({ ...claim, ExpressionAttributeValues: num({ ":w": w, ":l": now + LEASE_MS, ":n": now }), ReturnValuesOnConditionCheckFailure: "ALL_OLD" }).catch((e) => ({ e }));
        if (!out.e) {
            const starts = await decide(out.Attributes);
            const release = { UpdateExpression: `SET lease = :z${starts === undefined ? "" : ", starts = :s"}`, ConditionExpression: "began = :n" };
            return db({ ...release, ExpressionAttributeValues: { ...num({ ":z": 0, ":n": now }), ...(starts !== undefined && { ":s": { S: starts } }) } }).catch((e) => log({ msg: "lease not released", reason: text(e) }));
        }
        const e = out.e, began = +(e.Item?.began?.N ?? 0);
        if (ccf(e) && began >= E) return log({ msg: "decided by another", began });
        const turn = ccf(e) && Date.now() < E + GATE_BUDGET_MS && (await db({ UpdateExpression: "SET nxt = :x", ConditionExpression: "attribute_not_exists(nxt) OR nxt < :x", ExpressionAttributeValues: num({ ":x": w + 1 }) }).then(() => true, (e) => e));
        if (ccf(turn)) return log({ msg: "decided next window", began });
        if (turn !== true) return log({ msg: "not decided", reason: text(turn || e), decides: tick && !ccf(turn || e) }), tick && !ccf(turn || e) ? decide() : undefined;
        await sleep((w + 1) * 1000 - Date.now() + 20);
    }
    return decide();
}

/**
 * Per-job mode's part: one RunTask per job, paced to PER_JOB_STARTS_PER_SECOND ÷ INTAKE_CONCURRENCY a second (the
 * mapping runs that many invocations at once, so the worker stays within its share of RunTask's rate). A job whose
 * task was not started is left with the reason: retryable when RunTask was throttled (the intake delivers it again).
 */
export async function perJobStarts({ s, runTasks, sleep }: LaunchKit, items: IntakeItem[], add: AddStarts): Promise<void> {
    for (let i = 0, at = Date.now(); i < items.length; i++, at = Math.max(at, Date.now()) + (1000 * s.intakeConcurrency) / PER_JOB_STARTS_PER_SECOND) {
        at > Date.now() && (await sleep(at - Date.now()));
        const r = await runTasks(1, items[i].job);
        add(r);
        r.notStarted > 0 && Object.assign(items[i], { why: `task could not be started: ${r.reason}`, retry: /throttl|rate exceeded|too many requests/i.test(r.reason) });
    }
}

/**
 * Per-job mode's routed events ({@link taskStateFailures}): the jobs of tasks that stopped without settling them are
 * dead-lettered first, and a send that fails throws (Lambda retries the event, then its on-failure record reaches the
 * DLQ); answers the jobs to publish `Job Failed` for.
 */
export async function perJobRouted({ s, send }: LaunchKit, event: any): Promise<FailedJob[] | undefined> {
    const routed = taskStateFailures(event, s);
    const dead = (routed ?? []).filter((f) => f.failureClass === "task-stopped").map((f) => ({ ...f.job, jobId: launcherJobId(f.job), reason: f.reason }));
    const unsent = dead.length > 0 ? (await send(s.deadLetterQueueUrl, dead)).filter(Boolean) : [];
    if (unsent.length > 0) throw new Error(`${unsent.length} stopped task job(s) not dead-lettered: ${unsent.join("; ")}`);
    return routed;
}

/**
 * Drain mode's decision (behind the gate, at most one a second): live tasks = DescribeClusters' runningTasksCount +
 * pendingTasksCount (ECS counts tasks in RUNNING and in PENDING only) + this worker's starts of the last LEDGER_S
 * seconds (the state item's `starts`, "second:count ..."; a new task is PROVISIONING, in neither count, until ECS has
 * placed it); tasks still starting = pendingTasksCount + the starts of the last PENDING_S seconds; the backlog from
 * GetQueueAttributes (at least the jobs this invocation queued). Starts {@link tasksToStart} (slots per task:
 * WORKER_CONCURRENCY), at most MAX_STARTS, and answers the ledger with its own starts added. Its cost is a constant
 * three calls plus ⌈starts / 10⌉ RunTask, whatever MAX_TASKS. A failed count starts nothing (the reconcile decides).
 */
export async function drainDecision({ s, sqs, ecs, SQS, ECS, call, log, text, runTasks }: LaunchKit, summary: LaunchSummary, add: AddStarts, item?: any): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const starts = String(item?.starts?.S ?? "").split(" ").map((x) => x.split(":").map(Number)).filter(([t, n]) => n > 0 && now - t < LEDGER_S);
    const recent = (seconds: number) => starts.reduce((sum, [t, n]) => sum + (now - t < seconds ? n : 0), 0);
    let toStart = 0;
    try {
        const [{ clusters }, attrs] = await Promise.all([
            call("DescribeClusters", () => ecs.send(new ECS.DescribeClustersCommand({ clusters: [s.cluster] }))),
            call("GetQueueAttributes", () => sqs.send(new SQS.GetQueueAttributesCommand({ QueueUrl: s.queueUrl, AttributeNames: ["ApproximateNumberOfMessages"] }))),
        ]);
        const c = clusters?.[0];
        if (!c) throw new Error(`no cluster ${s.cluster}`);
        const pending = (c.pendingTasksCount ?? 0) + recent(PENDING_S), running = (c.runningTasksCount ?? 0) + (c.pendingTasksCount ?? 0) + recent(LEDGER_S);
        const backlog = Math.max(summary.queued, Number(attrs.Attributes?.ApproximateNumberOfMessages) || 0);
        toStart = Math.min(MAX_STARTS, tasksToStart(s.maxTasks, running, pending, backlog, s.workerConcurrency));
        log({ msg: "drain decision", running, pending, backlog, slots: s.workerConcurrency, maxTasks: s.maxTasks, toStart });
        for (let n = toStart; n > 0 && summary.notStarted === 0; n -= 10) add(await runTasks(Math.min(10, n)));
    } catch (e) {
        log({ msg: "tasks not counted", reason: text(e) });
    }
    summary.notStarted = toStart - summary.tasksStarted;
    return [...starts, [now, summary.tasksStarted]].filter(([, n]) => n > 0).map((x) => x.join(":")).join(" ");
}

/**
 * Service mode's wake (behind the gate, at most one a second): raise the service's desired count to what the backlog
 * needs (`ceil(backlog / BACKLOG_PER_TASK)`, ≤ MAX_TASKS, never lowered); a failure is logged (the jobs are queued; the
 * service's own scaling still starts tasks, only later).
 */
export async function serviceWake({ s, sqs, ecs, SQS, ECS, call, log, text }: LaunchKit, summary: LaunchSummary): Promise<void> {
    if (!s.serviceName) return;
    try {
        const AttributeNames = ["ApproximateNumberOfMessages" as const, "ApproximateNumberOfMessagesNotVisible" as const];
        const q = (await call("GetQueueAttributes", () => sqs.send(new SQS.GetQueueAttributesCommand({ QueueUrl: s.queueUrl, AttributeNames })))).Attributes ?? {};
        const backlog = Math.max(summary.queued, +(q.ApproximateNumberOfMessages ?? 0) + +(q.ApproximateNumberOfMessagesNotVisible ?? 0));
        const svc = (await call("DescribeServices", () => ecs.send(new ECS.DescribeServicesCommand({ cluster: s.cluster, services: [s.serviceName] })))).services?.[0];
        const desired = svc?.desiredCount ?? 0, wanted = Math.min(s.maxTasks, Math.ceil(backlog / s.backlogPerTask));
        log({ msg: "wake decision", service: s.serviceName, found: !!svc, backlog, desired, wanted });
        svc && wanted > desired && (await call("UpdateService", () => ecs.send(new ECS.UpdateServiceCommand({ cluster: s.cluster, service: s.serviceName, desiredCount: wanted }))));
        svc && (summary.desiredCount = Math.max(desired, wanted));
    } catch (e) {
        log({ msg: "wake failed", reason: text(e) });
    }
}

/** Each launch mode's part of the handler (tests and {@link launcherFactory}; the component uses each mode's own factory). */
export function launchStep(mode: LaunchMode): LaunchStep {
    return mode === "per-job" ? { start: perJobStarts, routed: perJobRouted } : { decide: mode === "drain" ? drainDecision : serviceWake, gate: gated };
}

/**
 * The `callbackFactory` of the component's `aws.lambda.CallbackFunction`: runs once per Lambda cold start, reads the
 * settings from the environment, creates the SDK clients and returns the handler.
 */
export function launcherFactory(): LauncherHandler {
    const s = parseLauncherSettings(process.env);
    return createHandler(s, undefined, { step: launchStep(s.mode) });
}

/**
 * The component's `callbackFactory` in drain mode: {@link launcherFactory} with drain's part only, so that the
 * serialized package holds no other mode's code (it is capped at 32 KiB).
 */
export function drainLauncherFactory(): LauncherHandler {
    return createHandler(parseLauncherSettings(process.env), undefined, { step: { decide: drainDecision, gate: gated } });
}

/** The component's `callbackFactory` in per-job mode (its part only, see {@link drainLauncherFactory}). */
export function perJobLauncherFactory(): LauncherHandler {
    return createHandler(parseLauncherSettings(process.env), undefined, { step: { start: perJobStarts, routed: perJobRouted } });
}

/** The component's `callbackFactory` in service mode (its part only, see {@link drainLauncherFactory}). */
export function serviceLauncherFactory(): LauncherHandler {
    return createHandler(parseLauncherSettings(process.env), undefined, { step: { decide: serviceWake, gate: gated } });
}
