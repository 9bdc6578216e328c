/**
 * The IAM documents of the component, each a pure function of the ARNs and names it grants on: plain strings in
 * (as in `test/policies.test.ts`) give plain JSON-ready objects out; Pulumi Inputs in give a document for
 * `pulumi.jsonStringify`. Each role's statements are exactly what that role's code (or AWS with the role, such as the
 * launcher's event source mapping) calls in the launch mode, on exact ARNs unless AWS authorizes the call only on `*`
 * (ecr:GetAuthorizationToken), then with the tightest condition AWS supports for it. test/iam.test.ts evaluates them against the
 * requests the launcher and the worker really make.
 */
import * as pulumi from "@pulumi/pulumi";

import {
    DEFAULT_OUTPUT_SUFFIXES,
    ERROR_REPORT_SUFFIX,
    JOB_EVENT_DETAIL_TYPES,
    LaunchMode,
    ROUTED_EVENTS,
    writtenSuffixes,
} from "../../functions/launcher-settings";

type Str = pulumi.Input<string>;

export interface Statement {
    Sid?: string;
    Effect: "Allow" | "Deny";
    Principal?: unknown;
    Action: string | string[];
    Resource: Str | Str[];
    Condition?: object;
}

export interface PolicyDocument {
    Version: "2012-10-17";
    Statement: Statement[];
}

/**
 * A template string of Inputs: a plain string when every value is a string, else `pulumi.interpolate`'s Output.
 * Keeps the builders pure for plain ARNs.
 */
export function str(literals: TemplateStringsArray, ...values: Str[]): Str {
    if (values.every((v) => typeof v === "string")) {
        return literals.reduce((out, literal, i) => out + values[i - 1] + literal);
    }
    return pulumi.interpolate(literals, ...values);
}

/** IAM `Allow` statement (kept tiny for readable, exact policies). */
export function allow(action: string | string[], resource: Str | Str[], condition?: object): Statement {
    return { Effect: "Allow", Action: action, Resource: resource, ...(condition ? { Condition: condition } : {}) };
}

function policy(...statements: Statement[]): PolicyDocument {
    return { Version: "2012-10-17", Statement: statements };
}

/** The trust policy letting one AWS service principal (e.g. `ecs-tasks.amazonaws.com`) assume a role, as JSON. */
export function assumeRolePolicy(service: string): string {
    return JSON.stringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Principal: { Service: service }, Action: "sts:AssumeRole" }],
    });
}

/** The created bucket's policy: deny every request not made over TLS. */
export function bucketPolicy(bucketArn: Str): PolicyDocument {
    return policy({
        Sid: "DenyInsecureTransport",
        Effect: "Deny",
        Principal: "*",
        Action: "s3:*",
        Resource: [bucketArn, str`${bucketArn}/*`],
        Condition: { Bool: { "aws:SecureTransport": "false" } },
    });
}

/**
 * The execution role (ECS pulls the image and writes the task's logs): pull from exactly the image's ECR repository
 * (`undefined`: not in ECR, no ECR statement), write to the task log group.
 */
export function executionRolePolicy(p: { repositoryArn: string | undefined; logGroupArn: Str }): PolicyDocument {
    return policy(
        ...(p.repositoryArn
            ? [
                  allow("ecr:GetAuthorizationToken", "*"),
                  allow(["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"], p.repositoryArn),
              ]
            : []),
        allow(["logs:CreateLogStream", "logs:PutLogEvents"], str`${p.logGroupArn}:*`),
    );
}

/**
 * The task role (the worker's code): read inputs under `inputPrefix` (and list keys there, to tell a deleted input from
 * an unreadable one), write its declared outputs (`outputSuffixes`, default POV-Ray's; a big one as a multipart upload,
 * aborted when it fails) and its failure report (and delete a stale `.error.json`), dead-letter to the dead-letter
 * queue; in drain and service modes also consume the work queue (receive, delete, extend or release a message, and
 * re-send one for another attempt). The component sets the visibility timeout and maxReceiveCount, so the worker
 * never reads the queue's attributes; a per-job task gets its one job from its environment and never reads the queue.
 */
export function taskRolePolicy(p: {
    launchMode: LaunchMode;
    bucketArn: Str;
    inputPrefix: string;
    outputPrefix: string;
    /** The worker's outputs besides `.error.json`. @default [".png", ".log"] */
    outputSuffixes?: readonly string[];
    queueArn: Str;
    deadLetterQueueArn: Str;
    /** The job events' bus and source (`eventBusName`, `eventSource`). */
    eventBusArn: Str;
    eventSource: string;
    /** Service mode: the cluster's ARN and name (task scale-in protection of the service's tasks). */
    clusterArn?: Str;
    clusterName?: Str;
    partition?: Str;
    region?: Str;
    account?: Str;
    /** `bucketKmsKeyArn`: the bucket's SSE-KMS key (with `region`, for the kms:ViaService condition). */
    bucketKmsKeyArn?: Str;
}): PolicyDocument {
    const outputObject = (suffix: string) => str`${p.bucketArn}/${p.outputPrefix === "" ? p.inputPrefix : p.outputPrefix}*${suffix}`;
    return policy(
        allow("s3:GetObject", str`${p.bucketArn}/${p.inputPrefix}*`),
        // S3 answers a missing key with 403 AccessDenied, not 404, to a caller without s3:ListBucket: the worker lists
        // an input it cannot read (Prefix = its key) to tell a deleted input from an unreadable one; only there.
        allow("s3:ListBucket", p.bucketArn, { StringLike: { "s3:prefix": `${p.inputPrefix}*` } }),
        allow("s3:PutObject", writtenSuffixes(p.outputSuffixes ?? DEFAULT_OUTPUT_SUFFIXES).map(outputObject)),
        // An output over one part is a multipart upload (Create/UploadPart/Complete are s3:PutObject); one that fails
        // or is stopped is aborted, so that no parts are left. Never the error report (one small PutObject).
        allow("s3:AbortMultipartUpload", writtenSuffixes(p.outputSuffixes ?? DEFAULT_OUTPUT_SUFFIXES).filter((s) => s !== ERROR_REPORT_SUFFIX).map(outputObject)),
        // A success removes the failure report an earlier attempt left.
        allow("s3:DeleteObject", outputObject(ERROR_REPORT_SUFFIX)),
        // Consume the work queue; SendMessage re-sends a job for another attempt (an interruption, a retried failure).
        ...(p.launchMode === "per-job" ? [] : [allow(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:SendMessage"], p.queueArn)]),
        allow("sqs:SendMessage", p.deadLetterQueueArn),
        putJobEvents(p.eventBusArn, p.eventSource, [JOB_EVENT_DETAIL_TYPES.succeeded, JOB_EVENT_DETAIL_TYPES.failed]),
        // An SSE-KMS bucket: GetObject needs kms:Decrypt, PutObject kms:GenerateDataKey, on exactly that key and only
        // through S3 in this region (kms:ViaService, AWS KMS Developer Guide; S3 User Guide, "Using SSE-KMS").
        ...(p.bucketKmsKeyArn !== undefined
            ? [allow(["kms:Decrypt", "kms:GenerateDataKey"], p.bucketKmsKeyArn, { StringEquals: { "kms:ViaService": str`s3.${p.region!}.amazonaws.com` } })]
            : []),
        // Service mode: the container agent sets the task's scale-in protection with the task role's credentials.
        ...(p.launchMode === "service"
            ? [
                  allow("ecs:UpdateTaskProtection", str`arn:${p.partition!}:ecs:${p.region!}:${p.account!}:task/${p.clusterName!}/*`, {
                      ArnEquals: { "ecs:cluster": p.clusterArn! },
                  }),
              ]
            : []),
    );
}

/**
 * `events:PutEvents` on exactly one bus, for exactly one source and these detail-types. Both keys are multivalued
 * (ArrayOfString in the Service Authorization Reference: one value per entry of the request), so every value must be
 * allowed (`ForAllValues:`, as EventBridge's own examples write it), and `Null: false` keeps a request without them
 * from matching vacuously.
 */
export function putJobEvents(eventBusArn: Str, source: string, detailTypes: string[]): Statement {
    return allow("events:PutEvents", eventBusArn, {
        "ForAllValues:StringEquals": { "events:source": [source], "events:detail-type": detailTypes },
        Null: { "events:source": "false", "events:detail-type": "false" },
    });
}

/**
 * The launcher role, per mode. Always: consume the intake queue (Lambda's event source mapping polls it with this role:
 * ReceiveMessage, DeleteMessage, GetQueueAttributes), dead-letter the jobs of an intake record on its last allowed
 * receive (and, per-job, those whose task could not be started), put Lambda's failed-invocation events on the job
 * events' bus (Lambda delivers them to its on-failure destination, the bus, with this role), publish `Job Failed`
 * there, and write its own logs. Drain: queue jobs and read the backlog, coordinate its decisions (UpdateItem on
 * exactly its state table), count the cluster's tasks (DescribeClusters on exactly its cluster), run the task
 * definition family on the cluster, tag the tasks at launch, pass the two task roles to ECS. Per-job: run, tag and
 * pass, nothing on the work queue. Service: queue jobs, coordinate its wakes, and wake exactly its service
 * (DescribeServices, UpdateService; the service starts the tasks).
 */
export function launcherRolePolicy(p: {
    launchMode: LaunchMode;
    partition: Str;
    region: Str;
    account: Str;
    family: string;
    clusterArn: Str;
    clusterName: Str;
    queueArn: Str;
    deadLetterQueueArn: Str;
    /** The intake queue the launcher's event source mapping polls. */
    intakeQueueArn: Str;
    /** Drain and service: the coordination table (`${name}-launcher-state`). */
    stateTableArn?: Str;
    taskRoleArn: Str;
    executionRoleArn: Str;
    logGroupArn: Str;
    /** The job events' bus and source (`eventBusName`, `eventSource`). */
    eventBusArn: Str;
    eventSource: string;
    /** Service mode: the service's name, which the launcher wakes (DescribeServices, UpdateService). */
    serviceName?: Str;
}): PolicyDocument {
    const clusterCondition = { ArnEquals: { "ecs:cluster": p.clusterArn } };
    const ecsArn = (what: Str) => str`arn:${p.partition}:ecs:${p.region}:${p.account}:${what}`;
    const runTasks = [
        allow("ecs:RunTask", ecsArn(`task-definition/${p.family}:*`), clusterCondition),
        allow("ecs:TagResource", ecsArn(str`task/${p.clusterName}/*`), { StringEquals: { "ecs:CreateAction": "RunTask" } }),
        allow("iam:PassRole", [p.taskRoleArn, p.executionRoleArn], {
            StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" },
        }),
    ];
    const coordinate = allow("dynamodb:UpdateItem", p.stateTableArn!);
    const byMode: Record<LaunchMode, Statement[]> = {
        drain: [
            allow(["sqs:SendMessage", "sqs:GetQueueAttributes"], p.queueArn),
            coordinate,
            // DescribeClusters on its own cluster: running and pending task counts, one call whatever maxTasks.
            allow("ecs:DescribeClusters", p.clusterArn),
            ...runTasks,
        ],
        "per-job": runTasks,
        service: [
            // The wake reads the backlog (ApproximateNumberOfMessages[NotVisible]) before raising desiredCount.
            allow(["sqs:SendMessage", "sqs:GetQueueAttributes"], p.queueArn),
            coordinate,
            allow(["ecs:DescribeServices", "ecs:UpdateService"], ecsArn(str`service/${p.clusterName}/${p.serviceName!}`), clusterCondition),
        ],
    };
    return policy(
        // Lambda's event source mapping polls the intake with the function's role.
        allow(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], p.intakeQueueArn),
        ...byMode[p.launchMode],
        // Jobs not queued by an intake record's last allowed receive; per-job: jobs whose task could not be started.
        allow("sqs:SendMessage", p.deadLetterQueueArn),
        // Lambda puts a failed invocation's record on the bus (its on-failure destination) with this role.
        putJobEvents(p.eventBusArn, ROUTED_EVENTS.launcherFailure.source, [ROUTED_EVENTS.launcherFailure.detailType]),
        // Job Failed for the jobs of a dead-lettered invocation or intake record (all modes) and per-job start failures.
        putJobEvents(p.eventBusArn, p.eventSource, [JOB_EVENT_DETAIL_TYPES.failed]),
        allow(["logs:CreateLogStream", "logs:PutLogEvents"], str`${p.logGroupArn}:*`),
    );
}

/**
 * The intake queue's policy: S3 may send the bucket's notifications to it, only from exactly the bucket
 * (`aws:SourceArn`) in exactly the stack's account (`aws:SourceAccount`: a bucket ARN names no account), as the S3 User
 * Guide's walkthrough for SQS destinations writes it.
 */
export function intakeQueuePolicy(p: { intakeQueueArn: Str; bucketArn: Str; account: Str }): PolicyDocument {
    return policy({
        Effect: "Allow",
        Principal: { Service: "s3.amazonaws.com" },
        Action: "sqs:SendMessage",
        Resource: p.intakeQueueArn,
        Condition: { ArnEquals: { "aws:SourceArn": p.bucketArn }, StringEquals: { "aws:SourceAccount": p.account } },
    });
}

/**
 * The dead-letter queue's policy: EventBridge may send to it, only from the component's rules (the launcher's failed
 * invocations; in per-job mode also the start-failure rule).
 */
export function deadLetterQueuePolicy(p: { deadLetterQueueArn: Str; ruleArn: Str | Str[] }): PolicyDocument {
    return policy({
        Effect: "Allow",
        Principal: { Service: "events.amazonaws.com" },
        Action: "sqs:SendMessage",
        Resource: p.deadLetterQueueArn,
        Condition: { ArnEquals: { "aws:SourceArn": p.ruleArn } },
    });
}
