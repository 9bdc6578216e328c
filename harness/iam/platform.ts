/**
 * Requests AWS itself makes with the stack's roles (or to its resource policies), which no code of this repository
 * sends and so no emulator run can record. They are built here as the services document them, and go through the
 * same mapping and evaluation as the recorded ones:
 *  - Lambda, with the launcher's role: writes the function's logs to its log group (CreateLogStream, PutLogEvents) and
 *    sends the record of an async invocation that failed for good to the on-failure destination (SendMessage to the
 *    DLQ) — "Lambda uses the function's execution role to send the record to the destination".
 *  - The ECS agent, with the task execution role: pulls the image from ECR (GetAuthorizationToken on `*`,
 *    BatchCheckLayerAvailability, GetDownloadUrlForLayer, BatchGetImage on the repository) and writes the container's
 *    logs with the awslogs driver (CreateLogStream, PutLogEvents on `<prefix>/<container>/<task id>`).
 *  - EventBridge (service principal `events.amazonaws.com`, per-job mode): sends the start-failure event to the DLQ,
 *    allowed by the DLQ's queue policy only, with `aws:SourceArn` set to the rule.
 */
import { HttpRequest } from "./requests";
import { StackPolicies } from "./stack-policies";

export interface PlatformRequest {
    /** Which policies apply: a role's identity policy, or only the resource policy for a service principal. */
    as: "launcher" | "execution" | { service: string; sourceArn: string; sourceAccount: string };
    /** Who makes it on AWS, for messages. */
    by: string;
    request: HttpRequest;
}

const SIG = (service: string) => `AWS4-HMAC-SHA256 Credential=AKIAPLATFORM/20261201/us-east-1/${service}/aws4_request, SignedHeaders=host, Signature=0`;

function jsonCall(service: string, target: string, body: object, host = service): HttpRequest {
    return {
        method: "POST",
        url: `https://${host}.us-east-1.amazonaws.com/`,
        headers: { authorization: SIG(service), "x-amz-target": target, "content-type": "application/x-amz-json-1.1" },
        body: JSON.stringify(body),
    };
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
    out.push({
        as: "launcher",
        by: "Lambda (async invocation on-failure destination)",
        request: jsonCall("sqs", "AmazonSQS.SendMessage", { QueueUrl: sp.dlq.url, MessageBody: "{}" }, "sqs"),
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
    if (sp.startFailureRuleArn) {
        out.push({
            as: { service: "events.amazonaws.com", sourceArn: sp.startFailureRuleArn, sourceAccount: sp.dlq.arn.split(":")[4] },
            by: "EventBridge (start-failure rule target)",
            request: jsonCall("sqs", "AmazonSQS.SendMessage", { QueueUrl: sp.dlq.url, MessageBody: "{}" }, "sqs"),
        });
    }
    return out;
}
