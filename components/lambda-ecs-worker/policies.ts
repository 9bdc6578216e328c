/**
 * The IAM documents of the component, each a pure function of the ARNs and names it grants on: plain strings in
 * (as in `test/policies.test.ts`) give plain JSON-ready objects out; Pulumi Inputs in give a document for
 * `pulumi.jsonStringify`. Each role's statements are exactly what that role's code calls, on exact ARNs unless AWS
 * authorizes the call only on `*`.
 */
import * as pulumi from "@pulumi/pulumi";

import { OUTPUT_SUFFIXES } from "../../functions/launcher-settings";

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
 * The task role (the worker's code): read inputs under `inputPrefix`, write (and delete a stale `.error.json` of) its
 * outputs, consume the work queue, dead-letter to the dead-letter queue.
 */
export function taskRolePolicy(p: {
    bucketArn: Str;
    inputPrefix: string;
    outputPrefix: string;
    queueArn: Str;
    deadLetterQueueArn: Str;
}): PolicyDocument {
    const outputObject = (suffix: string) => str`${p.bucketArn}/${p.outputPrefix === "" ? p.inputPrefix : p.outputPrefix}*${suffix}`;
    return policy(
        allow("s3:GetObject", str`${p.bucketArn}/${p.inputPrefix}*`),
        allow("s3:PutObject", OUTPUT_SUFFIXES.map(outputObject)),
        // A success removes the failure report an earlier attempt left.
        allow("s3:DeleteObject", outputObject(".error.json")),
        allow(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"], p.queueArn),
        allow("sqs:SendMessage", p.deadLetterQueueArn),
    );
}

/**
 * The launcher role: queue jobs (and dead-letter them), run the worker's task definition family on the cluster, count
 * and describe its tasks, tag them at launch, pass the two task roles to ECS, write its own logs.
 */
export function launcherRolePolicy(p: {
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
    return policy(
        allow(["sqs:SendMessage", "sqs:GetQueueAttributes"], p.queueArn),
        allow("sqs:SendMessage", p.deadLetterQueueArn),
        allow("ecs:RunTask", ecsArn(`task-definition/${p.family}:*`), clusterCondition),
        allow("ecs:ListTasks", ecsArn(str`container-instance/${p.clusterName}/*`), clusterCondition),
        allow("ecs:DescribeTasks", ecsArn(str`task/${p.clusterName}/*`), clusterCondition),
        allow("ecs:TagResource", ecsArn(str`task/${p.clusterName}/*`), { StringEquals: { "ecs:CreateAction": "RunTask" } }),
        allow("iam:PassRole", [p.taskRoleArn, p.executionRoleArn], {
            StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" },
        }),
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
