/**
 * Per-job mode: one task per job, the job passed as container environment overrides. There is no queue behind a job:
 * when ECS accepts a task but cannot start it (image pull, ENI or secrets failures: stop code TaskFailedToStart),
 * EventBridge hands ECS's event (on the default bus, where ECS sends its events) to the dead-letter queue as
 * `{ bucket, key, reason, ... }`, taken from the task's `JOB_BUCKET`/`JOB_KEY` overrides and its `stoppedReason`, and
 * to the launcher, which publishes the job's `Job Failed` event (failureClass `not-started`). (The worker dead-letters
 * jobs that fail or are interrupted once it runs, and publishes their events.)
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

import { routeToLauncher } from "../job-events";
import { startedByOf } from "../launcher";
import type { LaunchModeSteps } from "./index";

export const perJob: LaunchModeSteps = {
    beforeLauncher(name, { r, cluster: { cluster } }, { parent }) {
        const rule = new aws.cloudwatch.EventRule(
            `${name}-start-failures`,
            {
                description: `Dead-letters ${name} jobs whose task failed to start`,
                eventPattern: pulumi.jsonStringify({
                    source: ["aws.ecs"],
                    "detail-type": ["ECS Task State Change"],
                    detail: {
                        clusterArn: [cluster.arn],
                        startedBy: [startedByOf(name)],
                        lastStatus: ["STOPPED"],
                        stopCode: ["TaskFailedToStart"],
                    },
                }),
                tags: r.tags,
            },
            { parent },
        );
        return { startFailureRule: rule };
    },
    afterLauncher(name, { queues: { deadLetterQueue }, launcher, jobEvents, beforeLauncher }, { parent }) {
        const rule = beforeLauncher.startFailureRule!;
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
            { parent, dependsOn: [jobEvents.deadLetterPolicy] },
        );
        routeToLauncher(name, "start-failures", rule, undefined, launcher.launcher, parent);
        return {};
    },
};
