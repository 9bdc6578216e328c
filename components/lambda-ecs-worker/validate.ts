/**
 * `validateLambdaEcsWorkerArgs`: every problem with the arguments that decide the shape of the stack, each naming
 * the argument and what it allows. Pure: no resources, no outputs. Choices with a default are checked on the
 * resolved value ({@link resolveArgs}); ranges are checked on the value given (the defaults are in range), and
 * "only with" rules on whether an argument was given at all.
 */
import { ERROR_REPORT_SUFFIX, LAUNCH_MODES, writtenSuffixes } from "../../functions/launcher-settings";
import { CapacityKind, LambdaEcsWorkerArgs, Platform, ResolvedLambdaEcsWorkerArgs, resolveArgs } from "./args";
import { describeMemoryFor, FARGATE_SIZES, isInteger, LOG_RETENTION_DAYS } from "./aws-rules";
import { RESERVED_ENVIRONMENT } from "./container";

type Problems = string[];

/**
 * Checks the arguments that decide the shape of the stack. Returns one message per problem, each naming the
 * argument and what it allows; empty when all is well. Pure: no resources, no outputs.
 */
export function validateLambdaEcsWorkerArgs(args: LambdaEcsWorkerArgs, name?: string): string[] {
    const errors: Problems = [];
    const r = resolveArgs(args);
    if (name !== undefined) checkName(name, errors);
    checkImageAndBucket(args, errors);
    checkPrefixes(r, errors);
    checkOutputSuffixes(r.outputSuffixes, errors);
    checkSuffixes(r.inputSuffixes, Array.isArray(r.outputSuffixes) ? r.outputSuffixes : [], errors);
    checkModeAndTasks(args, r, errors);
    checkSizesAndLimits(args, r, errors);
    checkCapacity(r, errors);
    checkNetworkAndEnvironment(args, r, errors);
    checkEventsAndScaling(args, r, errors);
    checkAwsLimits(args, r, errors);
    checkQueueLimits(args, r, errors);
    return errors;
}

/**
 * The component's name becomes part of its children's names, which AWS checks only at deploy or RunTask time:
 * - characters: ECS cluster names, Lambda function names and SQS queue names allow only letters, digits, "-" and "_"
 *   (ECS CreateCluster, Lambda CreateFunction, SQS CreateQueue API references); ECS's `startedBy` (`lew-<name>`)
 *   the same plus "/" (RunTask API reference).
 * - length: Pulumi's autonaming appends "-" and 7 random characters and fails when that exceeds the provider's
 *   maximum; the longest child is the EventBridge rule `<name>-launcher-failure-events` (rule names 1-64 characters,
 *   EventBridge PutRule API reference): 64 - 8 - 24 = 32. It also keeps `startedBy` (`lew-<name>`, at most 36
 *   characters, RunTask API reference) unique per worker, and the IAM role `<name>-execution-role-xxxxxxx` within
 *   IAM's 64 characters.
 */
export const MAX_NAME_LENGTH = 32;

function checkName(name: string, errors: Problems): void {
    if (!/^[A-Za-z0-9_-]+$/.test(name)) {
        errors.push(`name: must be letters, digits, "-" or "_" (ECS cluster, Lambda function, SQS queue and startedBy names), got ${JSON.stringify(name)}`);
    } else if (name.length > MAX_NAME_LENGTH) {
        errors.push(`name: must be at most ${MAX_NAME_LENGTH} characters (children such as "<name>-launcher-failure-events" plus Pulumi's 8-character suffix must fit EventBridge's 64), got ${name.length}`);
    }
}

/** S3 bucket naming rules (S3 User Guide, "General purpose bucket naming rules"). */
const BUCKET_NAME = /^(?!xn--|sthree-|amzn-s3-demo-)(?!.*(?:-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function checkAwsLimits(args: LambdaEcsWorkerArgs, r: ResolvedLambdaEcsWorkerArgs, errors: Problems): void {
    // "Linux tasks with the ARM64 architecture don't support the Fargate Spot capacity provider" (Amazon ECS Developer
    // Guide, "Amazon ECS task definitions for 64-bit ARM workloads").
    if (r.platform === "linux/arm64" && usesSpot(r.capacity)) {
        errors.push(`image.platform / capacity: Fargate Spot runs only X86_64 Linux tasks; use platform "linux/amd64" or capacity { kind: "FARGATE" } with "linux/arm64", got ${JSON.stringify(r.capacity)}`);
    }
    if (typeof args.bucketName === "string" && (!BUCKET_NAME.test(args.bucketName) || args.bucketName.includes("..") || /^\d+\.\d+\.\d+\.\d+$/.test(args.bucketName))) {
        errors.push(`bucketName: must be an S3 bucket name (3-63 lowercase letters, digits, "." and "-", starting and ending with a letter or digit, not an IP address), got ${JSON.stringify(args.bucketName)}`);
    }
    // S3 object keys (and so notification filter values) are at most 1024 bytes (S3 User Guide, "Naming objects").
    for (const [arg, p] of [["inputPrefix", r.inputPrefix], ["outputPrefix", r.outputPrefix]] as const) {
        if (typeof p === "string" && Buffer.byteLength(p, "utf8") > 1000) {
            errors.push(`${arg}: must be at most 1000 bytes (S3 keys are at most 1024), got ${Buffer.byteLength(p, "utf8")}`);
        }
    }
    // awsvpcConfiguration: "subnets ... up to 16", "securityGroups ... up to 5" (ECS API reference, AwsVpcConfiguration).
    if (Array.isArray(args.subnetIds) && (args.subnetIds.length < 1 || args.subnetIds.length > 16)) {
        errors.push(`subnetIds: ECS takes 1 to 16 subnets per task, got ${args.subnetIds.length}`);
    }
    if (Array.isArray(args.securityGroupIds) && (args.securityGroupIds.length < 1 || args.securityGroupIds.length > 5)) {
        errors.push(`securityGroupIds: ECS takes 1 to 5 security groups per task, got ${args.securityGroupIds.length}`);
    }
    // Tags: at most 50 per resource, keys 1-128 and values 0-256 characters, no "aws:" prefix (Tagging AWS resources
    // user guide, "Tag naming limits and requirements"; the same for S3, SQS, ECS, Lambda, IAM, CloudWatch).
    const tags = args.tags;
    if (tags && typeof tags === "object" && !pulumiLike(tags)) {
        const entries = Object.entries(tags as Record<string, unknown>);
        if (entries.length > 50) errors.push(`tags: at most 50 tags per resource, got ${entries.length}`);
        for (const [k, v] of entries) {
            if (k.length < 1 || k.length > 128) errors.push(`tags.${k}: keys must be 1-128 characters, got ${k.length}`);
            if (k.toLowerCase().startsWith("aws:")) errors.push(`tags.${k}: the "aws:" prefix is reserved for AWS`);
            if (typeof v === "string" && v.length > 256) errors.push(`tags.${k}: values must be at most 256 characters, got ${v.length}`);
        }
    }
}

/** A Pulumi Output or promise (not inspectable here). */
function pulumiLike(v: object): boolean {
    return typeof (v as any).apply === "function" || typeof (v as any).then === "function";
}

/** Pushes a problem unless `v` is absent or an integer from `min` to `max`. */
function intIn(errors: Problems, arg: string, v: unknown, min: number, max: number): void {
    if (v !== undefined && (!isInteger(v) || v < min || v > max)) {
        errors.push(`${arg}: must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
    }
}

function checkImageAndBucket(args: LambdaEcsWorkerArgs, errors: Problems): void {
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
        if (hasUri && image.buildRuntimeImage !== undefined) {
            errors.push("image: buildRuntimeImage applies only with image.context, not with image.imageUri");
        }
        if (image.platform !== undefined && !Object.values(Platform).includes(image.platform)) {
            errors.push(`image.platform: must be ${Object.values(Platform).map((p) => `"${p}"`).join(" or ")}, got ${JSON.stringify(image.platform)}`);
        }
    }
    if (args.bucketKmsKeyArn !== undefined && args.bucketName === undefined) {
        errors.push("bucketKmsKeyArn: applies only with bucketName (the component's own bucket uses SSE-S3)");
    } else if (typeof args.bucketKmsKeyArn === "string" && !/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/.test(args.bucketKmsKeyArn)) {
        errors.push(`bucketKmsKeyArn: must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>), not an alias, got ${JSON.stringify(args.bucketKmsKeyArn)}`);
    }
    if (args.bucketName !== undefined && args.forceDestroyBucket !== undefined) {
        errors.push("forceDestroyBucket: applies only to a bucket this component creates, not with bucketName");
    }
}

function checkPrefixes({ inputPrefix: prefix, outputPrefix }: ResolvedLambdaEcsWorkerArgs, errors: Problems): void {
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
}

function checkOutputSuffixes(suffixes: string[], errors: Problems): void {
    if (!Array.isArray(suffixes) || suffixes.length === 0) {
        errors.push('outputSuffixes: must be a non-empty list such as [".png", ".log"]');
        return;
    }
    suffixes.forEach((s, i) => {
        if (typeof s !== "string" || !/^\.[A-Za-z0-9._-]{1,64}$/.test(s)) {
            errors.push(`outputSuffixes[${i}]: must be a suffix like ".png" ("." then letters, digits, ".", "_", "-"), got ${JSON.stringify(s)}`);
        } else if (s.toLowerCase() === ERROR_REPORT_SUFFIX) {
            errors.push(`outputSuffixes[${i}]: "${s}" is the failure report's suffix, always written; leave it out`);
        } else if (suffixes.findIndex((o) => typeof o === "string" && o.toLowerCase() === s.toLowerCase()) < i) {
            errors.push(`outputSuffixes[${i}]: "${s}" is listed twice`);
        }
    });
}

function checkSuffixes(suffixes: string[], outputSuffixes: string[], errors: Problems): void {
    if (!Array.isArray(suffixes) || suffixes.length === 0) {
        errors.push('inputSuffixes: must be a non-empty list such as [".zip"]');
        return;
    }
    const lower = suffixes.map((s) => (typeof s === "string" ? s.toLowerCase() : ""));
    suffixes.forEach((s, i) => {
        if (typeof s !== "string" || !/^\.?[A-Za-z0-9._-]+$/.test(s)) {
            errors.push(`inputSuffixes[${i}]: must be a suffix like ".zip" (letters, digits, ".", "_", "-"), got ${JSON.stringify(s)}`);
            return;
        }
        const outputs = writtenSuffixes(outputSuffixes.filter((o) => typeof o === "string").map((o) => o.toLowerCase()));
        const out = outputs.find((o) => lower[i].endsWith(o) || o.endsWith(lower[i]));
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

function checkModeAndTasks(args: LambdaEcsWorkerArgs, { launchMode, intakeConcurrency, intakeBatchSize }: ResolvedLambdaEcsWorkerArgs, errors: Problems): void {
    if (!LAUNCH_MODES.includes(launchMode)) {
        errors.push(`launchMode: must be one of ${LAUNCH_MODES.map((m) => `"${m}"`).join(", ")}, got ${JSON.stringify(launchMode)}`);
    }
    intIn(errors, "maxTasks", args.maxTasks, 1, 1000);
    intIn(errors, "reconcileIntervalMinutes", args.reconcileIntervalMinutes, 1, 60);
    if (args.reconcileIntervalMinutes !== undefined && launchMode !== "drain") {
        errors.push(`reconcileIntervalMinutes: applies only with launchMode "drain", not "${launchMode}"`);
    }
    intIn(errors, "launcherConcurrency", args.launcherConcurrency, 0, 1000);
    // The event source mapping's ScalingConfig.MaximumConcurrency is 2-1000, its BatchSize 1-10000 for a standard
    // queue (Lambda API reference, CreateEventSourceMapping).
    intIn(errors, "intakeConcurrency", args.intakeConcurrency, 2, 1000);
    intIn(errors, "intakeBatchSize", args.intakeBatchSize, 1, 10000);
    const reserved = args.launcherConcurrency;
    if (isInteger(reserved) && reserved > 0 && isInteger(intakeConcurrency) && reserved < intakeConcurrency + 1) {
        errors.push(`launcherConcurrency: must be 0 (none reserved) or at least intakeConcurrency + 1 = ${intakeConcurrency + 1} (the intake's invocations plus one for the schedule and routed events; Lambda throttles a mapping above the reserved concurrency), got ${reserved}`);
    }
    if (launchMode === "per-job" && isInteger(intakeConcurrency) && isInteger(intakeBatchSize) && intakeBatchSize * intakeConcurrency > 400) {
        errors.push(`intakeBatchSize / intakeConcurrency: in launchMode "per-job" their product must be at most 400 (an invocation starts its batch at 10 ÷ intakeConcurrency tasks a second, within 40 s of its 60 s timeout), got ${intakeBatchSize} × ${intakeConcurrency}`);
    }
}

function checkSizesAndLimits(args: LambdaEcsWorkerArgs, { cpu, memory, logRetentionDays }: ResolvedLambdaEcsWorkerArgs, errors: Problems): void {
    if (!FARGATE_SIZES[cpu]) {
        errors.push(`cpu: must be one of ${Object.keys(FARGATE_SIZES).join(", ")} (Fargate CPU units), got ${JSON.stringify(cpu)}`);
    } else if (!FARGATE_SIZES[cpu].includes(memory)) {
        errors.push(`memory: with cpu ${cpu}, Fargate allows ${describeMemoryFor(cpu)} MiB, got ${JSON.stringify(memory)}`);
    }
    intIn(errors, "ephemeralStorageGiB", args.ephemeralStorageGiB, 21, 200);
    intIn(errors, "stopTimeout", args.stopTimeout, 2, 120);
    intIn(errors, "jobTimeoutSeconds", args.jobTimeoutSeconds, 1, 43200);
    intIn(errors, "visibilityTimeoutSeconds", args.visibilityTimeoutSeconds, 30, 43200);
    // The work queue's redrive allows one receive more than the worker (a safety net): SQS's maximum is 1000.
    intIn(errors, "maxReceiveCount", args.maxReceiveCount, 1, 999);
    intIn(errors, "messageRetentionSeconds", args.messageRetentionSeconds, 60, 1209600);
    intIn(errors, "deadLetterRetentionSeconds", args.deadLetterRetentionSeconds, 60, 1209600);
    intIn(errors, "oldestJobAlarmSeconds", args.oldestJobAlarmSeconds, 60, 1209600);
    if (!LOG_RETENTION_DAYS.includes(logRetentionDays)) {
        errors.push(`logRetentionDays: must be one of ${LOG_RETENTION_DAYS.join(", ")}, got ${JSON.stringify(logRetentionDays)}`);
    }
}

function checkCapacity({ capacity }: ResolvedLambdaEcsWorkerArgs, errors: Problems): void {
    const kinds = Object.values(CapacityKind);
    if (!capacity || typeof capacity !== "object" || !kinds.includes(capacity.kind)) {
        errors.push(`capacity: must be { kind } with kind one of ${kinds.map((k) => `"${k}"`).join(", ")} (MIXED with fargateWeight and spotWeight), got ${JSON.stringify(capacity)}`);
        return;
    }
    const weights = (["fargateWeight", "spotWeight", "fargateBase"] as const).filter((k) => capacity[k] !== undefined);
    if (capacity.kind !== CapacityKind.Mixed) {
        for (const k of weights) errors.push(`capacity.${k}: applies only with kind "MIXED", not "${capacity.kind}"`);
        return;
    }
    for (const k of ["fargateWeight", "spotWeight"] as const) {
        if (capacity[k] === undefined) errors.push(`capacity.${k}: required with kind "MIXED" (an integer from 0 to 1000)`);
    }
    intIn(errors, "capacity.fargateWeight", capacity.fargateWeight, 0, 1000);
    intIn(errors, "capacity.spotWeight", capacity.spotWeight, 0, 1000);
    intIn(errors, "capacity.fargateBase", capacity.fargateBase, 0, 100000);
    if (capacity.fargateWeight === 0 && capacity.spotWeight === 0) {
        errors.push("capacity: fargateWeight and spotWeight can't both be 0");
    }
}

function checkNetworkAndEnvironment(args: LambdaEcsWorkerArgs, { environment }: ResolvedLambdaEcsWorkerArgs, errors: Problems): void {
    if (args.subnetIds !== undefined && args.securityGroupIds === undefined && args.vpcId === undefined) {
        errors.push("vpcId: required with subnetIds when securityGroupIds is not given (for the egress-only security group)");
    }
    if (args.subnetIds === undefined && args.vpcId !== undefined) {
        errors.push("vpcId: applies only with subnetIds; without them the default VPC is used");
    }
    for (const k of Object.keys(environment)) {
        if (RESERVED_ENVIRONMENT.includes(k)) {
            errors.push(`environment.${k}: is set by the component; reserved are ${RESERVED_ENVIRONMENT.join(", ")}`);
        }
    }
    // The launcher reads it too (drain: a task is that many slots), and refuses to start on a bad value.
    const slots = environment.WORKER_CONCURRENCY;
    if (typeof slots === "string" && !/^(?:[1-9]|[1-5]\d|6[0-4])$/.test(slots)) {
        errors.push(`environment.WORKER_CONCURRENCY: must be an integer from 1 to 64 (jobs one task runs at once), got ${JSON.stringify(slots)}`);
    }
}

/** EventBridge's rule for a `Source`, as the worker checks it (worker-image/src/events.ts). */
export const EVENT_SOURCE_PATTERN = /^(?!aws\.)[A-Za-z0-9._\/-]{1,256}$/;
/** An event bus name (EventBridge: 1-256 of letters, digits, `.`, `-`, `_`, `/`) or a bus ARN. */
const EVENT_BUS_PATTERN = /^(?:[A-Za-z0-9._\/-]{1,256}|arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus\/[A-Za-z0-9._\/-]{1,256})$/;

function checkEventsAndScaling(args: LambdaEcsWorkerArgs, r: ResolvedLambdaEcsWorkerArgs, errors: Problems): void {
    if (args.eventSource !== undefined && (typeof args.eventSource !== "string" || !EVENT_SOURCE_PATTERN.test(args.eventSource))) {
        errors.push(
            `eventSource: must be 1-256 letters, digits, ".", "-", "_" or "/", not starting with "aws.", got ${JSON.stringify(args.eventSource)}`,
        );
    }
    if (typeof args.eventBusName === "string" && !EVENT_BUS_PATTERN.test(args.eventBusName)) {
        errors.push(`eventBusName: must be an event bus name (letters, digits, ".", "-", "_", "/") or an event bus ARN, got ${JSON.stringify(args.eventBusName)}`);
    }
    intIn(errors, "acceptableWaitSeconds", args.acceptableWaitSeconds, 1, 86400);
    intIn(errors, "expectedJobSeconds", args.expectedJobSeconds, 1, 43200);
    for (const arg of ["acceptableWaitSeconds", "expectedJobSeconds"] as const) {
        if (args[arg] !== undefined && r.launchMode !== "service") {
            errors.push(`${arg}: applies only with launchMode "service", not "${r.launchMode}"`);
        }
    }
    if (r.launchMode === "service" && r.containerInsights === false) {
        errors.push('containerInsights: must be true with launchMode "service" (its scaling reads Container Insights\' RunningTaskCount)');
    }
    if (args.spotFallback !== undefined) {
        if (typeof args.spotFallback !== "boolean") errors.push(`spotFallback: must be true or false, got ${JSON.stringify(args.spotFallback)}`);
        if (!usesSpot(r.capacity)) errors.push("spotFallback: applies only when capacity includes FARGATE_SPOT");
        else if (r.launchMode === "service") errors.push('spotFallback: applies only with launchMode "drain" or "per-job" (a service keeps an on-demand base)');
    }
}

/** SQS's limit on a message's visibility: 12 h from its receipt (ChangeMessageVisibility refuses to extend it further). */
export const SQS_MAX_VISIBILITY_SECONDS = 43200;

/**
 * What a queued job needs besides its processor run within SQS's 12 h from the receipt: the download and unpacking
 * before it, the uploads and settling after it, and the heartbeats' own slack (one extension every third of the
 * visibility timeout). One hour.
 */
export const QUEUE_JOB_MARGIN_SECONDS = 3600;

/**
 * SQS's rules on the queues (Amazon SQS Developer Guide): a received message stays hidden at most 12 h from its
 * receipt, so in the queue modes a job's processor run plus {@link QUEUE_JOB_MARGIN_SECONDS} must fit in 12 h (a
 * per-job task has no message); and a dead-letter queue keeps a redriven message's original enqueue timestamp, so it
 * must keep messages longer than the work queue or a moved job may expire at once.
 */
function checkQueueLimits(args: LambdaEcsWorkerArgs, r: ResolvedLambdaEcsWorkerArgs, errors: Problems): void {
    const inRange = (v: unknown, min: number, max: number) => isInteger(v) && v >= min && v <= max;
    const most = SQS_MAX_VISIBILITY_SECONDS - QUEUE_JOB_MARGIN_SECONDS;
    if (r.launchMode !== "per-job" && inRange(r.jobTimeoutSeconds, 1, SQS_MAX_VISIBILITY_SECONDS) && r.jobTimeoutSeconds > most) {
        errors.push(
            `jobTimeoutSeconds: with launchMode "${r.launchMode}" must be at most ${most} (SQS hides a received job at most ${SQS_MAX_VISIBILITY_SECONDS} s, 12 h, ` +
                `from its receipt; ${QUEUE_JOB_MARGIN_SECONDS} s are kept for the download, the uploads and the heartbeats), got ${r.jobTimeoutSeconds}`,
        );
    }
    const work = r.messageRetentionSeconds;
    const dead = r.deadLetterRetentionSeconds;
    if (inRange(work, 60, 1209600) && inRange(dead, 60, 1209600) && dead <= work) {
        const given = (arg: keyof LambdaEcsWorkerArgs, v: number) => `${arg} ${v}${args[arg] === undefined ? " (the default)" : ""}`;
        errors.push(
            `deadLetterRetentionSeconds: must be greater than messageRetentionSeconds (SQS keeps a dead-lettered job's original enqueue time, ` +
                `so the dead-letter queue must keep messages longer than the work queue), got ${given("deadLetterRetentionSeconds", dead)} and ${given("messageRetentionSeconds", work)}`,
        );
    }
}

/** Whether a capacity setting places any task on FARGATE_SPOT. */
export function usesSpot(capacity: ResolvedLambdaEcsWorkerArgs["capacity"]): boolean {
    return capacity?.kind === CapacityKind.FargateSpot || (capacity?.kind === CapacityKind.Mixed && (capacity.spotWeight ?? 0) > 0);
}
