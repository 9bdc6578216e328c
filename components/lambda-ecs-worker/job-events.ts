/**
 * Step "job events": every job ends in exactly one EventBridge event (`Job Succeeded` / `Job Failed`, source
 * `eventSource`, on `eventBusName`). The worker publishes the events of the jobs it runs; this step routes to the
 * launcher the two ends a worker never sees, on which it publishes `Job Failed` (see `ROUTED_EVENTS` in
 * functions/launcher-settings.ts):
 *  - a launcher invocation that failed for good: Lambda's on-failure destination is the event bus (source `lambda`,
 *    the invocation record in `detail`); the rule `${name}-launcher-failures` hands the record to the dead-letter
 *    queue exactly as Lambda's SQS destination did, and the rule `${name}-launcher-failure-events` hands the event to
 *    the launcher (failureClass `launcher`) only when the failed invocation was no EventBridge event (an S3
 *    notification), so that a failure to handle that event can never loop;
 *  - in per-job mode, a task that failed to start (modes/per-job.ts adds the launcher as a second target of its
 *    start-failure rule; failureClass `not-started`).
 * The dead-letter queue's policy lets EventBridge send to it from exactly these rules.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

import { ROUTED_EVENTS } from "../../functions/launcher-settings";
import { ChildOptions, ResolvedLambdaEcsWorkerArgs } from "./args";
import type { AccountContext } from "./launcher";
import { deadLetterQueuePolicy } from "./policies";
import { QueueResources } from "./queues";

/** The ARN of `eventBusName` (a name, `"default"`, or already an ARN). */
export function eventBusArnOf(bus: pulumi.Input<string>, where: AccountContext): pulumi.Output<string> {
    return pulumi
        .all([bus, where.partition, where.region, where.account])
        .apply(([b, partition, region, account]) => (b.startsWith("arn:") ? b : `arn:${partition}:events:${region}:${account}:event-bus/${b}`));
}

/**
 * The event pattern of Lambda's on-failure event for one function (EventBridge destination). `s3Only`: only records
 * whose failed invocation was no EventBridge event (S3 notifications have no `source`; a reconcile tick, a routed ECS
 * event or a routed failure event has one), so the launcher's failure to handle a routed failure is never routed back
 * to it. (A leaf `exists` test: EventBridge's `exists` matches leaves only.)
 */
export function launcherFailurePattern(functionArn: string, s3Only: boolean): object {
    const e = ROUTED_EVENTS.launcherFailure;
    return {
        source: [e.source],
        "detail-type": [e.detailType],
        detail: {
            // The record names the function with its qualifier (`:$LATEST`) or without: match both, no other function.
            requestContext: { functionArn: [functionArn, { prefix: `${functionArn}:` }] },
            ...(s3Only ? { requestPayload: { source: [{ exists: false }] } } : {}),
        },
    };
}

/**
 * The input transformer that hands the dead-letter queue Lambda's invocation record (the event's `detail`), the body
 * Lambda's SQS destination wrote.
 */
export const RECORD_TO_DLQ = { inputPaths: { record: "$.detail" }, inputTemplate: "<record>" };

export interface JobEventResources {
    /** Lambda's failed invocations of the launcher → the dead-letter queue. */
    launcherFailures: aws.cloudwatch.EventRule;
    /** Those of S3 notifications (no `source`) → the launcher, which publishes `Job Failed` per job. */
    launcherFailureEvents: aws.cloudwatch.EventRule;
    deadLetterPolicy: aws.sqs.QueuePolicy;
}

export function createJobEventRouting(
    name: string,
    r: ResolvedLambdaEcsWorkerArgs,
    deps: {
        queues: QueueResources;
        launcher: aws.lambda.Function;
        /** Further rules that may send to the dead-letter queue (per-job: the start-failure rule). */
        deadLetterRules: aws.cloudwatch.EventRule[];
    },
    { parent }: ChildOptions,
): JobEventResources {
    const { deadLetterQueue } = deps.queues;
    const rule = (suffix: string, description: string, s3Only: boolean) =>
        new aws.cloudwatch.EventRule(
            `${name}-${suffix}`,
            {
                description,
                eventBusName: r.eventBusName,
                eventPattern: deps.launcher.arn.apply((arn) => JSON.stringify(launcherFailurePattern(arn, s3Only))),
                tags: r.tags,
            },
            { parent },
        );
    const launcherFailures = rule("launcher-failures", `Dead-letters the ${name} launcher's failed invocations`, false);
    const launcherFailureEvents = rule("launcher-failure-events", `Job Failed events for the jobs of the ${name} launcher's failed invocations`, true);

    const deadLetterPolicy = new aws.sqs.QueuePolicy(
        `${name}-dlq-policy`,
        {
            queueUrl: deadLetterQueue.url,
            policy: pulumi.jsonStringify(
                deadLetterQueuePolicy({
                    deadLetterQueueArn: deadLetterQueue.arn,
                    ruleArn: [launcherFailures.arn, ...deps.deadLetterRules.map((x) => x.arn)],
                }),
            ),
        },
        { parent },
    );
    new aws.cloudwatch.EventTarget(
        `${name}-launcher-failures-target`,
        { rule: launcherFailures.name, eventBusName: r.eventBusName, arn: deadLetterQueue.arn, inputTransformer: RECORD_TO_DLQ },
        { parent, dependsOn: [deadLetterPolicy] },
    );
    routeToLauncher(name, "launcher-failure-events", launcherFailureEvents, r.eventBusName, deps.launcher, parent);
    return { launcherFailures, launcherFailureEvents, deadLetterPolicy };
}

/** A rule's events → the launcher (asynchronous invocation), with EventBridge's permission from exactly that rule. */
export function routeToLauncher(
    name: string,
    suffix: string,
    rule: aws.cloudwatch.EventRule,
    eventBusName: pulumi.Input<string> | undefined,
    launcher: aws.lambda.Function,
    parent: pulumi.Resource,
): aws.cloudwatch.EventTarget {
    const permission = new aws.lambda.Permission(
        `${name}-${suffix}-permission`,
        { action: "lambda:InvokeFunction", function: launcher.name, principal: "events.amazonaws.com", sourceArn: rule.arn },
        { parent },
    );
    return new aws.cloudwatch.EventTarget(
        `${name}-${suffix}-launcher-target`,
        { rule: rule.name, ...(eventBusName !== undefined ? { eventBusName } : {}), arn: launcher.arn },
        { parent, dependsOn: [permission] },
    );
}
