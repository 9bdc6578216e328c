/**
 * The pure parts of issue #11's component half, WITHOUT Pulumi mocks: the dashboard body, the scaling and alarm
 * metric math, the service's capacity strategy, the launcher-failure event pattern, and the metric names shared
 * with the worker (test/component.test.ts checks the same resources as the stack declares them).
 */
import { expect } from "chai";

import { ROUTED_EVENTS } from "../functions/launcher-settings";
import { backlogPerTask, eventSourceOf, resolveArgs } from "../components/lambda-ecs-worker/args";
import { dashboardBody, dashboardNameOf, DashboardNames, startFailureQueries } from "../components/lambda-ecs-worker/dashboard";
import { eventBusArnOf, launcherFailurePattern, RECORD_TO_DLQ } from "../components/lambda-ecs-worker/job-events";
import { backlogPerTaskMetrics, serviceCapacityStrategy } from "../components/lambda-ecs-worker/modes/service";
import { EVENT_SOURCE_PATTERN } from "../components/lambda-ecs-worker/validate";

const NAMES: DashboardNames = {
    region: "eu-west-1",
    launchMode: "drain",
    worker: "render",
    namespace: "LambdaEcsWorker",
    queueName: "render-queue-abc",
    deadLetterQueueName: "render-dlq-abc",
    intakeQueueName: "render-intake-abc",
    clusterName: "render-cluster-abc",
    launcherFunctionName: "render-launcher-abc",
};

/** Every metric row of a body as "namespace metric dim=value,..." (options dropped). */
function rows(body: { widgets: any[] }): string[] {
    return body.widgets.flatMap((w) =>
        w.properties.metrics.map((m: any[]) => {
            const plain = m.filter((x) => typeof x === "string");
            const dims = [];
            for (let i = 2; i < plain.length; i += 2) dims.push(`${plain[i]}=${plain[i + 1]}`);
            const stat = (m.find((x) => typeof x === "object") ?? {}).stat ?? w.properties.stat;
            return `${plain[0]} ${plain[1]} ${dims.join(",")} ${stat}`;
        }),
    );
}

describe("dashboardBody (pure)", () => {
    it("GIVEN a drain worker THEN it names this worker's queues, cluster, launcher and metrics, and nothing else", () => {
        const body = dashboardBody(NAMES);
        expect(body.widgets.map((w: any) => w.properties.title)).to.deep.equal([
            "Jobs waiting and in flight",
            "Age of the oldest job (s)",
            "Dead-letter queue",
            "Running tasks",
            "Job seconds",
            "Jobs succeeded and failed",
            "Launcher errors and throttles",
        ]);
        expect(rows(body)).to.deep.equal([
            "AWS/SQS ApproximateNumberOfMessagesVisible QueueName=render-queue-abc Maximum",
            "AWS/SQS ApproximateNumberOfMessagesNotVisible QueueName=render-queue-abc Maximum",
            "AWS/SQS ApproximateNumberOfMessagesVisible QueueName=render-intake-abc Maximum",
            "AWS/SQS ApproximateAgeOfOldestMessage QueueName=render-queue-abc Maximum",
            "AWS/SQS ApproximateAgeOfOldestMessage QueueName=render-intake-abc Maximum",
            "AWS/SQS ApproximateNumberOfMessagesVisible QueueName=render-dlq-abc Maximum",
            "ECS/ContainerInsights TaskCount ClusterName=render-cluster-abc Maximum",
            "LambdaEcsWorker JobSeconds Worker=render p50",
            "LambdaEcsWorker JobSeconds Worker=render p90",
            "LambdaEcsWorker JobSeconds Worker=render Maximum",
            "LambdaEcsWorker JobsSucceeded Worker=render Sum",
            "LambdaEcsWorker JobsFailed Worker=render Sum",
            "LambdaEcsWorker TasksNotStarted Worker=render Sum",
            "LambdaEcsWorker SpotFallbacks Worker=render Sum",
            "AWS/Lambda Errors FunctionName=render-launcher-abc Sum",
            "AWS/Lambda Throttles FunctionName=render-launcher-abc Sum",
            "AWS/Lambda Invocations FunctionName=render-launcher-abc Sum",
        ]);
        for (const w of body.widgets as any[]) {
            expect(w).to.include({ type: "metric", width: 8, height: 6 });
            expect(w.properties).to.include({ region: "eu-west-1", period: 60, view: "timeSeries" });
        }
        // A 3-column grid, no two widgets on one spot.
        expect(new Set(body.widgets.map((w: any) => `${w.x},${w.y}`)).size).to.equal(body.widgets.length);
    });

    it("GIVEN a service worker THEN running tasks are the service's, and no launcher start metrics (the service starts tasks)", () => {
        const r = rows(dashboardBody({ ...NAMES, launchMode: "service", serviceName: "render-service-abc" }));
        expect(r).to.include("ECS/ContainerInsights RunningTaskCount ClusterName=render-cluster-abc,ServiceName=render-service-abc Maximum");
        expect(r.filter((x) => / (TasksNotStarted|SpotFallbacks|TaskCount) /.test(x))).to.deep.equal([]);
    });

    it("names the dashboard after project, stack and worker, in CloudWatch's characters", () => {
        expect(dashboardNameOf("proj", "dev", "render")).to.equal("proj-dev-render");
        expect(dashboardNameOf("my.proj", "dev/eu", "a b")).to.equal("my-proj-dev-eu-a-b");
    });
});

describe("metric math (pure)", () => {
    it("the start-failure alarm sums the launcher's TasksNotStarted and, per-job, the start-failure rule's matches, missing points as 0", () => {
        const drain = startFailureQueries({ namespace: "LambdaEcsWorker", worker: "render" });
        expect(drain.map((q: any) => q.expression ?? `${q.metric.namespace}/${q.metric.metricName}`)).to.deep.equal([
            "LambdaEcsWorker/TasksNotStarted",
            "FILL(notStarted, 0)",
        ]);
        const perJob = startFailureQueries({ namespace: "LambdaEcsWorker", worker: "job", startFailureRuleName: "job-start-failures-x" });
        expect(perJob[1]).to.deep.equal({
            id: "failedToStart",
            metric: { namespace: "AWS/Events", metricName: "TriggeredRules", dimensions: { RuleName: "job-start-failures-x" }, period: 60, stat: "Sum" },
        });
        expect(perJob[2]).to.include({ expression: "FILL(notStarted, 0) + FILL(failedToStart, 0)", returnData: true });
        // Exactly one query returns data (CloudWatch requires it of an alarm).
        expect(perJob.filter((q: any) => q.returnData)).to.have.length(1);
    });

    it("backlog per task: jobs waiting / running tasks; with no task running, the backlog itself (no division by zero)", () => {
        const m = backlogPerTaskMetrics({ queueName: "q", clusterName: "c", serviceName: "s" });
        expect(m.map((x: any) => x.id)).to.deep.equal(["visible", "running", "backlogPerTask"]);
        expect(m.filter((x: any) => x.returnData)).to.have.length(1);
        const expr = (m[2] as any).expression as string;
        expect(expr).to.equal("IF(FILL(running, 0) > 0, visible / FILL(running, 0), visible)");
    });

    it("the target is acceptableWaitSeconds / expectedJobSeconds jobs per task, at least 1", () => {
        expect(backlogPerTask(resolveArgs({ image: { context: "." } }))).to.equal(5);
        expect(backlogPerTask({ acceptableWaitSeconds: 600, expectedJobSeconds: 120 })).to.equal(5);
        expect(backlogPerTask({ acceptableWaitSeconds: 30, expectedJobSeconds: 600 })).to.equal(1);
        expect(backlogPerTask({ acceptableWaitSeconds: 100, expectedJobSeconds: 30 })).to.equal(3);
    });
});

describe("service capacity (pure)", () => {
    it("keeps an on-demand base of at least one task whenever Spot is used, and leaves on-demand strategies alone", () => {
        expect(serviceCapacityStrategy([{ capacityProvider: "FARGATE", weight: 1 }])).to.deep.equal([{ capacityProvider: "FARGATE", weight: 1 }]);
        expect(serviceCapacityStrategy([{ capacityProvider: "FARGATE_SPOT", weight: 1 }])).to.deep.equal([
            { capacityProvider: "FARGATE", weight: 0, base: 1 },
            { capacityProvider: "FARGATE_SPOT", weight: 1 },
        ]);
        expect(
            serviceCapacityStrategy([
                { capacityProvider: "FARGATE", weight: 1, base: 0 },
                { capacityProvider: "FARGATE_SPOT", weight: 3 },
            ]),
        ).to.deep.equal([
            { capacityProvider: "FARGATE", weight: 1, base: 1 },
            { capacityProvider: "FARGATE_SPOT", weight: 3 },
        ]);
        expect(
            serviceCapacityStrategy([
                { capacityProvider: "FARGATE", weight: 1, base: 2 },
                { capacityProvider: "FARGATE_SPOT", weight: 3 },
            ])[0],
        ).to.deep.equal({ capacityProvider: "FARGATE", weight: 1, base: 2 });
    });
});

describe("job event routing (pure)", () => {
    const FN = "arn:aws:lambda:us-east-1:123456789012:function:render-launcher-abc";

    it("matches Lambda's failure events of exactly this launcher, with or without a qualifier; the launcher's rule only invocations of no EventBridge event", () => {
        expect(launcherFailurePattern(FN, false)).to.deep.equal({
            source: ["lambda"],
            "detail-type": ["Lambda Function Invocation Result - Failure"],
            detail: { requestContext: { functionArn: [FN, { prefix: `${FN}:` }] } },
        });
        // An S3 notification has no `source`; every EventBridge event (tick, routed ECS or failure event) has one.
        expect((launcherFailurePattern(FN, true) as any).detail.requestPayload).to.deep.equal({ source: [{ exists: false }] });
        expect(ROUTED_EVENTS.launcherFailure).to.include({ source: "lambda", detailType: "Lambda Function Invocation Result - Failure" });
    });

    it("hands the dead-letter queue the invocation record itself (the event's detail), as Lambda's SQS destination did", () => {
        expect(RECORD_TO_DLQ).to.deep.equal({ inputPaths: { record: "$.detail" }, inputTemplate: "<record>" });
    });

    it("derives the event source from the worker's name, in EventBridge's characters", () => {
        expect(eventSourceOf("render", {})).to.equal("lambda-ecs-worker.render");
        expect(eventSourceOf("my worker!", {})).to.equal("lambda-ecs-worker.my-worker-");
        expect(eventSourceOf("render", { eventSource: "com.example.render" })).to.equal("com.example.render");
        expect(EVENT_SOURCE_PATTERN.test(eventSourceOf("a b:c", {}))).to.equal(true);
    });

    it("turns a bus name into its ARN and keeps an ARN", async () => {
        const { valueOf } = await import("../harness/mocks");
        const { output } = await import("@pulumi/pulumi");
        const w = { partition: output("aws"), region: output("us-east-1"), account: output("123456789012") };
        expect(await valueOf(eventBusArnOf("default", w))).to.equal("arn:aws:events:us-east-1:123456789012:event-bus/default");
        expect(await valueOf(eventBusArnOf("arn:aws:events:eu-west-1:111122223333:event-bus/jobs", w))).to.equal(
            "arn:aws:events:eu-west-1:111122223333:event-bus/jobs",
        );
    });
});
