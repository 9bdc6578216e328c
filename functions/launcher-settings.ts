/**
 * The contract between the LambdaEcsWorker component and its launcher Lambda: the environment variables the
 * component sets on the function. Runtime values reach the launcher only through these (never through `.get()`).
 */

/**
 * This module is serialized by value into the launcher's `__index.js`, also when the component runs from another
 * project's `node_modules` (where Pulumi would otherwise capture a module by reference, as
 * `require("lambda-ecs-worker/dist/functions/launcher-settings.js")`, which the launcher's archive does not hold).
 * Pulumi's closure serializer honours this marker (`deploymentOnlyModule`: a module not required at run time).
 */
export const deploymentOnlyModule = true;

/**
 * How the launcher gets work done once a job is queued (an enum: `LaunchMode.Drain` or its value `"drain"`; Pulumi's
 * component schema lists the values).
 */
export const LaunchMode = {
    /** Start just enough tasks (up to `maxTasks`) to drain the queue; each task exits when the queue is empty. */
    Drain: "drain",
    /** One task per job, with the job passed as container environment overrides (`JOB_BUCKET`, `JOB_KEY`). */
    PerJob: "per-job",
    /** Start no task: an ECS service scaled on queue depth (down to zero) consumes the queue. */
    Service: "service",
} as const;
/** One of {@link LaunchMode}'s values. */
export type LaunchMode = (typeof LaunchMode)[keyof typeof LaunchMode];

/** Every {@link LaunchMode}, in the order error messages list them (the launcher and the component both check against it). */
export const LAUNCH_MODES: readonly LaunchMode[] = ["drain", "per-job", "service"];

/** Names of the launcher's environment variables. */
export const LAUNCHER_ENV = {
    queueUrl: "QUEUE_URL",
    deadLetterQueueUrl: "DLQ_URL",
    cluster: "CLUSTER",
    taskDefinition: "TASK_DEFINITION",
    containerName: "CONTAINER_NAME",
    /** Comma-separated subnet ids. */
    subnets: "SUBNETS",
    /** Comma-separated security group ids. */
    securityGroups: "SECURITY_GROUPS",
    /** `ENABLED` or `DISABLED`. */
    assignPublicIp: "ASSIGN_PUBLIC_IP",
    /** JSON array of `{ capacityProvider, weight, base? }`. */
    capacityProviderStrategy: "CAPACITY_PROVIDER_STRATEGY",
    maxTasks: "MAX_TASKS",
    /** A {@link LaunchMode}. */
    launchMode: "LAUNCH_MODE",
    inputPrefix: "INPUT_PREFIX",
    /** JSON array of suffixes, matched case-insensitively. */
    inputSuffixes: "INPUT_SUFFIXES",
    /** Where outputs go: "" = next to the input. */
    outputPrefix: "OUTPUT_PREFIX",
    /**
     * JSON array of the suffixes the worker writes (its `outputSuffixes` and `.error.json`), matched
     * case-insensitively: keys ending in one are never jobs. Unset: {@link OUTPUT_SUFFIXES}.
     */
    outputSuffixes: "OUTPUT_SUFFIXES",
    /** The `startedBy` the launcher stamps on its tasks and counts running tasks by. */
    startedBy: "STARTED_BY",
    /**
     * Job events (issue #11): the bus the launcher publishes `Job Failed` to (name or ARN, as PutEvents'
     * `EventBusName`), for jobs that end in the launcher: per-job start failures routed to it from the ECS
     * "TaskFailedToStart" rule, and its own dead-lettered invocations routed to it from Lambda's failure event (see
     * {@link ROUTED_EVENTS}). Always set by the component (`"default"` for the account's default bus).
     */
    eventBusName: "EVENT_BUS_NAME",
    /** The events' `Source` (the IAM policy allows PutEvents with exactly this source): `lambda-ecs-worker.<name>`. */
    eventSource: "EVENT_SOURCE",
    /** `detail.worker` of the events and the `Worker` dimension of the metrics: the component's name. */
    workerName: "WORKER_NAME",
    /** CloudWatch namespace of the launcher's EMF metrics ({@link METRICS}). */
    metricsNamespace: "METRICS_NAMESPACE",
    /**
     * Service mode: the ECS service's name (in `CLUSTER`) the launcher wakes on each upload: DescribeServices, then
     * UpdateService raising desiredCount to `ceil(backlog / BACKLOG_PER_TASK)`, at most `MAX_TASKS`, never lowering it.
     */
    serviceName: "SERVICE_NAME",
    /** Service mode: jobs one task may have waiting (the scaling target, acceptableWaitSeconds / expectedJobSeconds). */
    backlogPerTask: "BACKLOG_PER_TASK",
    /**
     * Drain and per-job: `"true"` retries a RunTask whose capacity strategy includes FARGATE_SPOT on FARGATE after a
     * Spot capacity failure; `"false"` does not. Set only when the strategy includes FARGATE_SPOT.
     */
    spotFallback: "SPOT_FALLBACK",
    /**
     * Drain and service: the DynamoDB table that coordinates task-start decisions across concurrent invocations (the
     * component's `${name}-launcher-state`): at most one decision per second, never two at once, and drain's ledger of
     * recent starts. "" = none: every invocation decides on its own, uncoordinated.
     */
    stateTable: "STATE_TABLE",
    /** Drain: jobs one task takes at once (the worker's WORKER_CONCURRENCY): a task counts as that many slots. */
    workerConcurrency: "WORKER_CONCURRENCY",
    /**
     * The intake queue's maxReceiveCount: on a record's last allowed receive the launcher dead-letters the jobs it
     * could not queue (or start) itself, with the reason and a `Job Failed`, instead of retrying it.
     */
    intakeMaxReceives: "INTAKE_MAX_RECEIVE_COUNT",
    /** The intake mapping's maximum concurrency: per-job mode paces its RunTask calls to its share of the budget. */
    intakeConcurrency: "INTAKE_CONCURRENCY",
} as const;

/** The events' `detail-type`s (the worker's and the launcher's; users' rules match on them). */
export const JOB_EVENT_DETAIL_TYPES = { succeeded: "Job Succeeded", failed: "Job Failed" } as const;

/**
 * Events the component routes to the launcher (beside S3 notifications and drain's "Scheduled Event"), on which it
 * publishes `Job Failed` and never throws:
 *  - `ecsStartFailure`: ECS's "ECS Task State Change" (source `aws.ecs`, stopCode TaskFailedToStart) of a per-job
 *    task, from the rule `${name}-start-failures` (whose other target dead-letters the job). Job: the container
 *    override's JOB_BUCKET/JOB_KEY; reason: `detail.stoppedReason`; failureClass `not-started`; attempts 1.
 *  - `ecsTaskStopped`: the same event of a per-job task that stopped with any other stop code (the worker exited, was
 *    OOM-killed, or was killed after `stopTimeout`), from the rule `${name}-task-stopped`. When the worker container's
 *    exit code is not one of {@link SETTLED_EXIT_CODES} (or it has none), the job is not settled: the launcher sends
 *    `{ bucket, key, etag, jobId, reason }` to the dead-letter queue (reason: ECS's `stoppedReason`, the stop code, the
 *    container's exit code and its `reason`, e.g. `OutOfMemoryError: ...`), then publishes `Job Failed`, failureClass
 *    `task-stopped`, attempts 1; a settled one causes nothing (logged). A failed send fails the invocation (Lambda
 *    retries it; then its on-failure record is dead-lettered).
 *  - `launcherFailure`: Lambda's on-failure destination event of the launcher itself (source `lambda`, the record in
 *    `detail`; the destination is the event bus, and the rule `${name}-launcher-failures` dead-letters the record),
 *    from the rule `${name}-launcher-failure-events`, which matches only records whose `requestPayload` has no
 *    `source` (an S3 notification, not an EventBridge event: so a failure to handle this event can never loop). Jobs: `extractJobs(detail.requestPayload)`;
 *    reason: `detail.responsePayload.errorMessage`; failureClass `launcher`; attempts
 *    `detail.requestContext.approximateInvokeCount`.
 */
export const ROUTED_EVENTS = {
    ecsStartFailure: { source: "aws.ecs", detailType: "ECS Task State Change", failureClass: "not-started" },
    ecsTaskStopped: { source: "aws.ecs", detailType: "ECS Task State Change", failureClass: "task-stopped" },
    launcherFailure: { source: "lambda", detailType: "Lambda Function Invocation Result - Failure", failureClass: "launcher" },
} as const;

/**
 * The per-job worker's exit codes (worker-image/src/exit-codes.ts, a test keeps both equal): whether the worker in a
 * per-job task settled its job. 0: ended with its outputs, or nothing to do (its input was replaced or deleted); 3:
 * failed, and the worker wrote its error report, dead-lettered it and published `Job Failed`; 4: stopped (SIGTERM)
 * before it finished, and the worker dead-lettered it (and published `Job Failed`). Any other exit code (1 crash, 2
 * configuration error, 137 SIGKILL or out of memory, 143 forced exit after SIGTERM, or a dead-letter send that
 * failed) or none at all: the job is not settled, and the launcher ends it when ECS reports the task stopped
 * ({@link ROUTED_EVENTS} `ecsTaskStopped`).
 */
export const WORKER_EXIT_CODES = { done: 0, failed: 3, stopped: 4 } as const;

/** The exit codes of a per-job worker container that settled its job (see {@link WORKER_EXIT_CODES}). */
export const SETTLED_EXIT_CODES: readonly number[] = [WORKER_EXIT_CODES.done, WORKER_EXIT_CODES.failed, WORKER_EXIT_CODES.stopped];

/**
 * The metrics (CloudWatch Embedded Metric Format lines) the worker and the launcher write, which the component's
 * dashboard and alarms read. The worker's names are in worker-image/src/metrics.ts (a test keeps both equal).
 */
export const METRICS = {
    /** Default of METRICS_NAMESPACE (the component sets it to this). */
    namespace: "LambdaEcsWorker",
    /** The dimension every metric has: WORKER_NAME. */
    workerDimension: "Worker",
    /** The worker's, per job. */
    jobSeconds: "JobSeconds",
    jobsSucceeded: "JobsSucceeded",
    jobsFailed: "JobsFailed",
    /**
     * The launcher's: tasks it wanted but could not start after its retries (drain: per decision; per-job: one per
     * job), per Worker. The component's "tasks fail to start" alarm reads it.
     */
    tasksNotStarted: "TasksNotStarted",
    /** The launcher's: RunTask starts retried on FARGATE after a Spot capacity failure, per Worker. */
    spotFallbacks: "SpotFallbacks",
} as const;

/** The failure report's suffix: every worker may write it, whatever its declared outputs. */
export const ERROR_REPORT_SUFFIX = ".error.json";

/** POV-Ray's outputs: the default of the component's `outputSuffixes`. */
export const DEFAULT_OUTPUT_SUFFIXES = [".png", ".log"] as const;

/** Suffixes of the files the default (POV-Ray) worker writes; the launcher's ignore-list when OUTPUT_SUFFIXES is unset. */
export const OUTPUT_SUFFIXES = [...DEFAULT_OUTPUT_SUFFIXES, ERROR_REPORT_SUFFIX] as const;

/** Every suffix a worker declaring `outputSuffixes` writes: those, then the failure report (once). */
export function writtenSuffixes(outputSuffixes: readonly string[]): string[] {
    return [...new Set([...outputSuffixes, ERROR_REPORT_SUFFIX])];
}
