/**
 * Per-job mode: one task per job, the job passed as container environment overrides. There is no queue behind a job:
 * when ECS accepts a task but cannot start it (image pull, ENI or secrets failures: stop code TaskFailedToStart),
 * EventBridge hands ECS's event to the dead-letter queue as `{ bucket, key, reason, ... }`, taken from the task's
 * `JOB_BUCKET`/`JOB_KEY` overrides and its `stoppedReason`. (The worker dead-letters jobs that fail or are
 * interrupted once it runs.)
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

import { deadLetterQueuePolicy } from "../policies";
import type { LaunchModeSteps } from "./index";

export const perJob: LaunchModeSteps = {
    afterLauncher(name, { r, cluster: { cluster }, queues: { deadLetterQueue }, launcher: { startedBy } }, { parent }) {
        const rule = new aws.cloudwatch.EventRule(
            `${name}-start-failures`,
            {
                description: `Dead-letters ${name} jobs whose task failed to start`,
                eventPattern: pulumi.jsonStringify({
                    source: ["aws.ecs"],
                    "detail-type": ["ECS Task State Change"],
                    detail: {
                        clusterArn: [cluster.arn],
                        startedBy: [startedBy],
                        lastStatus: ["STOPPED"],
                        stopCode: ["TaskFailedToStart"],
                    },
                }),
                tags: r.tags,
            },
            { parent },
        );
        const policy = new aws.sqs.QueuePolicy(
            `${name}-dlq-policy`,
            {
                queueUrl: deadLetterQueue.url,
                policy: pulumi.jsonStringify(deadLetterQueuePolicy({ deadLetterQueueArn: deadLetterQueue.arn, ruleArn: rule.arn })),
            },
            { parent },
        );
        // The launcher passes JOB_BUCKET then JOB_KEY as the container's environment overrides.
        const override = "$.detail.overrides.containerOverrides[0].environment";
        new aws.cloudwatch.EventTarget(
            `${name}-start-failures-target`,
            {
                rule: rule.name,
                arn: deadLetterQueue.arn,
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
            { parent, dependsOn: [policy] },
        );
        return {};
    },
};
