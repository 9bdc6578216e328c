/**
 * The arguments of `LambdaEcsWorker`: their types with TSDoc and defaults, the defaults in one table
 * ({@link LAMBDA_ECS_WORKER_DEFAULTS}), and {@link resolveArgs}, the one place they are applied. Validation and the
 * constructor both read the resolved object.
 */
import * as pulumi from "@pulumi/pulumi";

import { LaunchMode } from "../../functions/launcher-settings";

/** The platform of the worker's image, which sets the task's CPU architecture (an enum: `Platform.LinuxAmd64` or its value). */
export const Platform = {
    /** x86_64 (Fargate `X86_64`); the only one Fargate Spot runs. */
    LinuxAmd64: "linux/amd64",
    /** 64-bit ARM (Fargate `ARM64`, Graviton): on-demand `FARGATE` capacity only. */
    LinuxArm64: "linux/arm64",
} as const;
/** One of {@link Platform}'s values. */
export type Platform = (typeof Platform)[keyof typeof Platform];

/** Which Fargate capacity the tasks run on (an enum: `CapacityKind.FargateSpot` or its value `"FARGATE_SPOT"`). */
export const CapacityKind = {
    /** On-demand Fargate. */
    Fargate: "FARGATE",
    /** Fargate Spot: up to 70 % cheaper, interruptible with two minutes' notice (the job goes back to the queue). */
    FargateSpot: "FARGATE_SPOT",
    /** Both, by the weights `fargateWeight` and `spotWeight`, after `fargateBase` on-demand tasks. */
    Mixed: "MIXED",
} as const;
/** One of {@link CapacityKind}'s values. */
export type CapacityKind = (typeof CapacityKind)[keyof typeof CapacityKind];

/** Fargate capacity: on-demand, Spot, or a weighted mix of both. */
export interface LambdaEcsWorkerCapacity {
    /** On-demand (`FARGATE`), Spot (`FARGATE_SPOT`) or both (`MIXED`, by the weights below). */
    kind: CapacityKind;
    /**
     * With `MIXED`: relative weight of on-demand FARGATE tasks, 0-1000.
     * @default - none: required with `MIXED`, not allowed otherwise
     */
    fargateWeight?: number;
    /**
     * With `MIXED`: relative weight of FARGATE_SPOT tasks, 0-1000 (not both 0).
     * @default - none: required with `MIXED`, not allowed otherwise
     */
    spotWeight?: number;
    /**
     * With `MIXED`: tasks always placed on on-demand FARGATE before the weights apply, 0-100000.
     * @default 0
     */
    fargateBase?: number;
}

/** Where the worker's container image comes from: built from a Dockerfile, or prebuilt. Exactly one of the two. */
export interface LambdaEcsWorkerImageArgs {
    /**
     * Docker build context (a folder with a Dockerfile), built and pushed to a new ECR repository with
     * `awsx.ecr.Image`. Exclusive with `imageUri`. The Dockerfile starts `ARG RUNTIME_IMAGE` and `FROM
     * ${RUNTIME_IMAGE}`: the worker runtime base image, which the component builds first (see `buildRuntimeImage`).
     * @default - none: one of `context` or `imageUri` is required
     */
    context?: pulumi.Input<string>;
    /**
     * With `context`: build the worker runtime base image (the job runtime and the command processor, no tool) from
     * this package's `worker-image/Dockerfile.runtime`, push it to the same ECR repository, and pass its URI to the
     * worker's build as the build arg `RUNTIME_IMAGE`. false: the Dockerfile does not build on the runtime base.
     * @default true
     */
    buildRuntimeImage?: boolean;
    /**
     * Path of the Dockerfile, when it is not `<context>/Dockerfile`. Only with `context`.
     * @default - `Dockerfile` in the context
     */
    dockerfile?: pulumi.Input<string>;
    /**
     * Platform of the image: `linux/amd64` or `linux/arm64`. It sets the task's CPU architecture, and with `context`
     * the platform the image is built for.
     * @default "linux/amd64"
     */
    platform?: Platform;
    /**
     * A prebuilt image to run, e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com/render:1.2`. Exclusive with
     * `context`. When it is in ECR, the execution role may pull from exactly that repository.
     * @default - none: one of `context` or `imageUri` is required
     */
    imageUri?: pulumi.Input<string>;
}

export interface LambdaEcsWorkerArgs {
    /** The worker's container image: `{ context }` to build one (optionally `dockerfile`, `platform`), or `{ imageUri }`. */
    image: LambdaEcsWorkerImageArgs;

    /**
     * An existing bucket to take inputs from and write outputs to. Exclusive with `forceDestroyBucket`.
     * Note: S3 keeps one notification configuration per bucket; this component's replaces any other on that bucket.
     * @default - a new private, encrypted, TLS-only bucket
     */
    bucketName?: pulumi.Input<string>;
    /**
     * Let `pulumi destroy` delete the bucket it created even when it still holds objects. Only without `bucketName`.
     * @default false
     */
    forceDestroyBucket?: boolean;
    /**
     * ARN of the KMS key an existing `bucketName` bucket encrypts with (SSE-KMS): the task role may then use exactly
     * this key (`kms:Decrypt` to read inputs, `kms:GenerateDataKey` to write outputs), only through S3 in this region.
     * Without it, GetObject/PutObject of SSE-KMS objects fail with AccessDenied. A key ARN (`...:key/<id>`), not an
     * alias. Only with `bucketName` (the component's own bucket uses SSE-S3).
     * @default - none: the bucket uses SSE-S3 or no KMS key
     */
    bucketKmsKeyArn?: pulumi.Input<string>;
    /**
     * Only keys under this prefix are jobs, e.g. `"inbox/"`.
     * @default "" (the whole bucket)
     */
    inputPrefix?: string;
    /**
     * Key suffixes that are jobs. S3's notification filter compares them case-sensitively (list `".ZIP"` too to
     * accept both); the launcher then matches case-insensitively. None may end with another, nor overlap an output
     * suffix (`outputSuffixes` and `.error.json`: neither may end with the other), so that outputs can never
     * retrigger the launcher. A `.zip` input is unpacked for the processor; any other is downloaded as one file.
     * @default [".zip"]
     */
    inputSuffixes?: string[];
    /**
     * Where outputs go: `""` writes `<base>.png`, `<base>.log` and, on failure, `<base>.error.json` next to the
     * input; a prefix such as `"renders/"` writes them under it, keeping the input's path below `inputPrefix`.
     * Outputs never carry an input suffix, so they can never retrigger the launcher.
     * @default "" (next to the input)
     */
    outputPrefix?: string;
    /**
     * Suffixes of the files the worker writes for a job, each `<base><suffix>` (e.g. `[".mp4", ".log"]`); the
     * failure report `.error.json` is always added. The task role may write (PutObject) exactly these under the
     * output location, the launcher ignores uploads ending in them, and the worker gets them as `OUTPUT_SUFFIXES`
     * (the command processor uploads only files ending in one).
     * @default [".png", ".log"] (POV-Ray's)
     */
    outputSuffixes?: string[];

    /**
     * How jobs are run. `"drain"`: the launcher starts just enough tasks (up to `maxTasks`), each drains the queue
     * and exits. `"per-job"`: one task per job, the job passed as container environment overrides
     * (`JOB_BUCKET`, `JOB_KEY`). `"service"`: an ECS service scaled on queue depth between 0 and `maxTasks`.
     * @default "drain"
     */
    launchMode?: LaunchMode;
    /**
     * Cap on concurrently running tasks: in `"drain"` mode the launcher never starts more, in `"service"` mode the
     * service never scales beyond it. `"per-job"` mode starts one task per upload, uncapped.
     * @default 10
     */
    maxTasks?: number;
    /**
     * Reserved concurrency of the launcher Lambda: 0 reserves none; otherwise at least `intakeConcurrency` + 1 (the
     * intake's invocations plus one for the reconcile schedule and routed events: Lambda throttles an event source
     * mapping whose maximum concurrency exceeds the function's reserved concurrency), at most 1000. It guarantees the
     * launcher that much of the account's concurrency. It no longer serializes anything: task-start decisions are
     * coordinated through the `${name}-launcher-state` table whatever the concurrency (never more than `maxTasks`).
     * @default 0 (none reserved; `intakeConcurrency` still bounds the launcher's invocations from the intake)
     */
    launcherConcurrency?: number;
    /**
     * Maximum concurrent launcher invocations of the intake (the SQS event source mapping's
     * `ScalingConfig.MaximumConcurrency`), 2-1000: how fast uploads are queued (each invocation queues a batch of up
     * to `intakeBatchSize` in a few tens of milliseconds). In `launchMode: "per-job"` these invocations share the
     * worker's RunTask budget (10 starts a second), each starting at 10 ÷ `intakeConcurrency` a second.
     * @default 5
     */
    intakeConcurrency?: number;
    /**
     * Uploads per launcher invocation from the intake (the event source mapping's `BatchSize`), 1-10000; the mapping
     * waits up to 1 s to fill a batch. In `launchMode: "per-job"`, `intakeBatchSize` × `intakeConcurrency` ≤ 400, so
     * that an invocation starts its batch (at 10 ÷ `intakeConcurrency` a second) within 40 s of its 60 s timeout.
     * @default 10
     */
    intakeBatchSize?: number;

    /**
     * In `launchMode: "drain"`, minutes between the launcher's scheduled "reconcile" runs, 1-60: the same task-start
     * decision with no new upload, so jobs still get a task after a failed start, a Spot interruption, or an upload
     * that arrived just as the last task was exiting.
     * @default 1
     */
    reconcileIntervalMinutes?: number;

    /** Task CPU units; one of 256, 512, 1024, 2048, 4096, 8192, 16384. @default 1024 */
    cpu?: number;
    /** Task memory (MiB); must be one of Fargate's sizes for `cpu`. @default 2048 */
    memory?: number;
    /** Container command, overriding the image's CMD. @default - the image's CMD */
    command?: pulumi.Input<pulumi.Input<string>[]>;
    /**
     * Extra container environment variables, e.g. the worker's tuning knobs `WORKER_CONCURRENCY` or
     * `MAX_INPUT_BYTES`. They may not redefine the variables this component sets (listed in `RESERVED_ENVIRONMENT`:
     * the queues, region, prefixes, timeouts, scratch dir, and the one-shot job's `JOB_BUCKET`/`JOB_KEY`).
     * @default {}
     */
    environment?: Record<string, pulumi.Input<string>>;
    /** Task ephemeral storage in GiB, 21-200 (the scratch space for inputs and renders). @default 21 */
    ephemeralStorageGiB?: number;
    /**
     * Seconds between SIGTERM and SIGKILL when a task is stopped, 2-120; passed to the worker as
     * `WORKER_STOP_TIMEOUT_SECONDS`: a job whose render has finished keeps uploading its outputs until 15 s before the
     * SIGKILL, and the worker exits 5 s before it at the latest.
     * @default 120
     */
    stopTimeout?: number;
    /**
     * Hard limit on one job's processor run in seconds, 1-43200; passed as `JOB_TIMEOUT_SECONDS`. In the queue modes
     * (drain, service) at most 39600: SQS keeps a received message hidden at most 12 h from its receipt, and an hour
     * is kept for the download, the uploads and the heartbeats.
     * @default 900
     */
    jobTimeoutSeconds?: number;
    /**
     * Fargate capacity: `{ kind: "FARGATE" }`, `{ kind: "FARGATE_SPOT" }`, or
     * `{ kind: "MIXED", fargateWeight, spotWeight, fargateBase? }`.
     * @default { kind: "FARGATE" }
     */
    capacity?: LambdaEcsWorkerCapacity;
    /** Subnets the tasks run in. @default - the default VPC's subnets */
    subnetIds?: pulumi.Input<pulumi.Input<string>[]>;
    /**
     * VPC of `subnetIds`, needed to create the egress-only security group when `subnetIds` is given without
     * `securityGroupIds`. @default - the default VPC
     */
    vpcId?: pulumi.Input<string>;
    /** Security groups of the tasks. @default - a new egress-only security group */
    securityGroupIds?: pulumi.Input<pulumi.Input<string>[]>;
    /**
     * Give tasks a public IP (needed to reach ECR, S3 and SQS from a public subnet without NAT or endpoints).
     * @default - true with the default VPC's subnets, false with `subnetIds`
     */
    assignPublicIp?: boolean;
    /** Retention of the task and launcher logs, in days; one of CloudWatch's values (1, 3, 5, 7, 14, 30, ...). @default 14 */
    logRetentionDays?: number;
    /**
     * Enable CloudWatch Container Insights on the cluster (the dashboard's running tasks; required in service mode,
     * whose scaling reads its RunningTaskCount). @default true
     */
    containerInsights?: boolean;

    /**
     * Seconds a received job stays hidden from other workers (the worker extends it while it runs), 30-43200.
     * @default 300
     */
    visibilityTimeoutSeconds?: number;
    /**
     * Attempts of a job, 1-999: a job that failed (transiently, or past `jobTimeoutSeconds`) or whose task stopped
     * without finishing it (SIGKILL, out of memory) this many times is dead-lettered by the worker, with its reason, an
     * error report and a `Job Failed` event. Interruptions (SIGTERM: Spot reclaim, scale-in, deploy) do not count. The
     * work queue's redrive policy moves a message after `maxReceiveCount + 1` receives, a safety net only.
     * @default 3
     */
    maxReceiveCount?: number;
    /** Seconds a message stays in the work queue, 60-1209600. @default 345600 (4 days) */
    messageRetentionSeconds?: number;
    /**
     * Seconds a message stays in the dead-letter queue, 60-1209600, more than `messageRetentionSeconds` (SQS keeps a
     * redriven message's original enqueue time). @default 1209600 (14 days)
     */
    deadLetterRetentionSeconds?: number;

    /**
     * Actions (e.g. SNS topic ARNs) of the alarms: a job landed in the dead-letter queue; a job has waited longer
     * than `oldestJobAlarmSeconds` (tasks can't start or can't reach the queue).
     * @default [] (the alarms only show in CloudWatch)
     */
    alarmActions?: pulumi.Input<pulumi.Input<string>[]>;
    /** Age in seconds of the oldest waiting job that raises the stuck-queue alarm, 60-1209600. @default 3600 */
    oldestJobAlarmSeconds?: number;

    /**
     * The EventBridge bus the job events go to: one `Job Succeeded` or `Job Failed` per job (source `eventSource`,
     * detail `{ worker, bucket, key, outputs, seconds, attempts, reason?, failureClass? }`), and where Lambda puts the
     * launcher's failed invocations (its on-failure destination; a rule hands them to the dead-letter queue). A name
     * or ARN of a bus in this account and region. The task role (and the launcher role) may put events on exactly
     * this bus, with exactly `eventSource` and these detail-types.
     * @default "default" (the account's default bus)
     */
    eventBusName?: pulumi.Input<string>;
    /**
     * The `source` of this worker's job events: letters, digits, `.`, `-`, `_`, `/`, 1-256 characters, not starting
     * with `aws.` (reserved by AWS).
     * @default - `lambda-ecs-worker.<name>` (the component's name, other characters replaced by `-`)
     */
    eventSource?: string;
    /**
     * In `launchMode: "service"`, the seconds a job may wait before a task takes it, 1-86400: with
     * `expectedJobSeconds`, the service scales to keep `acceptableWaitSeconds / expectedJobSeconds` jobs waiting per
     * running task (target tracking on that backlog per task).
     * @default 300
     */
    acceptableWaitSeconds?: number;
    /**
     * In `launchMode: "service"`, the seconds one job usually takes, 1-43200 (see `acceptableWaitSeconds`).
     * @default 60
     */
    expectedJobSeconds?: number;
    /**
     * When `capacity` includes `FARGATE_SPOT` (drain and per-job modes): a task start that fails for want of Spot
     * capacity is retried on on-demand `FARGATE` (logged, and counted in the `SpotFallbacks` metric). Only with Spot
     * capacity.
     * @default true
     */
    spotFallback?: boolean;

    /** Tags applied to every taggable child resource. @default {} */
    tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/** The defaults of {@link LambdaEcsWorkerArgs}, applied once by {@link resolveArgs}. */
export const LAMBDA_ECS_WORKER_DEFAULTS = {
    forceDestroyBucket: false,
    inputPrefix: "",
    inputSuffixes: [".zip"],
    outputPrefix: "",
    outputSuffixes: [".png", ".log"],
    launchMode: "drain" as LaunchMode,
    maxTasks: 10,
    launcherConcurrency: 0,
    intakeConcurrency: 5,
    intakeBatchSize: 10,
    reconcileIntervalMinutes: 1,
    cpu: 1024,
    memory: 2048,
    ephemeralStorageGiB: 21,
    stopTimeout: 120,
    jobTimeoutSeconds: 900,
    capacity: { kind: CapacityKind.Fargate } as LambdaEcsWorkerCapacity,
    logRetentionDays: 14,
    containerInsights: true,
    visibilityTimeoutSeconds: 300,
    maxReceiveCount: 3,
    messageRetentionSeconds: 345600,
    deadLetterRetentionSeconds: 1209600,
    oldestJobAlarmSeconds: 3600,
    eventBusName: "default" as pulumi.Input<string>,
    acceptableWaitSeconds: 300,
    expectedJobSeconds: 60,
    spotFallback: true,
    platform: Platform.LinuxAmd64 as Platform,
    buildRuntimeImage: true,

    environment: {} as Record<string, pulumi.Input<string>>,
    alarmActions: [] as pulumi.Input<pulumi.Input<string>[]>,
    tags: {} as pulumi.Input<Record<string, pulumi.Input<string>>>,
};

/** Keys of {@link LambdaEcsWorkerArgs} that have a fixed default in {@link LAMBDA_ECS_WORKER_DEFAULTS}. */
type Defaulted = Exclude<keyof typeof LAMBDA_ECS_WORKER_DEFAULTS, "platform" | "buildRuntimeImage">;

/**
 * {@link LambdaEcsWorkerArgs} with every default applied: what the validation and each step of the constructor read.
 * Only the arguments whose absence decides something (`bucketName`, `image.context`/`imageUri`, `subnetIds`, ...) stay
 * optional.
 */
export type ResolvedLambdaEcsWorkerArgs = Omit<LambdaEcsWorkerArgs, Defaulted | "assignPublicIp"> & {
    [K in Defaulted]-?: (typeof LAMBDA_ECS_WORKER_DEFAULTS)[K];
} & {
    /** `image.platform`, resolved. */
    platform: Platform;
    /** `image.buildRuntimeImage`, resolved (only read with `image.context`). */
    buildRuntimeImage: boolean;
    /** No `subnetIds`: the tasks run in the default VPC's subnets. */
    useDefaultVpc: boolean;
    assignPublicIp: boolean;
};

/**
 * Applies the defaults of {@link LambdaEcsWorkerArgs} (from {@link LAMBDA_ECS_WORKER_DEFAULTS}) once. Never throws,
 * even on arguments that fail validation (e.g. no `image`), so `validateLambdaEcsWorkerArgs` can read it too.
 */
export function resolveArgs(args: LambdaEcsWorkerArgs): ResolvedLambdaEcsWorkerArgs {
    const d = LAMBDA_ECS_WORKER_DEFAULTS;
    const useDefaultVpc = args.subnetIds === undefined;
    return {
        ...args,
        forceDestroyBucket: args.forceDestroyBucket ?? d.forceDestroyBucket,
        inputPrefix: args.inputPrefix ?? d.inputPrefix,
        inputSuffixes: args.inputSuffixes ?? d.inputSuffixes,
        outputPrefix: args.outputPrefix ?? d.outputPrefix,
        outputSuffixes: args.outputSuffixes ?? d.outputSuffixes,
        launchMode: args.launchMode ?? d.launchMode,
        maxTasks: args.maxTasks ?? d.maxTasks,
        launcherConcurrency: args.launcherConcurrency ?? d.launcherConcurrency,
        intakeConcurrency: args.intakeConcurrency ?? d.intakeConcurrency,
        intakeBatchSize: args.intakeBatchSize ?? d.intakeBatchSize,
        reconcileIntervalMinutes: args.reconcileIntervalMinutes ?? d.reconcileIntervalMinutes,
        cpu: args.cpu ?? d.cpu,
        memory: args.memory ?? d.memory,
        environment: args.environment ?? d.environment,
        ephemeralStorageGiB: args.ephemeralStorageGiB ?? d.ephemeralStorageGiB,
        stopTimeout: args.stopTimeout ?? d.stopTimeout,
        jobTimeoutSeconds: args.jobTimeoutSeconds ?? d.jobTimeoutSeconds,
        capacity: args.capacity ?? d.capacity,
        useDefaultVpc,
        assignPublicIp: args.assignPublicIp ?? useDefaultVpc,
        logRetentionDays: args.logRetentionDays ?? d.logRetentionDays,
        containerInsights: args.containerInsights ?? d.containerInsights,
        visibilityTimeoutSeconds: args.visibilityTimeoutSeconds ?? d.visibilityTimeoutSeconds,
        maxReceiveCount: args.maxReceiveCount ?? d.maxReceiveCount,
        messageRetentionSeconds: args.messageRetentionSeconds ?? d.messageRetentionSeconds,
        deadLetterRetentionSeconds: args.deadLetterRetentionSeconds ?? d.deadLetterRetentionSeconds,
        alarmActions: args.alarmActions ?? d.alarmActions,
        oldestJobAlarmSeconds: args.oldestJobAlarmSeconds ?? d.oldestJobAlarmSeconds,
        eventBusName: args.eventBusName ?? d.eventBusName,
        acceptableWaitSeconds: args.acceptableWaitSeconds ?? d.acceptableWaitSeconds,
        expectedJobSeconds: args.expectedJobSeconds ?? d.expectedJobSeconds,
        spotFallback: args.spotFallback ?? d.spotFallback,
        platform: args.image?.platform ?? d.platform,
        buildRuntimeImage: args.image?.buildRuntimeImage ?? d.buildRuntimeImage,
        tags: args.tags ?? d.tags,
    };
}

/** The `source` of the worker's job events: `eventSource`, or `lambda-ecs-worker.<name>` (other characters → `-`). */
export function eventSourceOf(name: string, r: Pick<ResolvedLambdaEcsWorkerArgs, "eventSource">): string {
    return r.eventSource ?? `lambda-ecs-worker.${name.replace(/[^A-Za-z0-9._\/-]/g, "-")}`.slice(0, 256);
}

/**
 * Service mode's scaling target: jobs waiting per running task, `acceptableWaitSeconds / expectedJobSeconds` (a task
 * works through that many in the acceptable wait), at least 1.
 */
export function backlogPerTask(r: Pick<ResolvedLambdaEcsWorkerArgs, "acceptableWaitSeconds" | "expectedJobSeconds">): number {
    return Math.max(1, Math.floor(r.acceptableWaitSeconds / r.expectedJobSeconds));
}

/** What every step's children get: the component as parent (each step adds its own `dependsOn`). */
export interface ChildOptions {
    parent: pulumi.Resource;
}
