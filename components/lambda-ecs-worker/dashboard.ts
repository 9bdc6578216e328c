/**
 * Step "dashboard": one CloudWatch dashboard per worker, and the alarms on the launcher and on tasks that fail to
 * start. The dashboard's body is a pure function of plain names ({@link dashboardBody}, unit-tested without mocks):
 *  - jobs waiting and in flight, age of the oldest job, dead-letter depth (AWS/SQS, QueueName);
 *  - running tasks (ECS/ContainerInsights: the service's RunningTaskCount in service mode, the cluster's TaskCount
 *    otherwise; both need `containerInsights`);
 *  - job seconds p50/p90/max, jobs succeeded and failed (the worker's EMF metrics, `METRICS` in
 *    functions/launcher-settings.ts, dimension Worker), tasks not started and Spot fallbacks (the launcher's);
 *  - launcher errors and throttles (AWS/Lambda, FunctionName).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

import { LaunchMode, METRICS } from "../../functions/launcher-settings";
import { ChildOptions, ResolvedLambdaEcsWorkerArgs } from "./args";

/** What the dashboard names: this worker's queues, cluster, service, launcher, metrics. Plain strings. */
export interface DashboardNames {
    region: string;
    launchMode: LaunchMode;
    /** WORKER_NAME: the Worker dimension of the EMF metrics. */
    worker: string;
    namespace: string;
    queueName: string;
    deadLetterQueueName: string;
    /** The intake queue (uploads not yet turned into jobs). */
    intakeQueueName: string;
    clusterName: string;
    /** Service mode only. */
    serviceName?: string;
    launcherFunctionName: string;
}

type MetricRow = (string | { label?: string; stat?: string; id?: string; visible?: boolean; expression?: string })[];

const WIDTH = 8;
const HEIGHT = 6;

/** The CloudWatch dashboard body (the `DashboardBody` JSON structure) of one worker. */
export function dashboardBody(n: DashboardNames): { widgets: object[] } {
    const sqs = (metric: string, queue: string, label: string): MetricRow => ["AWS/SQS", metric, "QueueName", queue, { label }];
    const own = (metric: string, stat: string, label: string): MetricRow => [n.namespace, metric, METRICS.workerDimension, n.worker, { stat, label }];
    const lambda = (metric: string): MetricRow => ["AWS/Lambda", metric, "FunctionName", n.launcherFunctionName, { label: metric, stat: "Sum" }];
    const tasks: MetricRow =
        n.serviceName !== undefined
            ? ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", n.clusterName, "ServiceName", n.serviceName, { label: "running tasks" }]
            : ["ECS/ContainerInsights", "TaskCount", "ClusterName", n.clusterName, { label: "tasks" }];
    const widgets: { title: string; metrics: MetricRow[]; stat: string }[] = [
        {
            title: "Jobs waiting and in flight",
            stat: "Maximum",
            metrics: [
                sqs("ApproximateNumberOfMessagesVisible", n.queueName, "waiting"),
                sqs("ApproximateNumberOfMessagesNotVisible", n.queueName, "in flight"),
                sqs("ApproximateNumberOfMessagesVisible", n.intakeQueueName, "uploads not yet queued"),
            ],
        },
        {
            title: "Age of the oldest job (s)",
            stat: "Maximum",
            metrics: [sqs("ApproximateAgeOfOldestMessage", n.queueName, "oldest job"), sqs("ApproximateAgeOfOldestMessage", n.intakeQueueName, "oldest upload not yet queued")],
        },
        { title: "Dead-letter queue", stat: "Maximum", metrics: [sqs("ApproximateNumberOfMessagesVisible", n.deadLetterQueueName, "dead-lettered jobs")] },
        { title: "Running tasks", stat: "Maximum", metrics: [tasks] },
        {
            title: "Job seconds",
            stat: "p50",
            metrics: [own(METRICS.jobSeconds, "p50", "p50"), own(METRICS.jobSeconds, "p90", "p90"), own(METRICS.jobSeconds, "Maximum", "max")],
        },
        {
            title: "Jobs succeeded and failed",
            stat: "Sum",
            metrics: [
                own(METRICS.jobsSucceeded, "Sum", "succeeded"),
                own(METRICS.jobsFailed, "Sum", "failed"),
                ...(n.launchMode === "service" ? [] : [own(METRICS.tasksNotStarted, "Sum", "tasks not started"), own(METRICS.spotFallbacks, "Sum", "Spot → on-demand")]),
            ],
        },
        { title: "Launcher errors and throttles", stat: "Sum", metrics: [lambda("Errors"), lambda("Throttles"), lambda("Invocations")] },
    ];
    return {
        widgets: widgets.map((w, i) => ({
            type: "metric",
            x: (i % 3) * WIDTH,
            y: Math.floor(i / 3) * HEIGHT,
            width: WIDTH,
            height: HEIGHT,
            properties: { title: w.title, region: n.region, view: "timeSeries", stacked: false, period: 60, stat: w.stat, metrics: w.metrics },
        })),
    };
}

/** A dashboard name from the project, stack and worker (unique per account and region; CloudWatch's characters). */
export function dashboardNameOf(project: string, stack: string, name: string): string {
    return `${project}-${stack}-${name}`.replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 255);
}

export interface DashboardResources {
    dashboard: aws.cloudwatch.Dashboard;
    /** Fires when the launcher's invocations fail (each failure is retried, then dead-lettered). */
    launcherErrorsAlarm: aws.cloudwatch.MetricAlarm;
    /** Drain and per-job: fires when tasks could not be started (the launcher's TasksNotStarted; per-job also ECS's TaskFailedToStart). */
    startFailuresAlarm?: aws.cloudwatch.MetricAlarm;
}

/**
 * The metric queries of the "tasks fail to start" alarm: the launcher's TasksNotStarted (RunTask refused after its
 * retries), and in per-job mode also the start-failure rule's matches (ECS accepted the task, then could not start
 * it), each missing point read as 0.
 */
export function startFailureQueries(p: { namespace: string; worker: pulumi.Input<string>; startFailureRuleName?: pulumi.Input<string> }) {
    const metric = (id: string, namespace: string, metricName: string, dimensions: Record<string, pulumi.Input<string>>) => ({
        id,
        metric: { namespace, metricName, dimensions, period: 60, stat: "Sum" },
    });
    return [
        metric("notStarted", p.namespace, METRICS.tasksNotStarted, { [METRICS.workerDimension]: p.worker }),
        ...(p.startFailureRuleName !== undefined ? [metric("failedToStart", "AWS/Events", "TriggeredRules", { RuleName: p.startFailureRuleName })] : []),
        {
            id: "startFailures",
            expression: p.startFailureRuleName !== undefined ? "FILL(notStarted, 0) + FILL(failedToStart, 0)" : "FILL(notStarted, 0)",
            label: "Tasks that could not be started",
            returnData: true,
        },
    ];
}

export function createDashboard(
    name: string,
    r: ResolvedLambdaEcsWorkerArgs,
    deps: {
        region: pulumi.Input<string>;
        queueName: pulumi.Input<string>;
        deadLetterQueueName: pulumi.Input<string>;
        intakeQueueName: pulumi.Input<string>;
        clusterName: pulumi.Input<string>;
        serviceName?: pulumi.Input<string>;
        launcherFunctionName: pulumi.Input<string>;
        startFailureRuleName?: pulumi.Input<string>;
    },
    { parent }: ChildOptions,
): DashboardResources {
    const dashboard = new aws.cloudwatch.Dashboard(
        `${name}-dashboard`,
        {
            dashboardName: dashboardNameOf(pulumi.getProject(), pulumi.getStack(), name),
            dashboardBody: pulumi
                .all([deps.region, deps.queueName, deps.deadLetterQueueName, deps.intakeQueueName, deps.clusterName, deps.serviceName, deps.launcherFunctionName])
                .apply(([region, queueName, deadLetterQueueName, intakeQueueName, clusterName, serviceName, launcherFunctionName]) =>
                    JSON.stringify(
                        dashboardBody({
                            region,
                            launchMode: r.launchMode,
                            worker: name,
                            namespace: METRICS.namespace,
                            queueName,
                            deadLetterQueueName,
                            intakeQueueName,
                            clusterName,
                            ...(serviceName !== undefined ? { serviceName } : {}),
                            launcherFunctionName,
                        }),
                    ),
                ),
        },
        { parent },
    );
    const alarm = (suffix: string, description: string, args: Partial<aws.cloudwatch.MetricAlarmArgs>) =>
        new aws.cloudwatch.MetricAlarm(
            `${name}-${suffix}`,
            {
                alarmDescription: description,
                comparisonOperator: "GreaterThanThreshold",
                threshold: 0,
                evaluationPeriods: 1,
                treatMissingData: "notBreaching",
                alarmActions: r.alarmActions,
                tags: r.tags,
                ...args,
            },
            { parent },
        );
    const launcherErrorsAlarm = alarm("launcher-errors-alarm", `The ${name} launcher failed (Lambda retries it, then dead-letters the event)`, {
        namespace: "AWS/Lambda",
        metricName: "Errors",
        dimensions: { FunctionName: deps.launcherFunctionName },
        statistic: "Sum",
        period: 60,
    });
    const startFailuresAlarm =
        r.launchMode === "service"
            ? undefined
            : alarm("start-failures-alarm", `${name} tasks could not be started (capacity, image pull, network): see the launcher's log`, {
                  metricQueries: startFailureQueries({ namespace: METRICS.namespace, worker: name, startFailureRuleName: deps.startFailureRuleName }),
              });
    return { dashboard, launcherErrorsAlarm, startFailuresAlarm };
}
