/**
 * Per-job mode: one task per job, the job passed as container environment overrides. There is no queue behind a job:
 * when ECS accepts a task but cannot start it (image pull, ENI or secrets failures: stop code TaskFailedToStart),
 * EventBridge hands ECS's event (on the default bus, where ECS sends its events) to the dead-letter queue as
 * `{ bucket, key, reason, ... }`, taken from the task's `JOB_BUCKET`/`JOB_KEY` overrides and its `stoppedReason`, and
 * to the launcher, which publishes the job's `Job Failed` event (failureClass `not-started`). The worker dead-letters
 * jobs that fail or are interrupted once it runs, publishes their events and says so by its exit code; every other
 * stop of a task (the rule `${name}-task-stopped`: any stop code but TaskFailedToStart, e.g. EssentialContainerExited
 * after an out-of-memory kill or a crash) goes to the launcher, which dead-letters the job and publishes its
 * `Job Failed` (failureClass `task-stopped`) unless the worker container's exit code says it settled the job
 * (`SETTLED_EXIT_CODES`).
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
                eventPattern: pulumi.jsonStringify(stoppedTaskPattern(cluster.arn, startedByOf(name), { stopCode: ["TaskFailedToStart"] })),
                tags: r.tags,
            },
            { parent },
        );
        return { startFailureRule: rule };
    },
    afterLauncher(name, { r, cluster: { cluster }, queues: { deadLetterQueue }, launcher, jobEvents, beforeLauncher }, { parent }) {
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
        // Every other stop of this worker's tasks (stopped with any other stop code, or none): the launcher ends the job
        // unless the worker's exit code says it settled it.
        const stopped = new aws.cloudwatch.EventRule(
            `${name}-task-stopped`,
            {
                description: `Ends ${name} jobs whose task stopped without settling them`,
                eventPattern: pulumi.jsonStringify(taskStoppedPattern(cluster.arn, startedByOf(name))),
                tags: r.tags,
            },
            { parent },
        );
        routeToLauncher(name, "task-stopped", stopped, undefined, launcher.launcher, parent);
        return {};
    },
};

/**
 * ECS's "ECS Task State Change" of a per-job task of this worker that stopped, other than TaskFailedToStart (which the
 * start-failure rule handles): a stop code of another value, or none at all.
 */
export function taskStoppedPattern(clusterArn: pulumi.Input<string>, startedBy: string) {
    return stoppedTaskPattern(clusterArn, startedBy, { $or: [{ stopCode: [{ "anything-but": ["TaskFailedToStart"] }] }, { stopCode: [{ exists: false }] }] });
}

/** ECS's "ECS Task State Change" of a task of this worker (`startedBy`) that stopped, `stop` saying how. */
function stoppedTaskPattern(clusterArn: pulumi.Input<string>, startedBy: string, stop: object) {
    return {
        source: ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        detail: { clusterArn: [clusterArn], startedBy: [startedBy], lastStatus: ["STOPPED"], ...stop },
    };
}
