/**
 * Drain mode: the launcher starts just enough tasks, each drains the queue and exits. An EventBridge schedule invokes
 * the launcher every `reconcileIntervalMinutes` ("reconcile": the same task-start decision with no new upload), so
 * jobs still get a task after a failed start, a Spot interruption, or an upload that arrived as the last task exited.
 */
import * as aws from "@pulumi/aws";

import type { LaunchModeSteps } from "./index";

export const drain: LaunchModeSteps = {
    afterLauncher(name, { r, launcher: { launcher } }, { parent }) {
        const minutes = r.reconcileIntervalMinutes;
        const schedule = new aws.cloudwatch.EventRule(
            `${name}-reconcile`,
            {
                description: `Starts ${name} worker tasks for jobs left waiting in the queue`,
                scheduleExpression: minutes === 1 ? "rate(1 minute)" : `rate(${minutes} minutes)`,
                tags: r.tags,
            },
            { parent },
        );
        const schedulePermission = new aws.lambda.Permission(
            `${name}-reconcile-permission`,
            {
                action: "lambda:InvokeFunction",
                function: launcher.name,
                principal: "events.amazonaws.com",
                sourceArn: schedule.arn,
            },
            { parent },
        );
        new aws.cloudwatch.EventTarget(
            `${name}-reconcile-target`,
            { rule: schedule.name, arn: launcher.arn },
            { parent, dependsOn: [schedulePermission] },
        );
        return {};
    },
};
