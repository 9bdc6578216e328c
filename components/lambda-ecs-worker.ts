import * as aws from "@pulumi/aws";
import * as awsx from "@pulumi/awsx";
import * as pulumi from "@pulumi/pulumi";

import { launcherFactory } from "../functions/launcher";
import { LAUNCHER_ENV, LaunchMode, OUTPUT_SUFFIXES } from "../functions/launcher-settings";
import { describeMemoryFor, ecrRepositoryArn, FARGATE_SIZES, isInteger, LOG_RETENTION_DAYS } from "./validation";

/** Where the worker's container image comes from: built from a Dockerfile, or prebuilt. Exactly one of the two. */
export interface LambdaEcsWorkerImageArgs {
    /**
     * Docker build context (a folder with a Dockerfile), built and pushed to a new ECR repository with
     * `awsx.ecr.Image`. Exclusive with `imageUri`.
     * @default - none: one of `context` or `imageUri` is required
     */
    context?: pulumi.Input<string>;
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
    platform?: "linux/amd64" | "linux/arm64";
    /**
     * A prebuilt image to run, e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com/render:1.2`. Exclusive with
     * `context`. When it is in ECR, the execution role may pull from exactly that repository.
     * @default - none: one of `context` or `imageUri` is required
     */
    imageUri?: pulumi.Input<string>;
}

/** Fargate capacity: on-demand, Spot, or a weighted mix of both. */
export type LambdaEcsWorkerCapacity =
    | "FARGATE"
    | "FARGATE_SPOT"
    | {
          /** Relative weight of on-demand FARGATE tasks. */
          fargateWeight: number;
          /** Relative weight of FARGATE_SPOT tasks. */
          spotWeight: number;
          /** Tasks always placed on on-demand FARGATE before the weights apply. @default 0 */
          fargateBase?: number;
      };

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
     * Only keys under this prefix are jobs, e.g. `"inbox/"`.
     * @default "" (the whole bucket)
     */
    inputPrefix?: string;
    /**
     * Key suffixes that are jobs. S3's notification filter compares them case-sensitively (list `".ZIP"` too to
     * accept both); the launcher then matches case-insensitively. None may end with another, nor with an output
     * suffix (`.png`, `.log`, `.json`), so that outputs can never retrigger the launcher.
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
     * Reserved concurrency of the launcher Lambda. 1 serializes task-start decisions, so a burst of uploads can't
     * start a storm of tasks; `"unreserved"` reserves none, for accounts whose concurrency limit is too low to reserve
     * any (Lambda keeps 10 unreserved), at the price that concurrent invocations may briefly start more than `maxTasks`.
     * @default 1
     */
    launcherConcurrency?: number | "unreserved";

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
    /** Seconds between SIGTERM and SIGKILL when a task is stopped, 2-120. @default 120 */
    stopTimeout?: number;
    /**
     * Hard limit on one job's processing (render) time in seconds, 1-43200 (SQS keeps a message hidden at most 12 h);
     * passed as `RENDER_TIMEOUT_SECONDS`.
     * @default 900
     */
    jobTimeoutSeconds?: number;
    /** Fargate capacity: `"FARGATE"`, `"FARGATE_SPOT"`, or `{ fargateWeight, spotWeight, fargateBase? }`. @default "FARGATE" */
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
    /** Enable CloudWatch Container Insights on the cluster. @default true */
    containerInsights?: boolean;

    /**
     * Seconds a received job stays hidden from other workers (the worker extends it while it runs), 30-43200.
     * @default 300
     */
    visibilityTimeoutSeconds?: number;
    /** Deliveries of a job before SQS moves it to the dead-letter queue, 1-1000. @default 3 */
    maxReceiveCount?: number;
    /** Seconds a message stays in the work queue, 60-1209600. @default 345600 (4 days) */
    messageRetentionSeconds?: number;
    /** Seconds a message stays in the dead-letter queue, 60-1209600. @default 1209600 (14 days) */
    deadLetterRetentionSeconds?: number;

    /**
     * Actions (e.g. SNS topic ARNs) of the alarms: a job landed in the dead-letter queue; a job has waited longer
     * than `oldestJobAlarmSeconds` (tasks can't start or can't reach the queue).
     * @default [] (the alarms only show in CloudWatch)
     */
    alarmActions?: pulumi.Input<pulumi.Input<string>[]>;
    /** Age in seconds of the oldest waiting job that raises the stuck-queue alarm, 60-1209600. @default 3600 */
    oldestJobAlarmSeconds?: number;

    /** Tags applied to every taggable child resource. @default {} */
    tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/** The defaults of {@link LambdaEcsWorkerArgs}, resolved once at the top of the constructor. */
export const LAMBDA_ECS_WORKER_DEFAULTS = {
    forceDestroyBucket: false,
    inputPrefix: "",
    inputSuffixes: [".zip"],
    outputPrefix: "",
    launchMode: "drain" as LaunchMode,
    maxTasks: 10,
    launcherConcurrency: 1 as number | "unreserved",
    reconcileIntervalMinutes: 1,
    cpu: 1024,
    memory: 2048,
    ephemeralStorageGiB: 21,
    stopTimeout: 120,
    jobTimeoutSeconds: 900,
    capacity: "FARGATE" as LambdaEcsWorkerCapacity,
    logRetentionDays: 14,
    containerInsights: true,
    visibilityTimeoutSeconds: 300,
    maxReceiveCount: 3,
    messageRetentionSeconds: 345600,
    deadLetterRetentionSeconds: 1209600,
    oldestJobAlarmSeconds: 3600,
    platform: "linux/amd64" as const,
};

/** Name of the worker container in the task definition. */
export const WORKER_CONTAINER_NAME = "worker";
/** Where the task mounts its writable scratch volume; the root file system is read-only. */
export const SCRATCH_DIR = "/scratch";
/** Non-root user the container runs as (the `node` user of the worker image). */
export const WORKER_USER = "1000:1000";

/** Container environment variables the component sets itself; `environment` may not redefine them. */
export const RESERVED_ENVIRONMENT = [
    "QUEUE_URL",
    "DLQ_URL",
    "AWS_REGION",
    "INPUT_PREFIX",
    "OUTPUT_PREFIX",
    "RENDER_TIMEOUT_SECONDS",
    "WORKER_IDLE_EXIT",
    "WORKER_MAX_RECEIVE_COUNT",
    "WORKER_VISIBILITY_TIMEOUT",
    "WORKER_SCRATCH_DIR",
    "JOB_BUCKET",
    "JOB_KEY",
];

const LAUNCH_MODES: LaunchMode[] = ["drain", "per-job", "service"];

/**
 * Checks the arguments that decide the shape of the stack. Returns one message per problem, each naming the
 * argument and what it allows; empty when all is well. Pure: no resources, no outputs.
 */
export function validateLambdaEcsWorkerArgs(args: LambdaEcsWorkerArgs): string[] {
    const errors: string[] = [];
    const d = LAMBDA_ECS_WORKER_DEFAULTS;
    const image = args?.image;
    if (!image || typeof image !== "object") {
        errors.push("image: required; give { context } to build an image or { imageUri } for a prebuilt one");
    } else {
        const hasContext = image.context !== undefined;
        const hasUri = image.imageUri !== undefined;
        if (hasContext === hasUri) {
            errors.push("image: give exactly one of image.context (build) or image.imageUri (prebuilt)");
        }
        if (hasUri && image.dockerfile !== undefined) {
            errors.push("image: dockerfile applies only with image.context, not with image.imageUri");
        }
        if (image.platform !== undefined && !["linux/amd64", "linux/arm64"].includes(image.platform)) {
            errors.push(`image.platform: must be "linux/amd64" or "linux/arm64", got ${JSON.stringify(image.platform)}`);
        }
    }
    if (args.bucketName !== undefined && args.forceDestroyBucket !== undefined) {
        errors.push("forceDestroyBucket: applies only to a bucket this component creates, not with bucketName");
    }

    const prefix = args.inputPrefix ?? d.inputPrefix;
    const outputPrefix = args.outputPrefix ?? d.outputPrefix;
    for (const [arg, p] of [["inputPrefix", prefix], ["outputPrefix", outputPrefix]] as const) {
        if (typeof p !== "string" || p.startsWith("/") || p.includes("..")) {
            errors.push(`${arg}: must be a relative key prefix without "..", e.g. "inbox/", got ${JSON.stringify(p)}`);
        }
    }
    if (outputPrefix !== "" && prefix !== "" && outputPrefix.startsWith(prefix)) {
        // Safe by suffix anyway, but the worker's outputs landing in the inbox confuses users and scans.
        errors.push(`outputPrefix: must not lie under inputPrefix ("${prefix}"); use "" to write next to the input`);
    } else if (outputPrefix !== "" && prefix.startsWith(outputPrefix)) {
        // The launcher ignores keys under the output prefix: every upload would be ignored.
        errors.push(`outputPrefix: must not contain inputPrefix ("${prefix}"): uploads there would count as outputs`);
    }
    const suffixes = args.inputSuffixes ?? d.inputSuffixes;
    if (!Array.isArray(suffixes) || suffixes.length === 0) {
        errors.push('inputSuffixes: must be a non-empty list such as [".zip"]');
    } else {
        const lower = suffixes.map((s) => (typeof s === "string" ? s.toLowerCase() : ""));
        suffixes.forEach((s, i) => {
            if (typeof s !== "string" || !/^\.?[A-Za-z0-9._-]+$/.test(s)) {
                errors.push(`inputSuffixes[${i}]: must be a suffix like ".zip" (letters, digits, ".", "_", "-"), got ${JSON.stringify(s)}`);
                return;
            }
            const out = [...OUTPUT_SUFFIXES, ".json"].find((o) => lower[i].endsWith(o) || o.endsWith(lower[i]));
            if (out) {
                errors.push(`inputSuffixes[${i}]: "${s}" overlaps the output suffix "${out}"; outputs would retrigger the launcher`);
            }
            // S3 compares filter suffixes case-sensitively: ".zip" and ".ZIP" may both be listed.
            suffixes.forEach((other, j) => {
                if (j !== i && typeof other === "string" && s.endsWith(other) && (s !== other || j < i)) {
                    errors.push(`inputSuffixes[${i}]: "${s}" overlaps "${suffixes[j]}"; S3 rejects overlapping notification filters`);
                }
            });
        });
    }

    const launchMode = args.launchMode ?? d.launchMode;
    if (!LAUNCH_MODES.includes(launchMode)) {
        errors.push(`launchMode: must be one of ${LAUNCH_MODES.map((m) => `"${m}"`).join(", ")}, got ${JSON.stringify(launchMode)}`);
    }
    const intIn = (arg: string, v: unknown, min: number, max: number) => {
        if (v !== undefined && (!isInteger(v) || v < min || v > max)) {
            errors.push(`${arg}: must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
        }
    };
    intIn("maxTasks", args.maxTasks, 1, 1000);
    intIn("reconcileIntervalMinutes", args.reconcileIntervalMinutes, 1, 60);
    if (args.reconcileIntervalMinutes !== undefined && launchMode !== "drain") {
        errors.push(`reconcileIntervalMinutes: applies only with launchMode "drain", not "${launchMode}"`);
    }
    if (args.launcherConcurrency !== undefined && args.launcherConcurrency !== "unreserved") {
        intIn("launcherConcurrency", args.launcherConcurrency, 1, 1000);
    }

    const cpu = args.cpu ?? d.cpu;
    const memory = args.memory ?? d.memory;
    if (!FARGATE_SIZES[cpu]) {
        errors.push(`cpu: must be one of ${Object.keys(FARGATE_SIZES).join(", ")} (Fargate CPU units), got ${JSON.stringify(cpu)}`);
    } else if (!FARGATE_SIZES[cpu].includes(memory)) {
        errors.push(`memory: with cpu ${cpu}, Fargate allows ${describeMemoryFor(cpu)} MiB, got ${JSON.stringify(memory)}`);
    }
    intIn("ephemeralStorageGiB", args.ephemeralStorageGiB, 21, 200);
    intIn("stopTimeout", args.stopTimeout, 2, 120);
    intIn("jobTimeoutSeconds", args.jobTimeoutSeconds, 1, 43200);
    intIn("visibilityTimeoutSeconds", args.visibilityTimeoutSeconds, 30, 43200);
    intIn("maxReceiveCount", args.maxReceiveCount, 1, 1000);
    intIn("messageRetentionSeconds", args.messageRetentionSeconds, 60, 1209600);
    intIn("deadLetterRetentionSeconds", args.deadLetterRetentionSeconds, 60, 1209600);
    intIn("oldestJobAlarmSeconds", args.oldestJobAlarmSeconds, 60, 1209600);
    const retention = args.logRetentionDays ?? d.logRetentionDays;
    if (!LOG_RETENTION_DAYS.includes(retention)) {
        errors.push(`logRetentionDays: must be one of ${LOG_RETENTION_DAYS.join(", ")}, got ${JSON.stringify(retention)}`);
    }

    const capacity = args.capacity ?? d.capacity;
    if (typeof capacity === "string") {
        if (capacity !== "FARGATE" && capacity !== "FARGATE_SPOT") {
            errors.push(`capacity: must be "FARGATE", "FARGATE_SPOT" or { fargateWeight, spotWeight }, got ${JSON.stringify(capacity)}`);
        }
    } else if (!capacity || typeof capacity !== "object") {
        errors.push(`capacity: must be "FARGATE", "FARGATE_SPOT" or { fargateWeight, spotWeight }, got ${JSON.stringify(capacity)}`);
    } else {
        intIn("capacity.fargateWeight", capacity.fargateWeight, 0, 1000);
        intIn("capacity.spotWeight", capacity.spotWeight, 0, 1000);
        intIn("capacity.fargateBase", capacity.fargateBase, 0, 100000);
        if (capacity.fargateWeight === 0 && capacity.spotWeight === 0) {
            errors.push("capacity: fargateWeight and spotWeight can't both be 0");
        }
    }

    if (args.subnetIds !== undefined && args.securityGroupIds === undefined && args.vpcId === undefined) {
        errors.push("vpcId: required with subnetIds when securityGroupIds is not given (for the egress-only security group)");
    }
    if (args.subnetIds === undefined && args.vpcId !== undefined) {
        errors.push("vpcId: applies only with subnetIds; without them the default VPC is used");
    }
    for (const k of Object.keys(args.environment ?? {})) {
        if (RESERVED_ENVIRONMENT.includes(k)) {
            errors.push(`environment.${k}: is set by the component; reserved are ${RESERVED_ENVIRONMENT.join(", ")}`);
        }
    }
    return errors;
}

/** The capacity provider strategy for a capacity setting. */
export function capacityProviderStrategy(
    capacity: LambdaEcsWorkerCapacity,
): { capacityProvider: string; weight: number; base?: number }[] {
    if (capacity === "FARGATE" || capacity === "FARGATE_SPOT") return [{ capacityProvider: capacity, weight: 1 }];
    const out: { capacityProvider: string; weight: number; base?: number }[] = [];
    if (capacity.fargateWeight > 0 || (capacity.fargateBase ?? 0) > 0) {
        out.push({ capacityProvider: "FARGATE", weight: capacity.fargateWeight, base: capacity.fargateBase ?? 0 });
    }
    if (capacity.spotWeight > 0) out.push({ capacityProvider: "FARGATE_SPOT", weight: capacity.spotWeight });
    return out;
}

/** IAM `Allow` statement (kept tiny for readable, exact policies). */
function allow(action: string | string[], resource: pulumi.Input<string> | pulumi.Input<string>[], condition?: object) {
    return { Effect: "Allow", Action: action, Resource: resource, ...(condition ? { Condition: condition } : {}) };
}

function assumeRolePolicy(service: string): string {
    return JSON.stringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Principal: { Service: service }, Action: "sts:AssumeRole" }],
    });
}

/**
 * The Lambda → SQS → ECS worker pattern: uploads to an S3 bucket invoke a launcher Lambda, which queues one job per
 * object and starts just enough Fargate tasks; each task drains the queue, writes its outputs next to the input
 * (or under `outputPrefix`) and exits. Failed jobs end in a dead-letter queue with a reason.
 *
 * ```ts
 * const render = new LambdaEcsWorker("render", { image: { context: "./worker-image" } });
 * ```
 */
export class LambdaEcsWorker extends pulumi.ComponentResource {
    /** Name of the bucket jobs are uploaded to and outputs written to. */
    public readonly bucketName: pulumi.Output<string>;
    /** URL of the work queue. */
    public readonly queueUrl: pulumi.Output<string>;
    /** URL of the dead-letter queue, where failed jobs end with their reason. */
    public readonly deadLetterQueueUrl: pulumi.Output<string>;
    /** ARN of the ECS cluster the tasks run in. */
    public readonly clusterArn: pulumi.Output<string>;
    /** ARN of the worker's task definition. */
    public readonly taskDefinitionArn: pulumi.Output<string>;
    /** Name of the launcher Lambda function. */
    public readonly launcherFunctionName: pulumi.Output<string>;
    /** Name of the CloudWatch log group of the worker tasks. */
    public readonly logGroupName: pulumi.Output<string>;
    /** URI of the image the tasks run. */
    public readonly imageUri: pulumi.Output<string>;

    /** The bucket, when this component created it. */
    public readonly bucket?: aws.s3.Bucket;
    /** The work queue. */
    public readonly queue: aws.sqs.Queue;
    /** The dead-letter queue. */
    public readonly deadLetterQueue: aws.sqs.Queue;
    /** The alarm that fires when a job lands in the dead-letter queue. */
    public readonly deadLetterAlarm: aws.cloudwatch.MetricAlarm;
    /** The alarm that fires when a job has waited longer than `oldestJobAlarmSeconds`. */
    public readonly oldestJobAlarm: aws.cloudwatch.MetricAlarm;
    /** The ECS cluster. */
    public readonly cluster: aws.ecs.Cluster;
    /** The worker's task definition. */
    public readonly taskDefinition: aws.ecs.TaskDefinition;
    /** The launcher Lambda function. */
    public readonly launcher: aws.lambda.CallbackFunction<any, any>;
    /** The role the worker's code runs as. */
    public readonly taskRole: aws.iam.Role;
    /** The role ECS uses to pull the image and write logs. */
    public readonly executionRole: aws.iam.Role;
    /** The egress-only security group, when this component created it. */
    public readonly securityGroup?: aws.ec2.SecurityGroup;
    /** The ECS service, in `launchMode: "service"`. */
    public readonly service?: aws.ecs.Service;

    constructor(name: string, args: LambdaEcsWorkerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("lambda-ecs-worker:index:LambdaEcsWorker", name, {}, opts);
        const problems = validateLambdaEcsWorkerArgs(args);
        if (problems.length > 0) {
            throw new pulumi.ResourceError(`LambdaEcsWorker "${name}": invalid arguments:\n  ${problems.join("\n  ")}`, this);
        }

        const d = LAMBDA_ECS_WORKER_DEFAULTS;
        const inputPrefix = args.inputPrefix ?? d.inputPrefix;
        const inputSuffixes = args.inputSuffixes ?? d.inputSuffixes;
        const outputPrefix = args.outputPrefix ?? d.outputPrefix;
        const launchMode = args.launchMode ?? d.launchMode;
        const maxTasks = args.maxTasks ?? d.maxTasks;
        const launcherConcurrency = args.launcherConcurrency ?? d.launcherConcurrency;
        const reconcileIntervalMinutes = args.reconcileIntervalMinutes ?? d.reconcileIntervalMinutes;
        const cpu = args.cpu ?? d.cpu;
        const memory = args.memory ?? d.memory;
        const ephemeralStorageGiB = args.ephemeralStorageGiB ?? d.ephemeralStorageGiB;
        const stopTimeout = args.stopTimeout ?? d.stopTimeout;
        const jobTimeoutSeconds = args.jobTimeoutSeconds ?? d.jobTimeoutSeconds;
        const capacity = args.capacity ?? d.capacity;
        const logRetentionDays = args.logRetentionDays ?? d.logRetentionDays;
        const containerInsights = args.containerInsights ?? d.containerInsights;
        const visibilityTimeoutSeconds = args.visibilityTimeoutSeconds ?? d.visibilityTimeoutSeconds;
        const maxReceiveCount = args.maxReceiveCount ?? d.maxReceiveCount;
        const messageRetentionSeconds = args.messageRetentionSeconds ?? d.messageRetentionSeconds;
        const deadLetterRetentionSeconds = args.deadLetterRetentionSeconds ?? d.deadLetterRetentionSeconds;
        const oldestJobAlarmSeconds = args.oldestJobAlarmSeconds ?? d.oldestJobAlarmSeconds;
        const useDefaultVpc = args.subnetIds === undefined;
        const assignPublicIp = args.assignPublicIp ?? useDefaultVpc;
        const platform = args.image.platform ?? d.platform;
        const tags = args.tags ?? {};
        const parent = { parent: this };

        const region = aws.getRegionOutput({}, parent).region;
        const partition = aws.getPartitionOutput({}, parent).partition;
        const account = aws.getCallerIdentityOutput({}, parent).accountId;

        // ---------------------------------------------------------------- bucket
        let bucketName: pulumi.Output<string>;
        let bucketArn: pulumi.Output<string>;
        if (args.bucketName !== undefined) {
            bucketName = pulumi.output(args.bucketName);
            bucketArn = pulumi.interpolate`arn:${partition}:s3:::${bucketName}`;
        } else {
            const bucket = new aws.s3.Bucket(
                `${name}-bucket`,
                { forceDestroy: args.forceDestroyBucket ?? d.forceDestroyBucket, tags },
                parent,
            );
            const publicAccessBlock = new aws.s3.BucketPublicAccessBlock(
                `${name}-bucket-public-access`,
                {
                    bucket: bucket.id,
                    blockPublicAcls: true,
                    blockPublicPolicy: true,
                    ignorePublicAcls: true,
                    restrictPublicBuckets: true,
                },
                parent,
            );
            new aws.s3.BucketOwnershipControls(
                `${name}-bucket-ownership`,
                { bucket: bucket.id, rule: { objectOwnership: "BucketOwnerEnforced" } },
                parent,
            );
            new aws.s3.BucketServerSideEncryptionConfiguration(
                `${name}-bucket-encryption`,
                {
                    bucket: bucket.id,
                    rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" }, bucketKeyEnabled: true }],
                },
                parent,
            );
            new aws.s3.BucketPolicy(
                `${name}-bucket-policy`,
                {
                    bucket: bucket.id,
                    policy: pulumi.jsonStringify({
                        Version: "2012-10-17",
                        Statement: [
                            {
                                Sid: "DenyInsecureTransport",
                                Effect: "Deny",
                                Principal: "*",
                                Action: "s3:*",
                                Resource: [bucket.arn, pulumi.interpolate`${bucket.arn}/*`],
                                Condition: { Bool: { "aws:SecureTransport": "false" } },
                            },
                        ],
                    }),
                },
                { parent: this, dependsOn: [publicAccessBlock] },
            );
            this.bucket = bucket;
            bucketName = bucket.bucket;
            bucketArn = bucket.arn;
        }

        // ---------------------------------------------------------------- queues
        this.deadLetterQueue = new aws.sqs.Queue(
            `${name}-dlq`,
            { messageRetentionSeconds: deadLetterRetentionSeconds, sqsManagedSseEnabled: true, tags },
            parent,
        );
        this.queue = new aws.sqs.Queue(
            `${name}-queue`,
            {
                visibilityTimeoutSeconds,
                messageRetentionSeconds,
                receiveWaitTimeSeconds: 20,
                sqsManagedSseEnabled: true,
                redrivePolicy: pulumi.jsonStringify({ deadLetterTargetArn: this.deadLetterQueue.arn, maxReceiveCount }),
                tags,
            },
            parent,
        );

        const queueAlarm = (suffix: string, queue: aws.sqs.Queue, metricName: string, threshold: number, description: string) =>
            new aws.cloudwatch.MetricAlarm(
                `${name}-${suffix}`,
                {
                    alarmDescription: description,
                    namespace: "AWS/SQS",
                    metricName,
                    dimensions: { QueueName: queue.name },
                    statistic: "Maximum",
                    period: 60,
                    evaluationPeriods: 1,
                    comparisonOperator: "GreaterThanThreshold",
                    threshold,
                    treatMissingData: "notBreaching",
                    alarmActions: args.alarmActions ?? [],
                    tags,
                },
                parent,
            );
        this.deadLetterAlarm = queueAlarm(
            "dlq-alarm",
            this.deadLetterQueue,
            "ApproximateNumberOfMessagesVisible",
            0,
            `A ${name} job failed for good: see the dead-letter queue and the job's .error.json`,
        );
        this.oldestJobAlarm = queueAlarm(
            "stuck-alarm",
            this.queue,
            "ApproximateAgeOfOldestMessage",
            oldestJobAlarmSeconds,
            `A ${name} job has waited over ${oldestJobAlarmSeconds} s: tasks may fail to start or to reach the queue`,
        );

        // ---------------------------------------------------------------- image
        let imageUri: pulumi.Output<string>;
        if (args.image.context !== undefined) {
            const repository = new awsx.ecr.Repository(`${name}-repo`, { forceDelete: true, tags }, parent);
            const image = new awsx.ecr.Image(
                `${name}-image`,
                {
                    repositoryUrl: repository.url,
                    context: args.image.context,
                    dockerfile: args.image.dockerfile,
                    platform,
                },
                parent,
            );
            imageUri = image.imageUri;
        } else {
            imageUri = pulumi.output(args.image.imageUri!);
        }
        const cpuArchitecture = platform === "linux/arm64" ? "ARM64" : "X86_64";

        // ---------------------------------------------------------------- logs, network, cluster
        const logGroup = new aws.cloudwatch.LogGroup(`${name}-logs`, { retentionInDays: logRetentionDays, tags }, parent);

        let subnetIds: pulumi.Output<string[]>;
        let vpcId: pulumi.Input<string> | undefined = args.vpcId;
        if (useDefaultVpc) {
            const vpc = aws.ec2.getVpcOutput({ default: true }, parent);
            vpcId = vpc.id;
            subnetIds = aws.ec2.getSubnetsOutput({ filters: [{ name: "vpc-id", values: [vpc.id] }] }, parent).ids;
        } else {
            subnetIds = pulumi.output(args.subnetIds!);
        }
        let securityGroupIds: pulumi.Output<string[]>;
        if (args.securityGroupIds !== undefined) {
            securityGroupIds = pulumi.output(args.securityGroupIds);
        } else {
            this.securityGroup = new aws.ec2.SecurityGroup(
                `${name}-sg`,
                {
                    vpcId,
                    description: `Egress-only security group of the ${name} worker tasks`,
                    egress: [
                        { protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"], ipv6CidrBlocks: ["::/0"] },
                    ],
                    tags,
                },
                parent,
            );
            securityGroupIds = pulumi.output([this.securityGroup.id]);
        }

        this.cluster = new aws.ecs.Cluster(
            `${name}-cluster`,
            { settings: [{ name: "containerInsights", value: containerInsights ? "enabled" : "disabled" }], tags },
            parent,
        );
        const strategy = capacityProviderStrategy(capacity);
        const capacityProviders = new aws.ecs.ClusterCapacityProviders(
            `${name}-capacity-providers`,
            {
                clusterName: this.cluster.name,
                capacityProviders: ["FARGATE", "FARGATE_SPOT"],
                defaultCapacityProviderStrategies: strategy,
            },
            parent,
        );

        // ---------------------------------------------------------------- task roles
        this.executionRole = new aws.iam.Role(
            `${name}-execution-role`,
            { assumeRolePolicy: assumeRolePolicy("ecs-tasks.amazonaws.com"), tags },
            parent,
        );
        new aws.iam.RolePolicy(
            `${name}-execution-policy`,
            {
                role: this.executionRole.id,
                policy: imageUri.apply((uri) => {
                    const repoArn = ecrRepositoryArn(uri);
                    return pulumi.jsonStringify({
                        Version: "2012-10-17",
                        Statement: [
                            ...(repoArn
                                ? [
                                      allow("ecr:GetAuthorizationToken", "*"),
                                      allow(
                                          ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
                                          repoArn,
                                      ),
                                  ]
                                : []),
                            allow(["logs:CreateLogStream", "logs:PutLogEvents"], pulumi.interpolate`${logGroup.arn}:*`),
                        ],
                    });
                }),
            },
            parent,
        );

        this.taskRole = new aws.iam.Role(
            `${name}-task-role`,
            { assumeRolePolicy: assumeRolePolicy("ecs-tasks.amazonaws.com"), tags },
            parent,
        );
        const outputObject = (suffix: string) =>
            pulumi.interpolate`${bucketArn}/${outputPrefix === "" ? inputPrefix : outputPrefix}*${suffix}`;
        new aws.iam.RolePolicy(
            `${name}-task-policy`,
            {
                role: this.taskRole.id,
                policy: pulumi.jsonStringify({
                    Version: "2012-10-17",
                    Statement: [
                        allow("s3:GetObject", pulumi.interpolate`${bucketArn}/${inputPrefix}*`),
                        allow("s3:PutObject", OUTPUT_SUFFIXES.map(outputObject)),
                        // A success removes the failure report an earlier attempt left.
                        allow("s3:DeleteObject", outputObject(".error.json")),
                        allow(
                            ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
                            this.queue.arn,
                        ),
                        allow("sqs:SendMessage", this.deadLetterQueue.arn),
                    ],
                }),
            },
            parent,
        );

        // ---------------------------------------------------------------- task definition
        const family = `${pulumi.getProject()}-${pulumi.getStack()}-${name}`.replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 255);
        const environment = pulumi
            .all([this.queue.url, this.deadLetterQueue.url, region, args.environment ?? {}])
            .apply(([queueUrl, dlqUrl, regionName, extra]) =>
                Object.entries({
                    QUEUE_URL: queueUrl,
                    DLQ_URL: dlqUrl,
                    AWS_REGION: regionName,
                    INPUT_PREFIX: inputPrefix,
                    OUTPUT_PREFIX: outputPrefix,
                    RENDER_TIMEOUT_SECONDS: String(jobTimeoutSeconds),
                    WORKER_IDLE_EXIT: launchMode === "service" ? "0" : "1",
                    WORKER_MAX_RECEIVE_COUNT: String(maxReceiveCount),
                    WORKER_VISIBILITY_TIMEOUT: String(visibilityTimeoutSeconds),
                    WORKER_SCRATCH_DIR: SCRATCH_DIR,
                    ...extra,
                }).map(([k, v]) => ({ name: k, value: v })),
            );
        this.taskDefinition = new aws.ecs.TaskDefinition(
            `${name}-task`,
            {
                family,
                requiresCompatibilities: ["FARGATE"],
                networkMode: "awsvpc",
                cpu: String(cpu),
                memory: String(memory),
                runtimePlatform: { operatingSystemFamily: "LINUX", cpuArchitecture },
                executionRoleArn: this.executionRole.arn,
                taskRoleArn: this.taskRole.arn,
                ...(ephemeralStorageGiB > 21 ? { ephemeralStorage: { sizeInGib: ephemeralStorageGiB } } : {}),
                volumes: [{ name: "scratch" }, { name: "tmp" }],
                containerDefinitions: pulumi.jsonStringify([
                    {
                        name: WORKER_CONTAINER_NAME,
                        image: imageUri,
                        essential: true,
                        cpu,
                        memory,
                        ...(args.command !== undefined ? { command: args.command } : {}),
                        user: WORKER_USER,
                        readonlyRootFilesystem: true,
                        stopTimeout,
                        linuxParameters: { initProcessEnabled: true },
                        environment,
                        mountPoints: [
                            { sourceVolume: "scratch", containerPath: SCRATCH_DIR, readOnly: false },
                            { sourceVolume: "tmp", containerPath: "/tmp", readOnly: false },
                        ],
                        logConfiguration: {
                            logDriver: "awslogs",
                            options: {
                                "awslogs-group": logGroup.name,
                                "awslogs-region": region,
                                "awslogs-stream-prefix": name,
                            },
                        },
                    },
                ]),
                tags,
            },
            parent,
        );

        // ---------------------------------------------------------------- service mode: scale on queue depth
        if (launchMode === "service") {
            this.service = new aws.ecs.Service(
                `${name}-service`,
                {
                    cluster: this.cluster.arn,
                    taskDefinition: this.taskDefinition.arn,
                    desiredCount: 0,
                    capacityProviderStrategies: strategy,
                    networkConfiguration: { subnets: subnetIds, securityGroups: securityGroupIds, assignPublicIp },
                    propagateTags: "TASK_DEFINITION",
                    tags,
                },
                { parent: this, dependsOn: [capacityProviders], ignoreChanges: ["desiredCount"] },
            );
            this.createQueueDepthScaling(name, maxTasks, this.service, tags);
        }

        // ---------------------------------------------------------------- launcher
        const launcherLogs = new aws.cloudwatch.LogGroup(
            `${name}-launcher-logs`,
            { retentionInDays: logRetentionDays, tags },
            parent,
        );
        const launcherRole = new aws.iam.Role(
            `${name}-launcher-role`,
            { assumeRolePolicy: assumeRolePolicy("lambda.amazonaws.com"), tags },
            parent,
        );
        const clusterCondition = { ArnEquals: { "ecs:cluster": this.cluster.arn } };
        const ecsArn = (what: pulumi.Input<string>) => pulumi.interpolate`arn:${partition}:ecs:${region}:${account}:${what}`;
        const launcherPolicy = new aws.iam.RolePolicy(
            `${name}-launcher-policy`,
            {
                role: launcherRole.id,
                policy: pulumi.jsonStringify({
                    Version: "2012-10-17",
                    Statement: [
                        allow(["sqs:SendMessage", "sqs:GetQueueAttributes"], this.queue.arn),
                        allow("sqs:SendMessage", this.deadLetterQueue.arn),
                        allow("ecs:RunTask", ecsArn(`task-definition/${family}:*`), clusterCondition),
                        allow("ecs:ListTasks", ecsArn(pulumi.interpolate`container-instance/${this.cluster.name}/*`), clusterCondition),
                        allow("ecs:DescribeTasks", ecsArn(pulumi.interpolate`task/${this.cluster.name}/*`), clusterCondition),
                        allow("ecs:TagResource", ecsArn(pulumi.interpolate`task/${this.cluster.name}/*`), {
                            StringEquals: { "ecs:CreateAction": "RunTask" },
                        }),
                        allow("iam:PassRole", [this.taskRole.arn, this.executionRole.arn], {
                            StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" },
                        }),
                        allow(["logs:CreateLogStream", "logs:PutLogEvents"], pulumi.interpolate`${launcherLogs.arn}:*`),
                    ],
                }),
            },
            parent,
        );
        // ECS's `startedBy` of this worker's tasks (at most 36 characters): the launcher counts its tasks by it.
        const startedBy = `lew-${name}`.slice(0, 36);
        const launcherEnv: Record<string, pulumi.Input<string>> = {
            [LAUNCHER_ENV.queueUrl]: this.queue.url,
            [LAUNCHER_ENV.deadLetterQueueUrl]: this.deadLetterQueue.url,
            [LAUNCHER_ENV.cluster]: this.cluster.arn,
            [LAUNCHER_ENV.taskDefinition]: this.taskDefinition.arn,
            [LAUNCHER_ENV.containerName]: WORKER_CONTAINER_NAME,
            [LAUNCHER_ENV.subnets]: subnetIds.apply((ids) => ids.join(",")),
            [LAUNCHER_ENV.securityGroups]: securityGroupIds.apply((ids) => ids.join(",")),
            [LAUNCHER_ENV.assignPublicIp]: assignPublicIp ? "ENABLED" : "DISABLED",
            [LAUNCHER_ENV.capacityProviderStrategy]: JSON.stringify(strategy),
            [LAUNCHER_ENV.maxTasks]: String(maxTasks),
            [LAUNCHER_ENV.launchMode]: launchMode,
            [LAUNCHER_ENV.inputPrefix]: inputPrefix,
            [LAUNCHER_ENV.inputSuffixes]: JSON.stringify(inputSuffixes),
            [LAUNCHER_ENV.outputPrefix]: outputPrefix,
            [LAUNCHER_ENV.startedBy]: startedBy,
        };
        this.launcher = new aws.lambda.CallbackFunction(
            `${name}-launcher`,
            {
                callbackFactory: launcherFactory,
                runtime: "nodejs22.x",
                role: launcherRole,
                timeout: 60,
                memorySize: 256,
                ...(launcherConcurrency === "unreserved" ? {} : { reservedConcurrentExecutions: launcherConcurrency }),
                environment: { variables: launcherEnv },
                loggingConfig: { logFormat: "Text", logGroup: launcherLogs.name },
                codePathOptions: { extraExcludePackages: ["@aws-sdk/client-ecs", "@aws-sdk/client-sqs"] },
                tags,
            },
            { parent: this, dependsOn: [launcherPolicy, capacityProviders] },
        );
        // A launcher that still fails after Lambda's retries hands the S3 event to the dead-letter queue: no job is lost.
        new aws.lambda.FunctionEventInvokeConfig(
            `${name}-launcher-invoke-config`,
            {
                functionName: this.launcher.name,
                maximumRetryAttempts: 2,
                destinationConfig: { onFailure: { destination: this.deadLetterQueue.arn } },
            },
            { parent: this, dependsOn: [launcherPolicy] },
        );
        const permission = new aws.lambda.Permission(
            `${name}-launcher-permission`,
            {
                action: "lambda:InvokeFunction",
                function: this.launcher.name,
                principal: "s3.amazonaws.com",
                sourceArn: bucketArn,
                sourceAccount: account,
            },
            parent,
        );
        if (launchMode === "per-job") {
            this.createStartFailureRoute(name, startedBy, tags);
        }
        if (launchMode === "drain") {
            const schedule = new aws.cloudwatch.EventRule(
                `${name}-reconcile`,
                {
                    description: `Starts ${name} worker tasks for jobs left waiting in the queue`,
                    scheduleExpression:
                        reconcileIntervalMinutes === 1 ? "rate(1 minute)" : `rate(${reconcileIntervalMinutes} minutes)`,
                    tags,
                },
                parent,
            );
            const schedulePermission = new aws.lambda.Permission(
                `${name}-reconcile-permission`,
                {
                    action: "lambda:InvokeFunction",
                    function: this.launcher.name,
                    principal: "events.amazonaws.com",
                    sourceArn: schedule.arn,
                },
                parent,
            );
            new aws.cloudwatch.EventTarget(
                `${name}-reconcile-target`,
                { rule: schedule.name, arn: this.launcher.arn },
                { parent: this, dependsOn: [schedulePermission] },
            );
        }
        new aws.s3.BucketNotification(
            `${name}-notification`,
            {
                bucket: bucketName,
                lambdaFunctions: inputSuffixes.map((suffix) => ({
                    lambdaFunctionArn: this.launcher.arn,
                    events: ["s3:ObjectCreated:*"],
                    ...(inputPrefix !== "" ? { filterPrefix: inputPrefix } : {}),
                    filterSuffix: suffix,
                })),
            },
            { parent: this, dependsOn: [permission] },
        );

        this.bucketName = bucketName;
        this.queueUrl = this.queue.url;
        this.deadLetterQueueUrl = this.deadLetterQueue.url;
        this.clusterArn = this.cluster.arn;
        this.taskDefinitionArn = this.taskDefinition.arn;
        this.launcherFunctionName = this.launcher.name;
        this.logGroupName = logGroup.name;
        this.imageUri = imageUri;
        this.registerOutputs({
            bucketName: this.bucketName,
            queueUrl: this.queueUrl,
            deadLetterQueueUrl: this.deadLetterQueueUrl,
            clusterArn: this.clusterArn,
            taskDefinitionArn: this.taskDefinitionArn,
            launcherFunctionName: this.launcherFunctionName,
            logGroupName: this.logGroupName,
            imageUri: this.imageUri,
        });
    }

    /**
     * Per-job mode has no queue behind a job: when ECS accepts a task but cannot start it (image pull, ENI or secrets
     * failures: stop code TaskFailedToStart), EventBridge hands ECS's event to the dead-letter queue as
     * `{ bucket, key, reason, ... }`, taken from the task's `JOB_BUCKET`/`JOB_KEY` overrides and its `stoppedReason`.
     * (The worker dead-letters jobs that fail or are interrupted once it runs.)
     */
    private createStartFailureRoute(name: string, startedBy: string, tags: pulumi.Input<Record<string, pulumi.Input<string>>>): void {
        const rule = new aws.cloudwatch.EventRule(
            `${name}-start-failures`,
            {
                description: `Dead-letters ${name} jobs whose task failed to start`,
                eventPattern: pulumi.jsonStringify({
                    source: ["aws.ecs"],
                    "detail-type": ["ECS Task State Change"],
                    detail: {
                        clusterArn: [this.cluster.arn],
                        startedBy: [startedBy],
                        lastStatus: ["STOPPED"],
                        stopCode: ["TaskFailedToStart"],
                    },
                }),
                tags,
            },
            { parent: this },
        );
        const policy = new aws.sqs.QueuePolicy(
            `${name}-dlq-policy`,
            {
                queueUrl: this.deadLetterQueue.url,
                policy: pulumi.jsonStringify({
                    Version: "2012-10-17",
                    Statement: [
                        {
                            Effect: "Allow",
                            Principal: { Service: "events.amazonaws.com" },
                            Action: "sqs:SendMessage",
                            Resource: this.deadLetterQueue.arn,
                            Condition: { ArnEquals: { "aws:SourceArn": rule.arn } },
                        },
                    ],
                }),
            },
            { parent: this },
        );
        // The launcher passes JOB_BUCKET then JOB_KEY as the container's environment overrides.
        const override = "$.detail.overrides.containerOverrides[0].environment";
        new aws.cloudwatch.EventTarget(
            `${name}-start-failures-target`,
            {
                rule: rule.name,
                arn: this.deadLetterQueue.arn,
                inputTransformer: {
                    inputPaths: {
                        bucket: `${override}[0].value`,
                        key: `${override}[1].value`,
                        reason: "$.detail.stoppedReason",
                        taskArn: "$.detail.taskArn",
                    },
                    inputTemplate: '{"bucket": <bucket>, "key": <key>, "reason": <reason>, "stopCode": "TaskFailedToStart", "taskArn": <taskArn>}',
                },
            },
            { parent: this, dependsOn: [policy] },
        );
    }

    /**
     * Scale the service on the queue's backlog (visible + in flight): out by steps as jobs arrive, to zero when the
     * backlog has been empty for five minutes.
     */
    private createQueueDepthScaling(
        name: string,
        maxTasks: number,
        service: aws.ecs.Service,
        tags: pulumi.Input<Record<string, pulumi.Input<string>>>,
    ): void {
        const parent = { parent: this };
        const target = new aws.appautoscaling.Target(
            `${name}-scaling-target`,
            {
                serviceNamespace: "ecs",
                scalableDimension: "ecs:service:DesiredCount",
                resourceId: pulumi.interpolate`service/${this.cluster.name}/${service.name}`,
                minCapacity: 0,
                maxCapacity: maxTasks,
                tags,
            },
            parent,
        );
        const half = Math.max(1, Math.ceil(maxTasks / 2));
        const metric = (id: string, metricName: string) => ({
            id,
            metric: { namespace: "AWS/SQS", metricName, dimensions: { QueueName: this.queue.name }, period: 60, stat: "Maximum" },
        });
        // Scale out while jobs wait with nobody to take them, adding tasks (never removing busy ones). Scale in only
        // when nothing is waiting or in flight, so no task is stopped in the middle of a job.
        const steps = [
            {
                policy: "scale-out",
                alarm: "backlog-high",
                comparisonOperator: "GreaterThanThreshold",
                evaluationPeriods: 1,
                adjustmentType: "ChangeInCapacity",
                metricQueries: [{ ...metric("waiting", "ApproximateNumberOfMessagesVisible"), returnData: true }],
                description: `Jobs are waiting for the ${name} worker: add tasks`,
                stepAdjustments: [
                    { metricIntervalLowerBound: "0", metricIntervalUpperBound: "10", scalingAdjustment: 1 },
                    { metricIntervalLowerBound: "10", metricIntervalUpperBound: "50", scalingAdjustment: half },
                    { metricIntervalLowerBound: "50", scalingAdjustment: maxTasks },
                ],
            },
            {
                policy: "scale-in",
                alarm: "backlog-empty",
                comparisonOperator: "LessThanOrEqualToThreshold",
                evaluationPeriods: 5,
                adjustmentType: "ExactCapacity",
                metricQueries: [
                    metric("visible", "ApproximateNumberOfMessagesVisible"),
                    metric("inflight", "ApproximateNumberOfMessagesNotVisible"),
                    { id: "backlog", expression: "visible + inflight", label: "Jobs queued or running", returnData: true },
                ],
                description: `No job for the ${name} worker for five minutes: scale to zero`,
                stepAdjustments: [{ metricIntervalUpperBound: "0", scalingAdjustment: 0 }],
            },
        ];
        for (const step of steps) {
            const policy = new aws.appautoscaling.Policy(
                `${name}-${step.policy}`,
                {
                    policyType: "StepScaling",
                    resourceId: target.resourceId,
                    scalableDimension: target.scalableDimension,
                    serviceNamespace: target.serviceNamespace,
                    stepScalingPolicyConfiguration: {
                        adjustmentType: step.adjustmentType,
                        cooldown: 60,
                        metricAggregationType: "Maximum",
                        stepAdjustments: step.stepAdjustments,
                    },
                },
                parent,
            );
            new aws.cloudwatch.MetricAlarm(
                `${name}-${step.alarm}`,
                {
                    comparisonOperator: step.comparisonOperator,
                    threshold: 0,
                    evaluationPeriods: step.evaluationPeriods,
                    metricQueries: step.metricQueries,
                    alarmActions: [policy.arn],
                    alarmDescription: step.description,
                    tags,
                },
                parent,
            );
        }
    }
}
