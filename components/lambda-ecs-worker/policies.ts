/**
 * The IAM documents of the component, each a pure function of the ARNs and names it grants on: plain strings in
 * (as in `test/policies.test.ts`) give plain JSON-ready objects out; Pulumi Inputs in give a document for
 * `pulumi.jsonStringify`. Each role's statements are exactly what that role's code calls in the launch mode, on exact
 * ARNs unless AWS authorizes the call only on `*` (ecr:GetAuthorizationToken; ecs:ListTasks naming no container
 * instance), then with the tightest condition AWS supports for it. test/iam.test.ts evaluates them against the
 * requests the launcher and the worker really make.
 */
import * as pulumi from "@pulumi/pulumi";

import { DEFAULT_OUTPUT_SUFFIXES, ERROR_REPORT_SUFFIX, LaunchMode, writtenSuffixes } from "../../functions/launcher-settings";

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
 * The task role (the worker's code): read inputs under `inputPrefix`, write its declared outputs (`outputSuffixes`,
 * default POV-Ray's) and its failure report (and delete a stale `.error.json`), dead-letter to the dead-letter queue; in drain and service modes also consume the work queue (receive,
 * delete, extend or release a message). The component sets the visibility timeout and maxReceiveCount, so the worker
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
}): PolicyDocument {
    const outputObject = (suffix: string) => str`${p.bucketArn}/${p.outputPrefix === "" ? p.inputPrefix : p.outputPrefix}*${suffix}`;
    return policy(
        allow("s3:GetObject", str`${p.bucketArn}/${p.inputPrefix}*`),
        allow("s3:PutObject", writtenSuffixes(p.outputSuffixes ?? DEFAULT_OUTPUT_SUFFIXES).map(outputObject)),
        // A success removes the failure report an earlier attempt left.
        allow("s3:DeleteObject", outputObject(ERROR_REPORT_SUFFIX)),
        ...(p.launchMode === "per-job" ? [] : [allow(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"], p.queueArn)]),
        allow("sqs:SendMessage", p.deadLetterQueueArn),
    );
}

/**
 * The launcher role, per mode. Always: send to the dead-letter queue (Lambda delivers a failed invocation's record to
 * its on-failure destination with this role; per-job mode also dead-letters jobs whose task could not be started)
 * and write its own logs. Drain: queue jobs and read the backlog, count its tasks (ListTasks naming no container
 * instance: AWS authorizes it on `*` only, so `*` with the `ecs:cluster` condition), describe them, run the task
 * definition family on the cluster, tag the tasks at launch, pass the two task roles to ECS. Per-job: run, tag and
 * pass, nothing on the work queue. Service: queue jobs only (the service starts the tasks).
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
    taskRoleArn: Str;
    executionRoleArn: Str;
    logGroupArn: Str;
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
    const byMode: Record<LaunchMode, Statement[]> = {
        drain: [
            allow(["sqs:SendMessage", "sqs:GetQueueAttributes"], p.queueArn),
            allow("ecs:ListTasks", "*", clusterCondition),
            allow("ecs:DescribeTasks", ecsArn(str`task/${p.clusterName}/*`), clusterCondition),
            ...runTasks,
        ],
        "per-job": runTasks,
        service: [allow("sqs:SendMessage", p.queueArn)],
    };
    return policy(
        ...byMode[p.launchMode],
        allow("sqs:SendMessage", p.deadLetterQueueArn),
        allow(["logs:CreateLogStream", "logs:PutLogEvents"], str`${p.logGroupArn}:*`),
    );
}

/** The dead-letter queue's policy in per-job mode: EventBridge may send to it, only from the start-failure rule. */
export function deadLetterQueuePolicy(p: { deadLetterQueueArn: Str; ruleArn: Str }): PolicyDocument {
    return policy({
        Effect: "Allow",
        Principal: { Service: "events.amazonaws.com" },
        Action: "sqs:SendMessage",
        Resource: p.deadLetterQueueArn,
        Condition: { ArnEquals: { "aws:SourceArn": p.ruleArn } },
    });
}
