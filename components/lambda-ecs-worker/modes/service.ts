/**
 * Service mode: the launcher queues jobs and wakes the service (raises its desired count on each upload, never above
 * maxTasks, never lowering it); an ECS service consumes the queue, scaled by Application Auto Scaling:
 *  - target tracking on the backlog per task (jobs waiting ÷ running tasks, metric math), the target being
 *    `acceptableWaitSeconds / expectedJobSeconds` jobs per task: out as the backlog grows, in as it shrinks. Scale-in
 *    stops only idle tasks: the worker protects its task (ECS task scale-in protection) while it has a job.
 *  - target tracking multiplies the current capacity, so it can never leave zero: the step policy `scale-out` adds
 *    tasks when jobs wait while no task runs (the CloudWatch path; the launcher's wake is the fast one, within one
 *    invocation instead of SQS's metric delay of one minute, up to 15 after a quiet period);
 *  - the step policy `scale-in` sets zero once nothing has been waiting or in flight for five minutes.
 * With Spot capacity the service keeps an on-demand base of one task (the first task always starts).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

import { backlogPerTask } from "../args";
import { CapacityProviderStrategy } from "../cluster";
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
                capacityProviderStrategies: serviceCapacityStrategy(cluster.strategy),
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

/**
 * The service's capacity provider strategy: the cluster's, with an on-demand base of at least one task when it uses
 * FARGATE_SPOT (a service scaled up from zero always gets its first task, Spot capacity or not).
 */
export function serviceCapacityStrategy(strategy: CapacityProviderStrategy): CapacityProviderStrategy {
    if (!strategy.some((s) => s.capacityProvider === "FARGATE_SPOT")) return strategy;
    const onDemand = strategy.find((s) => s.capacityProvider === "FARGATE");
    return [
        { capacityProvider: "FARGATE", weight: onDemand?.weight ?? 0, base: Math.max(1, onDemand?.base ?? 0) },
        ...strategy.filter((s) => s.capacityProvider !== "FARGATE"),
    ];
}

/**
 * The target tracking policy's metric: jobs waiting per running task. ECS reports no RunningTaskCount while no task
 * runs, so the missing points read as 0 tasks, and with 0 tasks the backlog per task is the backlog itself (never a
 * division by zero).
 */
export function backlogPerTaskMetrics(p: { queueName: pulumi.Input<string>; clusterName: pulumi.Input<string>; serviceName: pulumi.Input<string> }) {
    return [
        {
            id: "visible",
            label: "Jobs waiting",
            returnData: false,
            metricStat: {
                metric: { namespace: "AWS/SQS", metricName: "ApproximateNumberOfMessagesVisible", dimensions: [{ name: "QueueName", value: p.queueName }] },
                stat: "Sum",
            },
        },
        {
            id: "running",
            label: "Running tasks",
            returnData: false,
            metricStat: {
                metric: {
                    namespace: "ECS/ContainerInsights",
                    metricName: "RunningTaskCount",
                    dimensions: [
                        { name: "ClusterName", value: p.clusterName },
                        { name: "ServiceName", value: p.serviceName },
                    ],
                },
                stat: "Average",
            },
        },
        {
            id: "backlogPerTask",
            label: "Jobs waiting per running task",
            expression: "IF(FILL(running, 0) > 0, visible / FILL(running, 0), visible)",
            returnData: true,
        },
    ];
}

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
    new aws.appautoscaling.Policy(
        `${name}-backlog-per-task`,
        {
            policyType: "TargetTrackingScaling",
            resourceId: target.resourceId,
            scalableDimension: target.scalableDimension,
            serviceNamespace: target.serviceNamespace,
            targetTrackingScalingPolicyConfiguration: {
                targetValue: backlogPerTask(ctx.r),
                scaleOutCooldown: 60,
                scaleInCooldown: 120,
                customizedMetricSpecification: {
                    metrics: backlogPerTaskMetrics({ queueName: ctx.queues.queue.name, clusterName: ctx.cluster.cluster.name, serviceName: ecsService.name }),
                },
            },
        },
        { parent },
    );
    for (const step of scalingSteps(name, maxTasks, ctx.queues.queue.name, ctx.cluster.cluster.name, ecsService.name)) {
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
 * The two step policies and their alarms. Scale out from zero while jobs wait with no task running (target tracking
 * can't leave zero). Scale in to zero only when nothing is waiting or in flight, so no task is stopped in the middle
 * of a job.
 */
export function scalingSteps(
    name: string,
    maxTasks: number,
    queueName: pulumi.Input<string>,
    clusterName: pulumi.Input<string>,
    serviceName: pulumi.Input<string>,
) {
    const half = Math.max(1, Math.ceil(maxTasks / 2));
    const metric = (id: string, metricName: string) => ({
        id,
        metric: { namespace: "AWS/SQS", metricName, dimensions: { QueueName: queueName }, period: 60, stat: "Maximum" },
    });
    const running = {
        id: "running",
        metric: {
            namespace: "ECS/ContainerInsights",
            metricName: "RunningTaskCount",
            dimensions: { ClusterName: clusterName, ServiceName: serviceName },
            period: 60,
            stat: "Maximum",
        },
    };
    return [
        {
            policy: "scale-out",
            alarm: "backlog-high",
            comparisonOperator: "GreaterThanThreshold",
            evaluationPeriods: 1,
            adjustmentType: "ChangeInCapacity",
            // Only from zero (target tracking takes over once a task runs): jobs waiting while no task runs.
            metricQueries: [
                metric("waiting", "ApproximateNumberOfMessagesVisible"),
                running,
                { id: "waitingForNone", expression: "IF(FILL(running, 0) == 0, waiting, 0)", label: "Jobs waiting while no task runs", returnData: true },
            ],
            description: `Jobs are waiting for the ${name} worker and no task runs: start tasks`,
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
