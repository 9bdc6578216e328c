/**
 * Requests AWS itself makes with the stack's roles (or to its resource policies), which no code of this repository
 * sends and so no emulator run can record. They are built here as the services document them, and go through the
 * same mapping and evaluation as the recorded ones:
 *  - Lambda, with the launcher's role: writes the function's logs to its log group (CreateLogStream, PutLogEvents) and
 *    sends the record of an async invocation that failed for good to the on-failure destination — the job events' bus:
 *    PutEvents with source `lambda` and detail-type "Lambda Function Invocation Result - Failure" ("Lambda uses the
 *    function's execution role to send the record to the destination").
 *  - The ECS agent, with the task execution role: pulls the image from ECR (GetAuthorizationToken on `*`,
 *    BatchCheckLayerAvailability, GetDownloadUrlForLayer, BatchGetImage on the repository) and writes the container's
 *    logs with the awslogs driver (CreateLogStream, PutLogEvents on `<prefix>/<container>/<task id>`).
 *  - Lambda's event source mapping of the intake queue, with the launcher's role: GetQueueAttributes of the queue (Lambda
 *    reads its attributes, e.g. the visibility timeout it checks against the function's timeout). Its ReceiveMessage
 *    and DeleteMessageBatch are played by the scenario with the launcher's key, so they are recorded.
 *  - S3 (service principal `s3.amazonaws.com`): sends each notification to the intake queue, allowed by the intake's
 *    queue policy only, with `aws:SourceArn` = the bucket and `aws:SourceAccount` = its owner.
 *  - EventBridge (service principal `events.amazonaws.com`): sends that record to the DLQ from the rule
 *    `<name>-launcher-failures` (every mode) and, in per-job mode, the start-failure event from `<name>-start-failures`;
 *    allowed by the DLQ's queue policy only, with `aws:SourceArn` set to the rule.
 *  - The ECS agent, with the task role (service mode): for each PUT the worker makes to
 *    `$ECS_AGENT_URI/task-protection/v1/state`, ecs:UpdateTaskProtection of its own task (see agentTaskProtectionCall;
 *    these are built from the PUTs the scenario's agent stand-in recorded, not listed here).
 */
import { ROUTED_EVENTS } from "../../functions/launcher-settings";
import { ACCESS_KEYS } from "./recording";
import { HttpRequest } from "./requests";
import { StackPolicies } from "./stack-policies";

export interface PlatformRequest {
    /** Which policies apply: a role's identity policy, or only the resource policy for a service principal. */
    as: "launcher" | "execution" | { service: string; sourceArn: string; sourceAccount: string };
    /** Who makes it on AWS, for messages. */
    by: string;
    request: HttpRequest;
}

const SIG = (service: string, key = "AKIAPLATFORM") => `AWS4-HMAC-SHA256 Credential=${key}/20261201/us-east-1/${service}/aws4_request, SignedHeaders=host, Signature=0`;

function jsonCall(service: string, target: string, body: object, host = service, key?: string): HttpRequest {
    return {
        method: "POST",
        url: `https://${host}.us-east-1.amazonaws.com/`,
        headers: { authorization: SIG(service, key), "x-amz-target": target, "content-type": "application/x-amz-json-1.1" },
        body: JSON.stringify(body),
    };
}

/**
 * The ECS agent's call for one PUT of `$ECS_AGENT_URI/task-protection/v1/state` (body `{"ProtectionEnabled": bool,
 * "ExpiresInMinutes"?: n}`), made with the task role's credentials (signed with ACCESS_KEYS.task): ECS
 * UpdateTaskProtection of the calling task in its cluster. Throws on a body the agent would reject.
 */
export function agentTaskProtectionCall(putBody: string, clusterArn: string, taskArn: string): HttpRequest {
    const b = JSON.parse(putBody);
    if (typeof b?.ProtectionEnabled !== "boolean") throw new Error(`task protection PUT without a boolean ProtectionEnabled: ${putBody}`);
    const body = {
        cluster: clusterArn,
        tasks: [taskArn],
        protectionEnabled: b.ProtectionEnabled,
        ...(b.ExpiresInMinutes !== undefined ? { expiresInMinutes: b.ExpiresInMinutes } : {}),
    };
    return jsonCall("ecs", "AmazonEC2ContainerServiceV20141113.UpdateTaskProtection", body, "ecs", ACCESS_KEYS.task);
}

/** ECR repository of an ECR image URI (`<account>.dkr.ecr.<region>.amazonaws.com/<repo>[:tag|@digest]`), or undefined. */
export function ecrRepository(imageUri: string): { registryId: string; repositoryName: string } | undefined {
    const m = /^(\d{12})\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?\/([^:@]+)/.exec(imageUri);
    return m ? { registryId: m[1], repositoryName: m[2] } : undefined;
}

export function platformRequests(sp: StackPolicies): PlatformRequest[] {
    const out: PlatformRequest[] = [];
    const lambdaStream = "2026/12/01/[$LATEST]0123456789abcdef";
    for (const op of ["CreateLogStream", "PutLogEvents"]) {
        out.push({
            as: "launcher",
            by: "Lambda (function logs)",
            request: jsonCall("logs", `Logs_20140328.${op}`, { logGroupName: sp.launcherLogGroup, logStreamName: lambdaStream }),
        });
    }
    const failure = ROUTED_EVENTS.launcherFailure;
    out.push({
        as: "launcher",
        by: "Lambda (async invocation on-failure destination: the event bus)",
        request: jsonCall("events", "AWSEvents.PutEvents", { Entries: [{ EventBusName: sp.eventBus.arn, Source: failure.source, DetailType: failure.detailType, Detail: "{}" }] }),
    });
    out.push({
        as: "launcher",
        by: "Lambda (the intake's event source mapping)",
        request: jsonCall("sqs", "AmazonSQS.GetQueueAttributes", { QueueUrl: sp.intake.url, AttributeNames: ["VisibilityTimeout"] }, "sqs"),
    });
    out.push({
        as: { service: "s3.amazonaws.com", sourceArn: `arn:aws:s3:::${sp.bucket}`, sourceAccount: sp.intake.arn.split(":")[4] },
        by: "S3 (the bucket's notification to the intake)",
        request: jsonCall("sqs", "AmazonSQS.SendMessage", { QueueUrl: sp.intake.url, MessageBody: "{}" }, "sqs"),
    });
    const repo = ecrRepository(sp.imageUri);
    if (repo) {
        out.push({ as: "execution", by: "ECS agent (image pull)", request: jsonCall("ecr", "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken", {}, "api.ecr") });
        for (const op of ["BatchCheckLayerAvailability", "GetDownloadUrlForLayer", "BatchGetImage"]) {
            out.push({ as: "execution", by: "ECS agent (image pull)", request: jsonCall("ecr", `AmazonEC2ContainerRegistry_V20150921.${op}`, repo, "api.ecr") });
        }
    }
    const taskStream = `${sp.name}/${sp.containerName}/0123456789abcdef0123456789abcdef`;
    for (const op of ["CreateLogStream", "PutLogEvents"]) {
        out.push({
            as: "execution",
            by: "ECS agent (awslogs driver)",
            request: jsonCall("logs", `Logs_20140328.${op}`, { logGroupName: sp.taskLogGroup, logStreamName: taskStream }),
        });
    }
    const rules: Array<[string, string | undefined]> = [
        ["launcher-failures", sp.launcherFailureRuleArn],
        ["start-failure", sp.startFailureRuleArn],
    ];
    for (const [what, ruleArn] of rules) {
        if (!ruleArn) continue;
        out.push({
            as: { service: "events.amazonaws.com", sourceArn: ruleArn, sourceAccount: sp.dlq.arn.split(":")[4] },
            by: `EventBridge (${what} rule target)`,
            request: jsonCall("sqs", "AmazonSQS.SendMessage", { QueueUrl: sp.dlq.url, MessageBody: "{}" }, "sqs"),
        });
    }
    return out;
}
