/**
 * Service mode: the launcher queues jobs and starts nothing; an ECS service consumes the queue, scaled on its backlog
 * (visible + in flight): out by steps as jobs arrive, to zero when the backlog has been empty for five minutes.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

import type { LaunchModeSteps, ModeContext } from "./index";

export const service: LaunchModeSteps = {
    beforeLauncher(name, ctx, { parent }) {
        const { r, cluster, network } = ctx;
        const ecsService = new aws.ecs.Service(
            `${name}-service`,
            {
                cluster: cluster.cluster.arn,
                taskDefinition: ctx.task.taskDefinition.arn,
                desiredCount: 0,
                capacityProviderStrategies: cluster.strategy,
                networkConfiguration: {
                    subnets: network.subnetIds,
                    securityGroups: network.securityGroupIds,
                    assignPublicIp: network.assignPublicIp,
                },
                propagateTags: "TASK_DEFINITION",
                tags: r.tags,
            },
            { parent, dependsOn: [cluster.capacityProviders], ignoreChanges: ["desiredCount"] },
        );
        createQueueDepthScaling(name, ctx, ecsService, parent);
        return { service: ecsService };
    },
};

function createQueueDepthScaling(name: string, ctx: ModeContext, ecsService: aws.ecs.Service, parent: pulumi.Resource): void {
    const { maxTasks, tags } = ctx.r;
    const target = new aws.appautoscaling.Target(
        `${name}-scaling-target`,
        {
            serviceNamespace: "ecs",
            scalableDimension: "ecs:service:DesiredCount",
            resourceId: pulumi.interpolate`service/${ctx.cluster.cluster.name}/${ecsService.name}`,
            minCapacity: 0,
            maxCapacity: maxTasks,
            tags,
        },
        { parent },
    );
    for (const step of scalingSteps(name, maxTasks, ctx.queues.queue.name)) {
        const policy = new aws.appautoscaling.Policy(
            `${name}-${step.policy}`,
            {
                policyType: "StepScaling",
                resourceId: target.resourceId,
                scalableDimension: target.scalableDimension,
                serviceNamespace: target.serviceNamespace,
                stepScalingPolicyConfiguration: {
                    adjustmentType: step.adjustmentType,
                    cooldown: 60,
                    metricAggregationType: "Maximum",
                    stepAdjustments: step.stepAdjustments,
                },
            },
            { parent },
        );
        new aws.cloudwatch.MetricAlarm(
            `${name}-${step.alarm}`,
            {
                comparisonOperator: step.comparisonOperator,
                threshold: 0,
                evaluationPeriods: step.evaluationPeriods,
                metricQueries: step.metricQueries,
                alarmActions: [policy.arn],
                alarmDescription: step.description,
                tags,
            },
            { parent },
        );
    }
}

/**
 * The two step policies and their alarms. Scale out while jobs wait with nobody to take them, adding tasks (never
 * removing busy ones). Scale in only when nothing is waiting or in flight, so no task is stopped in the middle of a job.
 */
function scalingSteps(name: string, maxTasks: number, queueName: pulumi.Output<string>) {
    const half = Math.max(1, Math.ceil(maxTasks / 2));
    const metric = (id: string, metricName: string) => ({
        id,
        metric: { namespace: "AWS/SQS", metricName, dimensions: { QueueName: queueName }, period: 60, stat: "Maximum" },
    });
    return [
        {
            policy: "scale-out",
            alarm: "backlog-high",
            comparisonOperator: "GreaterThanThreshold",
            evaluationPeriods: 1,
            adjustmentType: "ChangeInCapacity",
            metricQueries: [{ ...metric("waiting", "ApproximateNumberOfMessagesVisible"), returnData: true }],
            description: `Jobs are waiting for the ${name} worker: add tasks`,
            stepAdjustments: [
                { metricIntervalLowerBound: "0", metricIntervalUpperBound: "10", scalingAdjustment: 1 },
                { metricIntervalLowerBound: "10", metricIntervalUpperBound: "50", scalingAdjustment: half },
                { metricIntervalLowerBound: "50", scalingAdjustment: maxTasks },
            ],
        },
        {
            policy: "scale-in",
            alarm: "backlog-empty",
            comparisonOperator: "LessThanOrEqualToThreshold",
            evaluationPeriods: 5,
            adjustmentType: "ExactCapacity",
            metricQueries: [
                metric("visible", "ApproximateNumberOfMessagesVisible"),
                metric("inflight", "ApproximateNumberOfMessagesNotVisible"),
                { id: "backlog", expression: "visible + inflight", label: "Jobs queued or running", returnData: true },
            ],
            description: `No job for the ${name} worker for five minutes: scale to zero`,
            stepAdjustments: [{ metricIntervalUpperBound: "0", scalingAdjustment: 0 }],
        },
    ];
}
