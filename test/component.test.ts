import { FAKE_ACCOUNT, FAKE_REGION, RecordedResource, typeChain } from "../harness/mocks";

import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";

import {
    capacityProviderStrategy,
    ecrRepositoryArn,
    LambdaEcsWorker,
    LambdaEcsWorkerArgs,
    validateLambdaEcsWorkerArgs,
} from "../components";
import { RUNTIME_IMAGE_CONTEXT } from "../components/lambda-ecs-worker/package-root";
import { buildRunTaskInput, parseLauncherSettings } from "../functions/launcher";
import { buildWorker, launcherArchive, one, registrationsSettled } from "../harness/stack";

const COMPONENT = "lambda-ecs-worker:index:LambdaEcsWorker";
const T = {
    bucket: "aws:s3/bucket:Bucket",
    publicAccess: "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    ownership: "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    encryption: "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    lifecycle: "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    bucketPolicy: "aws:s3/bucketPolicy:BucketPolicy",
    notification: "aws:s3/bucketNotification:BucketNotification",
    queue: "aws:sqs/queue:Queue",
    repo: "awsx:ecr:Repository",
    image: "awsx:ecr:Image",
    logGroup: "aws:cloudwatch/logGroup:LogGroup",
    sg: "aws:ec2/securityGroup:SecurityGroup",
    cluster: "aws:ecs/cluster:Cluster",
    capacityProviders: "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders",
    role: "aws:iam/role:Role",
    rolePolicy: "aws:iam/rolePolicy:RolePolicy",
    taskDef: "aws:ecs/taskDefinition:TaskDefinition",
    fn: "aws:lambda/function:Function",
    invokeConfig: "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
    permission: "aws:lambda/permission:Permission",
    service: "aws:ecs/service:Service",
    scalingTarget: "aws:appautoscaling/target:Target",
    scalingPolicy: "aws:appautoscaling/policy:Policy",
    alarm: "aws:cloudwatch/metricAlarm:MetricAlarm",
    eventRule: "aws:cloudwatch/eventRule:EventRule",
    eventTarget: "aws:cloudwatch/eventTarget:EventTarget",
    queuePolicy: "aws:sqs/queuePolicy:QueuePolicy",
    dashboard: "aws:cloudwatch/dashboard:Dashboard",
    table: "aws:dynamodb/table:Table",
    mapping: "aws:lambda/eventSourceMapping:EventSourceMapping",
};

const MINIMAL: LambdaEcsWorkerArgs = { image: { context: "./worker-image" } };
const arn = (service: string, what: string) => `arn:aws:${service}:${FAKE_REGION}:${FAKE_ACCOUNT}:${what}`;
const queueArn = (name: string) => arn("sqs", name);
const ECR_REPO = `arn:aws:ecr:${FAKE_REGION}:${FAKE_ACCOUNT}:repository/render-repo-abc123`;
const FAMILY = "project-test-render";

function names(resources: RecordedResource[]): string[] {
    return resources.map((r) => `${r.type} ${r.name}`).sort();
}

function statements(resources: RecordedResource[], policyName: string): any[] {
    return JSON.parse(one(resources, T.rolePolicy, policyName).inputs.policy).Statement;
}

function allStatements(resources: RecordedResource[]): any[] {
    return resources.filter((r) => r.type === T.rolePolicy).flatMap((r) => JSON.parse(r.inputs.policy).Statement);
}

/** The launcher's statements that start tasks (drain and per-job): run this family on this cluster, tag at launch, pass the two roles. */
function runTaskStatements(name: string): object[] {
    return [
        { Effect: "Allow", Action: "ecs:RunTask", Resource: arn("ecs", `task-definition/project-test-${name}:*`), Condition: { ArnEquals: { "ecs:cluster": arn("ecs", `cluster/${name}-cluster`) } } },
        {
            Effect: "Allow",
            Action: "ecs:TagResource",
            Resource: arn("ecs", `task/${name}-cluster/*`),
            Condition: { StringEquals: { "ecs:CreateAction": "RunTask" } },
        },
        {
            Effect: "Allow",
            Action: "iam:PassRole",
            Resource: [`arn:aws:iam::${FAKE_ACCOUNT}:role/${name}-task-role-0000000`, `arn:aws:iam::${FAKE_ACCOUNT}:role/${name}-execution-role-0000000`],
            Condition: { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } },
        },
    ];
}

const DEFAULT_BUS = arn("events", "event-bus/default");
/** PutEvents on exactly the default bus, for exactly one source and these detail-types. */
function putEvents(source: string, detailTypes: string[]): object {
    return {
        Effect: "Allow",
        Action: "events:PutEvents",
        Resource: DEFAULT_BUS,
        Condition: {
            "ForAllValues:StringEquals": { "events:source": [source], "events:detail-type": detailTypes },
            Null: { "events:source": "false", "events:detail-type": "false" },
        },
    };
}
/** The worker's: one Job Succeeded / Job Failed per job, with its own source. */
function taskPutEvents(name: string): object {
    return putEvents(`lambda-ecs-worker.${name}`, ["Job Succeeded", "Job Failed"]);
}

/**
 * The launcher's statements every mode has (after the intake's and its mode's): dead-letter (an intake record's jobs on
 * its last receive; per-job start failures), Lambda's failed-invocation events on the bus (its on-failure
 * destination), Job Failed with its own source, its logs.
 */
function launcherCommonStatements(name: string): object[] {
    return [
        { Effect: "Allow", Action: "sqs:SendMessage", Resource: queueArn(`${name}-dlq-0000000`) },
        putEvents("lambda", ["Lambda Function Invocation Result - Failure"]),
        putEvents(`lambda-ecs-worker.${name}`, ["Job Failed"]),
        { Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: `${arn("logs", `log-group:${name}-launcher-logs-0000000`)}:*` },
    ];
}

/** Every mode (issue #19): Lambda's event source mapping polls the intake queue with the launcher's role. */
function intakeStatement(name: string): object {
    return { Effect: "Allow", Action: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], Resource: queueArn(`${name}-intake-0000000`) };
}

/** Drain: consume the intake, queue and read the backlog, coordinate on its table, count its cluster's tasks, start them. */
function drainLauncherStatements(name: string): object[] {
    return [
        intakeStatement(name),
        { Effect: "Allow", Action: ["sqs:SendMessage", "sqs:GetQueueAttributes"], Resource: queueArn(`${name}-queue-0000000`) },
        { Effect: "Allow", Action: "dynamodb:UpdateItem", Resource: arn("dynamodb", `table/${name}-launcher-state-0000000`) },
        { Effect: "Allow", Action: "ecs:DescribeClusters", Resource: arn("ecs", `cluster/${name}-cluster`) },
        ...runTaskStatements(name),
        ...launcherCommonStatements(name),
    ];
}

describe("LambdaEcsWorker", () => {
    describe("GIVEN the minimal call with a build context", () => {
        let resources: RecordedResource[];
        let worker: LambdaEcsWorker;
        before(async () => {
            ({ resources, worker } = await buildWorker("render", MINIMAL));
        });

        it("THEN it creates exactly the expected resources, named after the component", () => {
            expect(names(resources)).to.deep.equal(
                [
                    `${COMPONENT} render`,
                    `${T.bucket} render-bucket`,
                    `${T.publicAccess} render-bucket-public-access`,
                    `${T.ownership} render-bucket-ownership`,
                    `${T.encryption} render-bucket-encryption`,
                    `${T.lifecycle} render-bucket-lifecycle`,
                    `${T.bucketPolicy} render-bucket-policy`,
                    `${T.queue} render-dlq`,
                    `${T.queue} render-queue`,
                    `${T.queue} render-intake`,
                    `${T.queuePolicy} render-intake-policy`,
                    `${T.table} render-launcher-state`,
                    `${T.mapping} render-intake-mapping`,
                    `${T.alarm} render-dlq-alarm`,
                    `${T.alarm} render-stuck-alarm`,
                    `${T.repo} render-repo`,
                    `${T.image} render-runtime-image`,
                    `${T.image} render-image`,
                    `${T.logGroup} render-logs`,
                    `${T.sg} render-sg`,
                    `${T.cluster} render-cluster`,
                    `${T.capacityProviders} render-capacity-providers`,
                    `${T.role} render-execution-role`,
                    `${T.rolePolicy} render-execution-policy`,
                    `${T.role} render-task-role`,
                    `${T.rolePolicy} render-task-policy`,
                    `${T.taskDef} render-task`,
                    `${T.logGroup} render-launcher-logs`,
                    `${T.role} render-launcher-role`,
                    `${T.rolePolicy} render-launcher-policy`,
                    `${T.fn} render-launcher`,
                    `${T.invokeConfig} render-launcher-invoke-config`,
                    `${T.notification} render-notification`,
                    `${T.eventRule} render-reconcile`,
                    `${T.permission} render-reconcile-permission`,
                    `${T.eventTarget} render-reconcile-target`,
                    `${T.eventRule} render-launcher-failures`,
                    `${T.eventTarget} render-launcher-failures-target`,
                    `${T.queuePolicy} render-dlq-policy`,
                    `${T.eventRule} render-launcher-failure-events`,
                    `${T.permission} render-launcher-failure-events-permission`,
                    `${T.eventTarget} render-launcher-failure-events-launcher-target`,
                    `${T.dashboard} render-dashboard`,
                    `${T.alarm} render-launcher-errors-alarm`,
                    `${T.alarm} render-start-failures-alarm`,
                ].sort(),
            );
        });

        it("THEN every child has the component as its parent", () => {
            const children = resources.filter((r) => r.type !== COMPONENT);
            expect(children).to.have.length(44);
            for (const r of children) {
                expect(typeChain(r.urn), r.name).to.equal(`${COMPONENT}$${r.type}`);
            }
            expect(typeChain(one(resources, COMPONENT, "render").urn)).to.equal(COMPONENT);
        });

        it("THEN it builds the runtime base image from the package's own context and hands its URI to the worker's build as RUNTIME_IMAGE", () => {
            const repo = one(resources, T.repo, "render-repo");
            const runtime = one(resources, T.image, "render-runtime-image");
            const image = one(resources, T.image, "render-image");
            const repositoryUrl = `123456789012.dkr.ecr.us-east-1.amazonaws.com/render-repo-abc123`;
            expect(repo.inputs).to.include({ forceDelete: true });
            expect(runtime.inputs).to.deep.equal({
                repositoryUrl,
                context: RUNTIME_IMAGE_CONTEXT,
                dockerfile: path.join(RUNTIME_IMAGE_CONTEXT, "Dockerfile.runtime"),
                platform: "linux/amd64",
            });
            expect(fs.readFileSync(path.join(RUNTIME_IMAGE_CONTEXT, "Dockerfile.runtime"), "utf8")).to.match(/^FROM node:22-bookworm-slim$/m);
            expect(image.inputs).to.deep.equal({
                repositoryUrl,
                context: "./worker-image",
                platform: "linux/amd64",
                args: { RUNTIME_IMAGE: `${repositoryUrl}@sha256:${"0".repeat(64)}` },
            });
            // The POV-Ray worker's Dockerfile builds on exactly that argument.
            expect(fs.readFileSync("worker-image/Dockerfile", "utf8")).to.match(/^ARG RUNTIME_IMAGE(=\S*)?\nFROM \$\{RUNTIME_IMAGE\}$/m);
        });

        it("THEN the bucket is private, encrypted, owner-enforced and TLS-only", () => {
            expect(one(resources, T.publicAccess, "render-bucket-public-access").inputs).to.include({
                blockPublicAcls: true,
                blockPublicPolicy: true,
                ignorePublicAcls: true,
                restrictPublicBuckets: true,
            });
            expect(one(resources, T.ownership, "render-bucket-ownership").inputs.rule).to.deep.equal({
                objectOwnership: "BucketOwnerEnforced",
            });
            expect(one(resources, T.encryption, "render-bucket-encryption").inputs.rules).to.deep.equal([
                { applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" }, bucketKeyEnabled: true },
            ]);
            const bucket = one(resources, T.bucket, "render-bucket").inputs;
            expect(bucket.forceDestroy).to.equal(false);
            const policy = JSON.parse(one(resources, T.bucketPolicy, "render-bucket-policy").inputs.policy);
            expect(policy.Statement).to.deep.equal([
                {
                    Sid: "DenyInsecureTransport",
                    Effect: "Deny",
                    Principal: "*",
                    Action: "s3:*",
                    Resource: ["arn:aws:s3:::render-bucket-0000000", "arn:aws:s3:::render-bucket-0000000/*"],
                    Condition: { Bool: { "aws:SecureTransport": "false" } },
                },
            ]);
        });

        it("THEN the bucket's lifecycle rule aborts incomplete multipart uploads after a day (a child of the component)", () => {
            const lifecycle = one(resources, T.lifecycle, "render-bucket-lifecycle");
            expect(lifecycle.inputs).to.deep.equal({
                bucket: "render-bucket-id",
                rules: [{ id: "abort-incomplete-multipart-uploads", status: "Enabled", filter: {}, abortIncompleteMultipartUpload: { daysAfterInitiation: 1 } }],
            });
            expect(typeChain(lifecycle.urn)).to.equal(`${COMPONENT}$${T.lifecycle}`);
        });

        it("THEN the queues are encrypted; the worker dead-letters a job's 3rd failed attempt itself, the work queue redrives to the DLQ one receive later (safety net), the intake after 10", () => {
            const queue = one(resources, T.queue, "render-queue").inputs;
            const dlq = one(resources, T.queue, "render-dlq").inputs;
            expect(queue.sqsManagedSseEnabled).to.equal(true);
            expect(dlq.sqsManagedSseEnabled).to.equal(true);
            expect(JSON.parse(queue.redrivePolicy)).to.deep.equal({
                deadLetterTargetArn: queueArn("render-dlq-0000000"),
                maxReceiveCount: 4,
            });
            const env = JSON.parse(one(resources, "aws:ecs/taskDefinition:TaskDefinition", "render-task").inputs.containerDefinitions)[0].environment;
            expect(env.find((e: { name: string }) => e.name === "WORKER_MAX_RECEIVE_COUNT")).to.deep.equal({ name: "WORKER_MAX_RECEIVE_COUNT", value: "3" });
            expect(dlq.messageRetentionSeconds).to.equal(14 * 24 * 3600);
            const alarm = one(resources, T.alarm, "render-dlq-alarm").inputs;
            expect(alarm).to.include({
                namespace: "AWS/SQS",
                metricName: "ApproximateNumberOfMessagesVisible",
                comparisonOperator: "GreaterThanThreshold",
                threshold: 0,
            });
            expect(alarm.dimensions).to.deep.equal({ QueueName: "render-dlq-0000000" });
            expect(alarm.alarmActions).to.deep.equal([]);
            // The oldest job waited in the intake (not yet queued) or in the work queue: the older of the two.
            const stuck = one(resources, T.alarm, "render-stuck-alarm").inputs;
            expect(stuck).to.include({ comparisonOperator: "GreaterThanThreshold", threshold: 3600 });
            expect(stuck.metricQueries.map((q: any) => q.expression ?? `${q.metric.metricName}(${q.metric.dimensions.QueueName})`)).to.deep.equal([
                "ApproximateAgeOfOldestMessage(render-intake-0000000)",
                "ApproximateAgeOfOldestMessage(render-queue-0000000)",
                "MAX([FILL(intake, 0), FILL(queued, 0)])",
            ]);
            expect(queue.visibilityTimeoutSeconds).to.equal(300);
            // The intake (issue #19): S3's notifications, read by the launcher's event source mapping. Its visibility
            // timeout is 6 × the launcher's 60 s (AWS's advice for an SQS event source), its redrive the safety net
            // beyond the launcher's own dead-letter on the last receive.
            const intake = one(resources, T.queue, "render-intake").inputs;
            expect(intake).to.include({ visibilityTimeoutSeconds: 360, sqsManagedSseEnabled: true, messageRetentionSeconds: 345600 });
            expect(JSON.parse(intake.redrivePolicy)).to.deep.equal({ deadLetterTargetArn: queueArn("render-dlq-0000000"), maxReceiveCount: 10 });
        });

        it("THEN the notification sends .zip uploads only to the intake queue, which S3 may send to from exactly the bucket and account", () => {
            const n = one(resources, T.notification, "render-notification").inputs;
            expect(n.bucket).to.equal("render-bucket-0000000");
            expect(n.lambdaFunctions).to.equal(undefined);
            expect(n.queues).to.deep.equal([{ queueArn: queueArn("render-intake-0000000"), events: ["s3:ObjectCreated:*"], filterSuffix: ".zip" }]);
            const p = one(resources, T.queuePolicy, "render-intake-policy").inputs;
            expect(p.queueUrl).to.match(/render-intake-0000000$/);
            expect(JSON.parse(p.policy).Statement).to.deep.equal([
                {
                    Effect: "Allow",
                    Principal: { Service: "s3.amazonaws.com" },
                    Action: "sqs:SendMessage",
                    Resource: queueArn("render-intake-0000000"),
                    Condition: { ArnEquals: { "aws:SourceArn": "arn:aws:s3:::render-bucket-0000000" }, StringEquals: { "aws:SourceAccount": FAKE_ACCOUNT } },
                },
            ]);
            // S3 no longer invokes the launcher: no permission for it.
            expect(resources.filter((r) => r.type === T.permission && r.inputs.principal === "s3.amazonaws.com")).to.deep.equal([]);
        });

        it("THEN the intake reaches the launcher through an event source mapping: batches, a 1 s window, partial batch failures, at most intakeConcurrency at once", () => {
            expect(one(resources, T.mapping, "render-intake-mapping").inputs).to.deep.include({
                eventSourceArn: queueArn("render-intake-0000000"),
                functionName: arn("lambda", "function:render-launcher-0000000"),
                batchSize: 10,
                maximumBatchingWindowInSeconds: 1,
                functionResponseTypes: ["ReportBatchItemFailures"],
                scalingConfig: { maximumConcurrency: 5 },
            });
            // Decisions are coordinated through one small on-demand table per worker (one item).
            expect(one(resources, T.table, "render-launcher-state").inputs).to.deep.include({ billingMode: "PAY_PER_REQUEST", hashKey: "id", attributes: [{ name: "id", type: "S" }] });
        });

        it("THEN the task role may read inputs, write outputs and work the queue (no GetQueueAttributes: the component sets its settings), nothing more", () => {
            expect(statements(resources, "render-task-policy")).to.deep.equal([
                { Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::render-bucket-0000000/*" },
                { Effect: "Allow", Action: "s3:ListBucket", Resource: "arn:aws:s3:::render-bucket-0000000", Condition: { StringLike: { "s3:prefix": "*" } } },
                {
                    Effect: "Allow",
                    Action: "s3:PutObject",
                    Resource: [
                        "arn:aws:s3:::render-bucket-0000000/*.png",
                        "arn:aws:s3:::render-bucket-0000000/*.log",
                        "arn:aws:s3:::render-bucket-0000000/*.error.json",
                    ],
                },
                { Effect: "Allow", Action: "s3:AbortMultipartUpload", Resource: ["arn:aws:s3:::render-bucket-0000000/*.png", "arn:aws:s3:::render-bucket-0000000/*.log"] },
                { Effect: "Allow", Action: "s3:DeleteObject", Resource: "arn:aws:s3:::render-bucket-0000000/*.error.json" },
                {
                    Effect: "Allow",
                    Action: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:SendMessage"],
                    Resource: queueArn("render-queue-0000000"),
                },
                { Effect: "Allow", Action: "sqs:SendMessage", Resource: queueArn("render-dlq-0000000") },
                taskPutEvents("render"),
            ]);
        });

        it("THEN the execution role may pull from this repository and write this log group", () => {
            expect(statements(resources, "render-execution-policy")).to.deep.equal([
                { Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" },
                {
                    Effect: "Allow",
                    Action: ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
                    Resource: ECR_REPO,
                },
                {
                    Effect: "Allow",
                    Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
                    Resource: `${arn("logs", "log-group:render-logs-0000000")}:*`,
                },
            ]);
        });

        it("THEN the drain launcher may consume the intake, queue, coordinate, count (DescribeClusters on its cluster) and start this family's tasks, pass exactly the two task roles, dead-letter", () => {
            expect(statements(resources, "render-launcher-policy")).to.deep.equal(drainLauncherStatements("render"));
        });

        it("THEN no statement grants Resource '*' except ecr:GetAuthorizationToken (AWS authorizes it only on '*'), and no managed policy is attached", () => {
            const wildcard = allStatements(resources).filter((s) => [s.Resource].flat().includes("*"));
            expect(wildcard).to.deep.equal([{ Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" }]);
            expect(resources.filter((r) => r.type.startsWith("aws:iam/rolePolicyAttachment"))).to.have.length(0);
            expect(resources.filter((r) => r.type.startsWith("aws:iam/policy"))).to.have.length(0);
            for (const role of resources.filter((r) => r.type === T.role)) {
                expect(role.inputs.managedPolicyArns ?? [], role.name).to.deep.equal([]);
            }
        });

        it("THEN each role can be assumed only by its own service", () => {
            const principal = (n: string) =>
                JSON.parse(one(resources, T.role, n).inputs.assumeRolePolicy).Statement.map((s: any) => s.Principal.Service);
            expect(principal("render-task-role")).to.deep.equal(["ecs-tasks.amazonaws.com"]);
            expect(principal("render-execution-role")).to.deep.equal(["ecs-tasks.amazonaws.com"]);
            expect(principal("render-launcher-role")).to.deep.equal(["lambda.amazonaws.com"]);
        });

        it("THEN the task runs as non-root on a read-only root with a scratch volume, logging to a retained group", () => {
            const td = one(resources, T.taskDef, "render-task").inputs;
            expect(td).to.include({ family: FAMILY, networkMode: "awsvpc", cpu: "1024", memory: "2048" });
            expect(td.requiresCompatibilities).to.deep.equal(["FARGATE"]);
            expect(td.runtimePlatform).to.deep.equal({ operatingSystemFamily: "LINUX", cpuArchitecture: "X86_64" });
            expect(td.taskRoleArn).to.equal(`arn:aws:iam::${FAKE_ACCOUNT}:role/render-task-role-0000000`);
            expect(td.executionRoleArn).to.equal(`arn:aws:iam::${FAKE_ACCOUNT}:role/render-execution-role-0000000`);
            expect(td.ephemeralStorage).to.equal(undefined);
            const [c, ...others] = JSON.parse(td.containerDefinitions);
            expect(others).to.have.length(0);
            expect(c).to.include({
                name: "worker",
                essential: true,
                cpu: 1024,
                memory: 2048,
                user: "1000:1000",
                readonlyRootFilesystem: true,
                stopTimeout: 120,
            });
            expect(c.image).to.match(/^123456789012\.dkr\.ecr\.us-east-1\.amazonaws\.com\/render-repo-abc123@sha256:/);
            expect(c.linuxParameters).to.deep.equal({ initProcessEnabled: true });
            expect(c.mountPoints).to.deep.equal([
                { sourceVolume: "scratch", containerPath: "/scratch", readOnly: false },
                { sourceVolume: "tmp", containerPath: "/tmp", readOnly: false },
            ]);
            expect(td.volumes).to.deep.equal([{ name: "scratch" }, { name: "tmp" }]);
            expect(c.logConfiguration).to.deep.equal({
                logDriver: "awslogs",
                options: { "awslogs-group": "render-logs-0000000", "awslogs-region": FAKE_REGION, "awslogs-stream-prefix": "render" },
            });
            expect(one(resources, T.logGroup, "render-logs").inputs.retentionInDays).to.equal(14);
            const env = Object.fromEntries(c.environment.map((e: any) => [e.name, e.value]));
            expect(env).to.deep.equal({
                QUEUE_URL: `https://sqs.${FAKE_REGION}.amazonaws.com/${FAKE_ACCOUNT}/render-queue-0000000`,
                DLQ_URL: `https://sqs.${FAKE_REGION}.amazonaws.com/${FAKE_ACCOUNT}/render-dlq-0000000`,
                AWS_REGION: FAKE_REGION,
                INPUT_PREFIX: "",
                OUTPUT_PREFIX: "",
                OUTPUT_SUFFIXES: JSON.stringify([".png", ".log"]),
                JOB_TIMEOUT_SECONDS: "900",
                WORKER_IDLE_EXIT: "1",
                WORKER_MAX_RECEIVE_COUNT: "3",
                WORKER_VISIBILITY_TIMEOUT: "300",
                WORKER_SCRATCH_DIR: "/scratch",
                WORKER_STOP_TIMEOUT_SECONDS: "120",
                EVENT_BUS_NAME: "default",
                EVENT_SOURCE: "lambda-ecs-worker.render",
                WORKER_NAME: "render",
                METRICS_NAMESPACE: "LambdaEcsWorker",
            });
        });

        it("THEN the security group allows egress only, in the default VPC", () => {
            const sg = one(resources, T.sg, "render-sg").inputs;
            expect(sg.vpcId).to.equal("vpc-default");
            expect(sg.ingress ?? []).to.deep.equal([]);
            expect(sg.egress).to.have.length(1);
        });

        it("THEN the cluster has Container Insights and FARGATE capacity", () => {
            expect(one(resources, T.cluster, "render-cluster").inputs.settings).to.deep.equal([
                { name: "containerInsights", value: "enabled" },
            ]);
            const cp = one(resources, T.capacityProviders, "render-capacity-providers").inputs;
            expect(cp.defaultCapacityProviderStrategies).to.deep.equal([{ capacityProvider: "FARGATE", weight: 1 }]);
        });

        it("THEN the launcher is a Node.js 22 function configured only through its environment", () => {
            const fn = one(resources, T.fn, "render-launcher").inputs;
            expect(fn.runtime).to.equal("nodejs22.x");
            expect(fn.role).to.equal(`arn:aws:iam::${FAKE_ACCOUNT}:role/render-launcher-role-0000000`);
            // No reserved concurrency by default: the intake mapping bounds the launcher's concurrency (issue #19).
            expect(fn.reservedConcurrentExecutions).to.equal(undefined);
            expect(fn.loggingConfig).to.deep.equal({ logFormat: "Text", logGroup: "render-launcher-logs-0000000" });
            expect(fn.environment.variables).to.deep.equal({
                QUEUE_URL: `https://sqs.${FAKE_REGION}.amazonaws.com/${FAKE_ACCOUNT}/render-queue-0000000`,
                DLQ_URL: `https://sqs.${FAKE_REGION}.amazonaws.com/${FAKE_ACCOUNT}/render-dlq-0000000`,
                CLUSTER: arn("ecs", "cluster/render-cluster"),
                TASK_DEFINITION: arn("ecs", `task-definition/${FAMILY}:1`),
                CONTAINER_NAME: "worker",
                SUBNETS: "subnet-a,subnet-b,subnet-c",
                SECURITY_GROUPS: "render-sg-id",
                ASSIGN_PUBLIC_IP: "ENABLED",
                CAPACITY_PROVIDER_STRATEGY: JSON.stringify([{ capacityProvider: "FARGATE", weight: 1 }]),
                MAX_TASKS: "10",
                LAUNCH_MODE: "drain",
                INPUT_PREFIX: "",
                INPUT_SUFFIXES: JSON.stringify([".zip"]),
                OUTPUT_PREFIX: "",
                OUTPUT_SUFFIXES: JSON.stringify([".png", ".log", ".error.json"]),
                STARTED_BY: "lew-render",
                EVENT_BUS_NAME: "default",
                EVENT_SOURCE: "lambda-ecs-worker.render",
                WORKER_NAME: "render",
                METRICS_NAMESPACE: "LambdaEcsWorker",
                STATE_TABLE: "render-launcher-state-0000000",
                WORKER_CONCURRENCY: "1",
                INTAKE_MAX_RECEIVE_COUNT: "10",
                INTAKE_CONCURRENCY: "5",
            });
            // Lambda's on-failure destination is the event bus; a rule hands the record on to the DLQ (job-events.ts).
            const ic = one(resources, T.invokeConfig, "render-launcher-invoke-config").inputs;
            expect(ic.destinationConfig).to.deep.equal({ onFailure: { destination: DEFAULT_BUS } });
        });

        it("THEN EventBridge invokes the launcher every minute to reconcile tasks with the queue", () => {
            expect(one(resources, T.eventRule, "render-reconcile").inputs.scheduleExpression).to.equal("rate(1 minute)");
            expect(one(resources, T.eventTarget, "render-reconcile-target").inputs).to.include({
                rule: "render-reconcile-0000000",
                arn: arn("lambda", "function:render-launcher-0000000"),
            });
            expect(one(resources, T.permission, "render-reconcile-permission").inputs).to.include({
                action: "lambda:InvokeFunction",
                principal: "events.amazonaws.com",
                function: "render-launcher-0000000",
                sourceArn: `arn:aws:events:${FAKE_REGION}:${FAKE_ACCOUNT}:rule/render-reconcile-0000000`,
            });
        });

        it("THEN the launcher package holds the handler only: no node_modules, no AWS SDK", async () => {
            const { indexJs, paths } = await launcherArchive(resources);
            expect(paths).to.deep.equal(["__index.js"]);
            expect(indexJs).to.contain("exports.handler");
            expect(indexJs).not.to.contain("node_modules");
        });

        it("THEN the serialized launcher package stays within 32 KiB", async () => {
            const { indexJs, bytes } = await launcherArchive(resources);
            expect(bytes).to.equal(Buffer.byteLength(indexJs, "utf8"));
            expect(bytes, `launcher package is ${bytes} bytes`).to.be.at.most(32 * 1024);
        });

        it("THEN it exposes every output", async () => {
            const { valueOf } = await import("../harness/mocks");
            expect(await valueOf(worker.bucketName)).to.equal("render-bucket-0000000");
            expect(await valueOf(worker.queueUrl)).to.match(/render-queue-0000000$/);
            expect(await valueOf(worker.deadLetterQueueUrl)).to.match(/render-dlq-0000000$/);
            expect(await valueOf(worker.clusterArn)).to.equal(arn("ecs", "cluster/render-cluster"));
            expect(await valueOf(worker.taskDefinitionArn)).to.equal(arn("ecs", `task-definition/${FAMILY}:1`));
            expect(await valueOf(worker.launcherFunctionName)).to.equal("render-launcher-0000000");
            expect(await valueOf(worker.logGroupName)).to.equal("render-logs-0000000");
            expect(await valueOf(worker.imageUri)).to.match(/render-repo-abc123@sha256:0{64}$/);
        });
    });

    describe("GIVEN an existing bucket, a prebuilt image, a prefix and own networking", () => {
        let resources: RecordedResource[];
        before(async () => {
            ({ resources } = await buildWorker("scan", {
                image: { imageUri: "111122223333.dkr.ecr.eu-west-1.amazonaws.com/team/scanner:2.0", platform: "linux/amd64" },
                bucketName: "shared-bucket",
                inputPrefix: "inbox/",
                inputSuffixes: [".zip", ".ZIP", ".tar.gz"],
                outputPrefix: "results/",
                subnetIds: ["subnet-1"],
                securityGroupIds: ["sg-1"],
                cpu: 2048,
                memory: 4096,
                ephemeralStorageGiB: 50,
                capacity: { kind: "MIXED", fargateWeight: 1, spotWeight: 3, fargateBase: 1 },
                maxTasks: 4,
                launcherConcurrency: 0,
                environment: { QUALITY: "9", WORKER_CONCURRENCY: "2" },
                alarmActions: ["arn:aws:sns:eu-west-1:111122223333:oncall"],
                tags: { team: "vision" },
            }));
        });

        it("THEN it creates no bucket, repository, image or security group", () => {
            for (const t of [T.bucket, T.publicAccess, T.bucketPolicy, T.lifecycle, T.repo, T.image, T.sg]) {
                expect(resources.filter((r) => r.type === t), t).to.have.length(0);
            }
            // 22 children and the component; with the job-event routing, dashboard and its two alarms; the intake (queue,
            // policy, mapping) and the state table, no S3 permission.
            expect(resources).to.have.length(35);
        });

        it("THEN one notification entry per suffix carries the prefix", () => {
            const n = one(resources, T.notification, "scan-notification").inputs;
            expect(n.bucket).to.equal("shared-bucket");
            expect(n.queues.map((f: any) => [f.filterPrefix, f.filterSuffix])).to.deep.equal([
                ["inbox/", ".zip"],
                ["inbox/", ".ZIP"],
                ["inbox/", ".tar.gz"],
            ]);
        });

        it("THEN the task role reads the inbox and writes only output files under the output prefix", () => {
            const s = statements(resources, "scan-task-policy");
            expect(s[0]).to.deep.equal({ Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::shared-bucket/inbox/*" });
            // Listing only the inbox: to tell a deleted input from an unreadable one (S3 answers 403 for both without it).
            expect(s[1]).to.deep.equal({ Effect: "Allow", Action: "s3:ListBucket", Resource: "arn:aws:s3:::shared-bucket", Condition: { StringLike: { "s3:prefix": "inbox/*" } } });
            expect(s[2].Resource).to.deep.equal([
                "arn:aws:s3:::shared-bucket/results/*.png",
                "arn:aws:s3:::shared-bucket/results/*.log",
                "arn:aws:s3:::shared-bucket/results/*.error.json",
            ]);
        });

        it("THEN the dead-letter alarm notifies the given actions", () => {
            expect(one(resources, T.alarm, "scan-dlq-alarm").inputs.alarmActions).to.deep.equal([
                "arn:aws:sns:eu-west-1:111122223333:oncall",
            ]);
        });

        it("THEN the execution role pulls from exactly the prebuilt image's repository", () => {
            expect(statements(resources, "scan-execution-policy")[1].Resource).to.equal(
                "arn:aws:ecr:eu-west-1:111122223333:repository/team/scanner",
            );
        });

        it("THEN the task gets the size, storage, extra env and weighted capacity", () => {
            const td = one(resources, T.taskDef, "scan-task").inputs;
            expect(td).to.include({ cpu: "2048", memory: "4096" });
            expect(td.ephemeralStorage).to.deep.equal({ sizeInGib: 50 });
            // Spot runs only X86_64 (validate.ts): this worker mixes in Spot, so it runs amd64.
            expect(td.runtimePlatform).to.deep.equal({ operatingSystemFamily: "LINUX", cpuArchitecture: "X86_64" });
            const c = JSON.parse(td.containerDefinitions)[0];
            expect(c.image).to.equal("111122223333.dkr.ecr.eu-west-1.amazonaws.com/team/scanner:2.0");
            expect(c.environment).to.deep.include({ name: "QUALITY", value: "9" });
            expect(c.environment).to.deep.include({ name: "WORKER_CONCURRENCY", value: "2" });
            expect(c.environment).to.deep.include({ name: "INPUT_PREFIX", value: "inbox/" });
            expect(c.environment).to.deep.include({ name: "OUTPUT_PREFIX", value: "results/" });
            const fn = one(resources, T.fn, "scan-launcher").inputs;
            expect(fn.reservedConcurrentExecutions).to.equal(undefined);
            expect(fn.environment.variables).to.include({
                SUBNETS: "subnet-1",
                SECURITY_GROUPS: "sg-1",
                ASSIGN_PUBLIC_IP: "DISABLED",
                MAX_TASKS: "4",
                INPUT_PREFIX: "inbox/",
                OUTPUT_PREFIX: "results/",
                INPUT_SUFFIXES: JSON.stringify([".zip", ".ZIP", ".tar.gz"]),
                CAPACITY_PROVIDER_STRATEGY: JSON.stringify([
                    { capacityProvider: "FARGATE", weight: 1, base: 1 },
                    { capacityProvider: "FARGATE_SPOT", weight: 3 },
                ]),
            });
        });

        it("THEN every taggable child carries the tags", () => {
            const taggable = resources.filter((r) =>
                [T.queue, T.logGroup, T.cluster, T.role, T.taskDef, T.fn, T.alarm, T.eventRule, T.table, T.mapping].includes(r.type),
            );
            expect(taggable).to.have.length(20);
            for (const r of taggable) expect(r.inputs.tags, r.name).to.deep.equal({ team: "vision" });
        });
    });

    describe("GIVEN launchMode service", () => {
        let resources: RecordedResource[];
        before(async () => {
            ({ resources } = await buildWorker("svc", { ...MINIMAL, launchMode: "service", maxTasks: 6 }));
        });

        it("THEN a service starts at zero, adds tasks while jobs wait, and scales to zero only when nothing is in flight", () => {
            const svc = one(resources, T.service, "svc-service").inputs;
            expect(svc.desiredCount).to.equal(0);
            expect(svc.networkConfiguration).to.deep.equal({
                subnets: ["subnet-a", "subnet-b", "subnet-c"],
                securityGroups: ["svc-sg-id"],
                assignPublicIp: true,
            });
            const target = one(resources, T.scalingTarget, "svc-scaling-target").inputs;
            expect(target).to.include({ minCapacity: 0, maxCapacity: 6, scalableDimension: "ecs:service:DesiredCount" });
            // Scale-out only ever adds tasks: an exact capacity there would stop busy tasks as the backlog shrinks.
            const out = one(resources, T.scalingPolicy, "svc-scale-out").inputs.stepScalingPolicyConfiguration;
            expect(out.adjustmentType).to.equal("ChangeInCapacity");
            expect(out.stepAdjustments.map((s: any) => s.scalingAdjustment)).to.deep.equal([1, 3, 6]);
            const scaleIn = one(resources, T.scalingPolicy, "svc-scale-in").inputs.stepScalingPolicyConfiguration;
            expect(scaleIn.adjustmentType).to.equal("ExactCapacity");
            expect(scaleIn.stepAdjustments).to.deep.equal([{ metricIntervalUpperBound: "0", scalingAdjustment: 0 }]);
            const alarms = resources
                .filter((r) => r.type === T.alarm && r.name.startsWith("svc-backlog"))
                .map((r) => [r.name, r.inputs.comparisonOperator])
                .sort((a, b) => b[0].localeCompare(a[0]));
            expect(alarms).to.deep.equal([
                ["svc-backlog-high", "GreaterThanThreshold"],
                ["svc-backlog-empty", "LessThanOrEqualToThreshold"],
            ]);
            const high = one(resources, T.alarm, "svc-backlog-high").inputs;
            const empty = one(resources, T.alarm, "svc-backlog-empty").inputs;
            expect(high.alarmActions).to.deep.equal([arn("autoscaling", "scalingPolicy:svc-scale-out")]);
            expect(empty.alarmActions).to.deep.equal([arn("autoscaling", "scalingPolicy:svc-scale-in")]);
            expect([high.evaluationPeriods, empty.evaluationPeriods]).to.deep.equal([1, 5]);
            const queries = (a: any) =>
                a.metricQueries.map((q: any) => q.expression ?? `${q.metric.metricName}(${Object.values(q.metric.dimensions).join(",")})`);
            // Scale-out from zero only: target tracking (below) can't leave zero.
            expect(queries(high)).to.deep.equal([
                "ApproximateNumberOfMessagesVisible(svc-queue-0000000)",
                "RunningTaskCount(svc-cluster,svc-service)",
                "IF(FILL(running, 0) == 0, waiting, 0)",
            ]);
            expect(queries(empty)).to.deep.equal([
                "ApproximateNumberOfMessagesVisible(svc-queue-0000000)",
                "ApproximateNumberOfMessagesNotVisible(svc-queue-0000000)",
                "visible + inflight",
            ]);
        });

        it("THEN the service launcher may consume the intake, queue, read the backlog, coordinate and wake exactly its service: no RunTask, no PassRole", () => {
            expect(statements(resources, "svc-launcher-policy")).to.deep.equal([
                intakeStatement("svc"),
                { Effect: "Allow", Action: ["sqs:SendMessage", "sqs:GetQueueAttributes"], Resource: queueArn("svc-queue-0000000") },
                { Effect: "Allow", Action: "dynamodb:UpdateItem", Resource: arn("dynamodb", "table/svc-launcher-state-0000000") },
                {
                    Effect: "Allow",
                    Action: ["ecs:DescribeServices", "ecs:UpdateService"],
                    Resource: arn("ecs", "service/svc-cluster/svc-service"),
                    Condition: { ArnEquals: { "ecs:cluster": arn("ecs", "cluster/svc-cluster") } },
                },
                ...launcherCommonStatements("svc"),
            ]);
            const env = one(resources, T.fn, "svc-launcher").inputs.environment.variables;
            // The wake: raise the service's desired count to ceil(backlog / 5) (300 s acceptable wait / 60 s per job).
            expect(env).to.include({ SERVICE_NAME: "svc-service", BACKLOG_PER_TASK: "5", MAX_TASKS: "6" });
            expect(env).not.to.have.property("SPOT_FALLBACK");
        });

        it("THEN target tracking keeps jobs waiting per running task at acceptableWaitSeconds / expectedJobSeconds, never dividing by zero tasks", () => {
            const tt = one(resources, T.scalingPolicy, "svc-backlog-per-task").inputs;
            expect(tt.policyType).to.equal("TargetTrackingScaling");
            const c = tt.targetTrackingScalingPolicyConfiguration;
            expect(c.targetValue).to.equal(5);
            expect(c.customizedMetricSpecification.metrics).to.deep.equal([
                {
                    id: "visible",
                    label: "Jobs waiting",
                    returnData: false,
                    metricStat: {
                        metric: {
                            namespace: "AWS/SQS",
                            metricName: "ApproximateNumberOfMessagesVisible",
                            dimensions: [{ name: "QueueName", value: "svc-queue-0000000" }],
                        },
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
                                { name: "ClusterName", value: "svc-cluster" },
                                { name: "ServiceName", value: "svc-service" },
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
            ]);
            expect(tt.resourceId).to.equal("service/svc-cluster/svc-service");
        });

        it("THEN the service's tasks protect themselves while busy (TASK_PROTECTION), so scale-in stops only idle tasks", () => {
            const c = JSON.parse(one(resources, T.taskDef, "svc-task").inputs.containerDefinitions)[0];
            expect(c.environment).to.deep.include({ name: "TASK_PROTECTION", value: "on" });
        });

        it("THEN the dashboard shows the service's running tasks, and there is no start-failure alarm (the service starts its tasks)", () => {
            const body = JSON.parse(one(resources, T.dashboard, "svc-dashboard").inputs.dashboardBody);
            const metrics = body.widgets.flatMap((w: any) => w.properties.metrics);
            expect(metrics).to.deep.include(["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", "svc-cluster", "ServiceName", "svc-service", { label: "running tasks" }]);
            expect(resources.filter((r) => r.name === "svc-start-failures-alarm")).to.have.length(0);
            expect(one(resources, T.alarm, "svc-launcher-errors-alarm").inputs).to.include({ namespace: "AWS/Lambda", metricName: "Errors" });
        });

        it("THEN the service's task role works the queue like drain's", () => {
            expect(statements(resources, "svc-task-policy").map((s) => [s.Action, s.Resource])).to.deep.equal([
                ["s3:GetObject", "arn:aws:s3:::svc-bucket-0000000/*"],
                ["s3:ListBucket", "arn:aws:s3:::svc-bucket-0000000"],
                ["s3:PutObject", ["arn:aws:s3:::svc-bucket-0000000/*.png", "arn:aws:s3:::svc-bucket-0000000/*.log", "arn:aws:s3:::svc-bucket-0000000/*.error.json"]],
                ["s3:AbortMultipartUpload", ["arn:aws:s3:::svc-bucket-0000000/*.png", "arn:aws:s3:::svc-bucket-0000000/*.log"]],
                ["s3:DeleteObject", "arn:aws:s3:::svc-bucket-0000000/*.error.json"],
                [["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:SendMessage"], queueArn("svc-queue-0000000")],
                ["sqs:SendMessage", queueArn("svc-dlq-0000000")],
                ["events:PutEvents", arn("events", "event-bus/default")],
                ["ecs:UpdateTaskProtection", arn("ecs", "task/svc-cluster/*")],
            ]);
        });

        it("THEN no reconcile schedule is created (the scaling alarms and the wake do that job): the only rules route launcher failures", () => {
            expect(resources.filter((r) => r.type === T.eventRule).map((r) => r.name).sort()).to.deep.equal([
                "svc-launcher-failure-events",
                "svc-launcher-failures",
            ]);
        });

        it("THEN its tasks keep running when the queue is empty and the launcher only queues", () => {
            const c = JSON.parse(one(resources, T.taskDef, "svc-task").inputs.containerDefinitions)[0];
            expect(c.environment).to.deep.include({ name: "WORKER_IDLE_EXIT", value: "0" });
            expect(one(resources, T.fn, "svc-launcher").inputs.environment.variables.LAUNCH_MODE).to.equal("service");
        });
    });

    describe("GIVEN launchMode per-job", () => {
        let resources: RecordedResource[];
        before(async () => {
            ({ resources } = await buildWorker("job", { ...MINIMAL, launchMode: "per-job" }));
        });

        it("THEN a task ECS fails to start sends its job to the dead-letter queue with ECS's reason", () => {
            const rule = one(resources, T.eventRule, "job-start-failures").inputs;
            expect(JSON.parse(rule.eventPattern)).to.deep.equal({
                source: ["aws.ecs"],
                "detail-type": ["ECS Task State Change"],
                detail: {
                    clusterArn: [arn("ecs", "cluster/job-cluster")],
                    startedBy: ["lew-job"],
                    lastStatus: ["STOPPED"],
                    stopCode: ["TaskFailedToStart"],
                },
            });
            const target = one(resources, T.eventTarget, "job-start-failures-target").inputs;
            expect(target.arn).to.equal(queueArn("job-dlq-0000000"));
            expect(target.inputTransformer.inputPaths).to.deep.equal({
                bucket: "$.detail.overrides.containerOverrides[0].environment[0].value",
                key: "$.detail.overrides.containerOverrides[0].environment[1].value",
                reason: "$.detail.stoppedReason",
                taskArn: "$.detail.taskArn",
            });
            // The paths rely on the launcher passing JOB_BUCKET, then JOB_KEY.
            const settings = parseLauncherSettings(one(resources, T.fn, "job-launcher").inputs.environment.variables);
            const env = buildRunTaskInput(settings, 1, { bucket: "b", key: "k" }).overrides!.containerOverrides![0].environment!;
            expect(env.map((e) => e.name)).to.deep.equal(["JOB_BUCKET", "JOB_KEY"]);
            const filled = target.inputTransformer.inputTemplate
                .replace("<bucket>", '"b"')
                .replace("<key>", '"in/a.zip"')
                .replace("<reason>", '"CannotPullContainerError: pull access denied"')
                .replace("<taskArn>", '"arn:task"');
            expect(JSON.parse(filled)).to.deep.equal({
                bucket: "b",
                key: "in/a.zip",
                reason: "CannotPullContainerError: pull access denied",
                stopCode: "TaskFailedToStart",
                taskArn: "arn:task",
            });
        });

        it("THEN only that rule and the launcher-failure rule may send to the dead-letter queue", () => {
            const policy = JSON.parse(one(resources, "aws:sqs/queuePolicy:QueuePolicy", "job-dlq-policy").inputs.policy);
            expect(policy.Statement).to.deep.equal([
                {
                    Effect: "Allow",
                    Principal: { Service: "events.amazonaws.com" },
                    Action: "sqs:SendMessage",
                    Resource: queueArn("job-dlq-0000000"),
                    Condition: {
                        ArnEquals: {
                            "aws:SourceArn": [
                                `arn:aws:events:${FAKE_REGION}:${FAKE_ACCOUNT}:rule/job-launcher-failures-0000000`,
                                `arn:aws:events:${FAKE_REGION}:${FAKE_ACCOUNT}:rule/job-start-failures-0000000`,
                            ],
                        },
                    },
                },
            ]);
        });

        it("THEN a task that fails to start also reaches the launcher, which publishes its Job Failed (invoked only by that rule)", () => {
            const target = one(resources, T.eventTarget, "job-start-failures-launcher-target").inputs;
            expect(target).to.include({ rule: "job-start-failures-0000000", arn: arn("lambda", "function:job-launcher-0000000") });
            expect(target.inputTransformer).to.equal(undefined);
            expect(one(resources, T.permission, "job-start-failures-permission").inputs).to.include({
                action: "lambda:InvokeFunction",
                principal: "events.amazonaws.com",
                function: "job-launcher-0000000",
                sourceArn: `arn:aws:events:${FAKE_REGION}:${FAKE_ACCOUNT}:rule/job-start-failures-0000000`,
            });
        });

        it("THEN every other stop of its tasks (any stop code but TaskFailedToStart, or none) reaches the launcher, which ends a job its worker did not settle", () => {
            const rule = one(resources, T.eventRule, "job-task-stopped").inputs;
            expect(JSON.parse(rule.eventPattern)).to.deep.equal({
                source: ["aws.ecs"],
                "detail-type": ["ECS Task State Change"],
                detail: {
                    clusterArn: [arn("ecs", "cluster/job-cluster")],
                    startedBy: ["lew-job"],
                    lastStatus: ["STOPPED"],
                    $or: [{ stopCode: [{ "anything-but": ["TaskFailedToStart"] }] }, { stopCode: [{ exists: false }] }],
                },
            });
            const targets = resources.filter((r) => r.type === T.eventTarget && r.inputs.rule === "job-task-stopped-0000000");
            expect(targets.map((t) => [t.name, t.inputs.arn, t.inputs.inputTransformer])).to.deep.equal([
                ["job-task-stopped-launcher-target", arn("lambda", "function:job-launcher-0000000"), undefined],
            ]);
            expect(one(resources, T.permission, "job-task-stopped-permission").inputs).to.include({
                action: "lambda:InvokeFunction",
                principal: "events.amazonaws.com",
                function: "job-launcher-0000000",
                sourceArn: `arn:aws:events:${FAKE_REGION}:${FAKE_ACCOUNT}:rule/job-task-stopped-0000000`,
            });
            // The launcher knows the job by JOB_BUCKET, JOB_KEY and JOB_ETAG (the event's ETag: the worker's jobId).
            const settings = parseLauncherSettings(one(resources, T.fn, "job-launcher").inputs.environment.variables);
            const env = buildRunTaskInput(settings, 1, { bucket: "b", key: "k", etag: "e" }).overrides!.containerOverrides![0].environment!;
            expect(env.map((e) => e.name)).to.deep.equal(["JOB_BUCKET", "JOB_KEY", "JOB_ETAG"]);
        });

        it("THEN the start-failure alarm adds the launcher's TasksNotStarted and the rule's matches", () => {
            const alarm = one(resources, T.alarm, "job-start-failures-alarm").inputs;
            expect(alarm).to.include({ comparisonOperator: "GreaterThanThreshold", threshold: 0, evaluationPeriods: 1 });
            expect(alarm.metricQueries).to.deep.equal([
                { id: "notStarted", metric: { namespace: "LambdaEcsWorker", metricName: "TasksNotStarted", dimensions: { Worker: "job" }, period: 60, stat: "Sum" } },
                { id: "failedToStart", metric: { namespace: "AWS/Events", metricName: "TriggeredRules", dimensions: { RuleName: "job-start-failures-0000000" }, period: 60, stat: "Sum" } },
                { id: "startFailures", expression: "FILL(notStarted, 0) + FILL(failedToStart, 0)", label: "Tasks that could not be started", returnData: true },
            ]);
        });

        it("THEN there is no reconcile schedule and no service", () => {
            expect(resources.filter((r) => r.name === "job-reconcile" || r.type === T.service)).to.have.length(0);
        });

        it("THEN the per-job launcher may consume the intake, start, tag and pass, and dead-letter: nothing on the work queue, no table, no counting", () => {
            expect(statements(resources, "job-launcher-policy")).to.deep.equal([intakeStatement("job"), ...runTaskStatements("job"), ...launcherCommonStatements("job")]);
            expect(resources.filter((r) => r.type === T.table)).to.deep.equal([]);
        });

        it("THEN the per-job task role has no permission on the work queue (its one job comes from its environment)", () => {
            expect(statements(resources, "job-task-policy")).to.deep.equal([
                { Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::job-bucket-0000000/*" },
                { Effect: "Allow", Action: "s3:ListBucket", Resource: "arn:aws:s3:::job-bucket-0000000", Condition: { StringLike: { "s3:prefix": "*" } } },
                {
                    Effect: "Allow",
                    Action: "s3:PutObject",
                    Resource: ["arn:aws:s3:::job-bucket-0000000/*.png", "arn:aws:s3:::job-bucket-0000000/*.log", "arn:aws:s3:::job-bucket-0000000/*.error.json"],
                },
                { Effect: "Allow", Action: "s3:AbortMultipartUpload", Resource: ["arn:aws:s3:::job-bucket-0000000/*.png", "arn:aws:s3:::job-bucket-0000000/*.log"] },
                { Effect: "Allow", Action: "s3:DeleteObject", Resource: "arn:aws:s3:::job-bucket-0000000/*.error.json" },
                { Effect: "Allow", Action: "sqs:SendMessage", Resource: queueArn("job-dlq-0000000") },
                taskPutEvents("job"),
            ]);
        });
    });

    it("GIVEN two workers in one stack THEN their resources never clash", async () => {
        const { resetRecorded, recorded } = await import("../harness/mocks");
        resetRecorded();
        new LambdaEcsWorker("render", MINIMAL);
        new LambdaEcsWorker("video", { image: { imageUri: "public.example/video:1" } });
        await registrationsSettled();
        const keys = recorded.map((r) => `${r.type}::${r.name}`);
        expect(new Set(keys).size).to.equal(keys.length);
        expect(recorded.filter((r) => r.type === T.fn).map((r) => r.name).sort()).to.deep.equal([
            "render-launcher",
            "video-launcher",
        ]);
        const families = recorded.filter((r) => r.type === T.taskDef).map((r) => r.inputs.family);
        expect(new Set(families).size).to.equal(2);
        // A non-ECR image needs no ECR permission at all.
        const videoExec = JSON.parse(recorded.find((r) => r.name === "video-execution-policy")!.inputs.policy).Statement;
        expect(videoExec.map((s: any) => s.Action)).to.deep.equal([["logs:CreateLogStream", "logs:PutLogEvents"]]);
    });
});

describe("the launcher package of each launch mode", () => {
    for (const launchMode of ["drain", "per-job", "service"] as const) {
        it(`${launchMode}: the handler alone, within 32 KiB`, async () => {
            const { paths, bytes } = await launcherArchive((await buildWorker("sized", { image: { imageUri: "public.example/w:1" }, launchMode })).resources);
            expect(paths).to.deep.equal(["__index.js"]);
            expect(bytes, `${launchMode} launcher package is ${bytes} bytes`).to.be.at.most(32 * 1024);
        });
    }
});

describe("validateLambdaEcsWorkerArgs", () => {
    const cases: [string, Partial<LambdaEcsWorkerArgs> & Record<string, unknown>, RegExp][] = [
        ["no image", { image: undefined }, /^image: required/],
        ["eventSource reserved by AWS", { eventSource: "aws.render" }, /^eventSource: must be 1-256 letters, digits, "\.", "-", "_" or "\/", not starting with "aws\."/],
        ["eventSource with a space", { eventSource: "my worker" }, /^eventSource: must be 1-256/],
        ["eventBusName with a colon that is no ARN", { eventBusName: "bus:x" }, /^eventBusName: must be an event bus name/],
        ["acceptableWaitSeconds zero", { launchMode: "service", acceptableWaitSeconds: 0 }, /^acceptableWaitSeconds: must be an integer from 1 to 86400, got 0/],
        ["expectedJobSeconds fractional", { launchMode: "service", expectedJobSeconds: 1.5 }, /^expectedJobSeconds: must be an integer from 1 to 43200/],
        ["acceptableWaitSeconds outside service mode", { acceptableWaitSeconds: 600 }, /^acceptableWaitSeconds: applies only with launchMode "service", not "drain"/],
        ["expectedJobSeconds outside service mode", { launchMode: "per-job", expectedJobSeconds: 30 }, /^expectedJobSeconds: applies only with launchMode "service", not "per-job"/],
        ["service mode without Container Insights", { launchMode: "service", containerInsights: false }, /^containerInsights: must be true with launchMode "service"/],
        ["spotFallback without Spot", { spotFallback: false }, /^spotFallback: applies only when capacity includes FARGATE_SPOT/],
        ["spotFallback in service mode", { launchMode: "service", capacity: { kind: "FARGATE_SPOT" }, spotFallback: false }, /^spotFallback: applies only with launchMode "drain" or "per-job"/],
        ["both context and imageUri", { image: { context: ".", imageUri: "x" } }, /^image: give exactly one of image.context/],
        ["neither context nor imageUri", { image: {} }, /^image: give exactly one/],
        ["dockerfile with imageUri", { image: { imageUri: "x", dockerfile: "D" } }, /^image: dockerfile applies only with image.context/],
        ["buildRuntimeImage with imageUri", { image: { imageUri: "x", buildRuntimeImage: false } }, /^image: buildRuntimeImage applies only with image.context/],
        ["bad platform", { image: { context: ".", platform: "linux/s390x" as any } }, /^image.platform: must be "linux\/amd64" or "linux\/arm64"/],
        ["cpu not a Fargate size", { cpu: 300 }, /^cpu: must be one of 256, 512, 1024, 2048, 4096, 8192, 16384/],
        ["memory too small for cpu", { cpu: 1024, memory: 1024 }, /^memory: with cpu 1024, Fargate allows 2048-8192 in steps of 1024 MiB, got 1024/],
        ["memory off-step", { cpu: 8192, memory: 20000 }, /^memory: with cpu 8192, Fargate allows 16384-61440 in steps of 4096/],
        ["memory for 256", { cpu: 256, memory: 4096 }, /^memory: with cpu 256, Fargate allows 512, 1024, 2048 MiB/],
        ["empty suffixes", { inputSuffixes: [] }, /^inputSuffixes: must be a non-empty list/],
        ["suffix with a slash", { inputSuffixes: ["a/b"] }, /^inputSuffixes\[0\]: must be a suffix like ".zip"/],
        ["output suffix as input", { inputSuffixes: [".png"] }, /^inputSuffixes\[0\]: ".png" overlaps the output suffix ".png"/],
        ["json input", { inputSuffixes: [".json"] }, /^inputSuffixes\[0\]: ".json" overlaps the output suffix/],
        ["overlapping suffixes", { inputSuffixes: [".zip", "scene.zip"] }, /^inputSuffixes\[1\]: "scene.zip" overlaps ".zip"/],
        ["duplicate suffixes", { inputSuffixes: [".zip", ".zip"] }, /^inputSuffixes\[1\]: ".zip" overlaps ".zip"/],
        ["absolute prefix", { inputPrefix: "/inbox/" }, /^inputPrefix: must be a relative key prefix/],
        ["dotdot output prefix", { outputPrefix: "../x/" }, /^outputPrefix: must be a relative key prefix/],
        ["output under input", { inputPrefix: "in/", outputPrefix: "in/out/" }, /^outputPrefix: must not lie under inputPrefix/],
        ["launch mode", { launchMode: "cron" as any }, /^launchMode: must be one of "drain", "per-job", "service", got "cron"/],
        ["maxTasks zero", { maxTasks: 0 }, /^maxTasks: must be an integer from 1 to 1000, got 0/],
        ["maxTasks fractional", { maxTasks: 2.5 }, /^maxTasks: must be an integer from 1 to 1000, got 2.5/],
        ["launcherConcurrency negative", { launcherConcurrency: -1 }, /^launcherConcurrency: must be an integer from 0 to 1000, got -1/],
        ["launcherConcurrency fractional", { launcherConcurrency: 1.5 }, /^launcherConcurrency: must be an integer from 0 to 1000, got 1.5/],
        // Issue #19: the intake's event source mapping and the reserved concurrency it needs.
        ["launcherConcurrency below the intake's", { launcherConcurrency: 1 }, /^launcherConcurrency: must be 0 \(none reserved\) or at least intakeConcurrency \+ 1 = 6 .*, got 1$/],
        ["launcherConcurrency equal to the intake's", { launcherConcurrency: 3, intakeConcurrency: 3 }, /^launcherConcurrency: must be 0 \(none reserved\) or at least intakeConcurrency \+ 1 = 4 /],
        ["intakeConcurrency 1", { intakeConcurrency: 1 }, /^intakeConcurrency: must be an integer from 2 to 1000, got 1/],
        ["intakeConcurrency too high", { intakeConcurrency: 1001 }, /^intakeConcurrency: must be an integer from 2 to 1000, got 1001/],
        ["intakeBatchSize 0", { intakeBatchSize: 0 }, /^intakeBatchSize: must be an integer from 1 to 10000, got 0/],
        ["intakeBatchSize too high", { intakeBatchSize: 10001 }, /^intakeBatchSize: must be an integer from 1 to 10000, got 10001/],
        ["per-job batches too slow to start in time", { launchMode: "per-job", intakeBatchSize: 100, intakeConcurrency: 5 }, /^intakeBatchSize \/ intakeConcurrency: in launchMode "per-job" their product must be at most 400 .*, got 100 × 5/],
        ["WORKER_CONCURRENCY not a number", { environment: { WORKER_CONCURRENCY: "four" } }, /^environment.WORKER_CONCURRENCY: must be an integer from 1 to 64 .*, got "four"/],
        ["WORKER_CONCURRENCY 0", { environment: { WORKER_CONCURRENCY: "0" } }, /^environment.WORKER_CONCURRENCY: must be an integer from 1 to 64/],
        ["WORKER_CONCURRENCY 65", { environment: { WORKER_CONCURRENCY: "65" } }, /^environment.WORKER_CONCURRENCY: must be an integer from 1 to 64/],
        ["reconcile interval", { reconcileIntervalMinutes: 0 }, /^reconcileIntervalMinutes: must be an integer from 1 to 60, got 0/],
        ["reconcile outside drain", { launchMode: "service", reconcileIntervalMinutes: 5 }, /^reconcileIntervalMinutes: applies only with launchMode "drain", not "service"/],
        ["ephemeral storage", { ephemeralStorageGiB: 500 }, /^ephemeralStorageGiB: must be an integer from 21 to 200/],
        ["stopTimeout", { stopTimeout: 600 }, /^stopTimeout: must be an integer from 2 to 120, got 600/],
        ["jobTimeoutSeconds", { jobTimeoutSeconds: 0 }, /^jobTimeoutSeconds: must be an integer from 1 to 43200/],
        ["jobTimeoutSeconds past SQS's 12 h", { jobTimeoutSeconds: 43201 }, /^jobTimeoutSeconds: must be an integer from 1 to 43200, got 43201/],
        ["input prefix under the output prefix", { inputPrefix: "jobs/in/", outputPrefix: "jobs/" }, /^outputPrefix: must not contain inputPrefix \("jobs\/in\/"\)/],
        ["oldest job alarm", { oldestJobAlarmSeconds: 10 }, /^oldestJobAlarmSeconds: must be an integer from 60 to 1209600/],
        ["visibility", { visibilityTimeoutSeconds: 5 }, /^visibilityTimeoutSeconds: must be an integer from 30 to 43200/],
        ["maxReceiveCount", { maxReceiveCount: 0 }, /^maxReceiveCount: must be an integer from 1 to 999/],
        ["maxReceiveCount whose safety-net redrive would pass SQS's 1000", { maxReceiveCount: 1000 }, /^maxReceiveCount: must be an integer from 1 to 999, got 1000/],
        ["a job timeout that cannot finish within SQS's 12 h (drain)", { jobTimeoutSeconds: 43200 }, /^jobTimeoutSeconds: with launchMode "drain" must be at most 39600 \(SQS hides a received job at most 43200 s, 12 h, from its receipt; 3600 s are kept for the download, the uploads and the heartbeats\), got 43200$/],
        ["a job timeout that cannot finish within SQS's 12 h (service)", { launchMode: "service", jobTimeoutSeconds: 39601 }, /^jobTimeoutSeconds: with launchMode "service" must be at most 39600 .*got 39601$/],
        ["DLQ retention not longer than the work queue's", { messageRetentionSeconds: 1209600 }, /^deadLetterRetentionSeconds: must be greater than messageRetentionSeconds \(SQS keeps a dead-lettered job's original enqueue time, so the dead-letter queue must keep messages longer than the work queue\), got deadLetterRetentionSeconds 1209600 \(the default\) and messageRetentionSeconds 1209600$/],
        ["DLQ retention shorter than the work queue's", { messageRetentionSeconds: 86400, deadLetterRetentionSeconds: 3600 }, /^deadLetterRetentionSeconds: must be greater than messageRetentionSeconds .*got deadLetterRetentionSeconds 3600 and messageRetentionSeconds 86400$/],
        ["retention", { messageRetentionSeconds: 30 }, /^messageRetentionSeconds: must be an integer from 60 to 1209600/],
        ["dlq retention", { deadLetterRetentionSeconds: 2000000 }, /^deadLetterRetentionSeconds: must be an integer from 60 to 1209600/],
        ["log retention", { logRetentionDays: 10 }, /^logRetentionDays: must be one of 1, 3, 5, 7, 14, 30/],
        ["capacity as a string (0.1 form)", { capacity: "FARGATE_SPOT" as any }, /^capacity: must be \{ kind \} with kind one of "FARGATE", "FARGATE_SPOT", "MIXED" \(MIXED with fargateWeight and spotWeight\), got "FARGATE_SPOT"/],
        ["capacity kind", { capacity: { kind: "EC2" as any } }, /^capacity: must be \{ kind \} with kind one of "FARGATE", "FARGATE_SPOT", "MIXED"/],
        ["capacity weights without MIXED", { capacity: { kind: "FARGATE_SPOT", spotWeight: 3 } }, /^capacity.spotWeight: applies only with kind "MIXED", not "FARGATE_SPOT"/],
        ["capacity MIXED without weights", { capacity: { kind: "MIXED", spotWeight: 3 } }, /^capacity.fargateWeight: required with kind "MIXED"/],
        ["capacity zero weights", { capacity: { kind: "MIXED", fargateWeight: 0, spotWeight: 0 } }, /^capacity: fargateWeight and spotWeight can't both be 0/],
        ["capacity negative", { capacity: { kind: "MIXED", fargateWeight: -1, spotWeight: 1 } }, /^capacity.fargateWeight: must be an integer from 0 to 1000/],
        ["subnets without vpc or sg", { subnetIds: ["s"] }, /^vpcId: required with subnetIds when securityGroupIds is not given/],
        ["vpc without subnets", { vpcId: "vpc-1" }, /^vpcId: applies only with subnetIds/],
        ["reserved env", { environment: { QUEUE_URL: "x" } }, /^environment.QUEUE_URL: is set by the component/],
        ["reserved WORKER_ env", { environment: { WORKER_IDLE_EXIT: "0" } }, /^environment.WORKER_IDLE_EXIT: is set by the component/],
        ["reserved one-shot env", { environment: { JOB_KEY: "x" } }, /^environment.JOB_KEY: is set by the component; reserved are QUEUE_URL, DLQ_URL/],
        ["force destroy with existing bucket", { bucketName: "bb-b", forceDestroyBucket: true }, /^forceDestroyBucket: applies only to a bucket this component creates/],
        ["a KMS key without bucketName", { bucketKmsKeyArn: "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" }, /^bucketKmsKeyArn: applies only with bucketName/],
        ["a KMS alias", { bucketName: "media", bucketKmsKeyArn: "arn:aws:kms:us-east-1:123456789012:alias/media" }, /^bucketKmsKeyArn: must be a KMS key ARN/],
        // AWS's rules that the mocks cannot see (sources in validate.ts)
        ["arm64 on FARGATE_SPOT", { image: { context: ".", platform: "linux/arm64" }, capacity: { kind: "FARGATE_SPOT" } }, /^image.platform \/ capacity: Fargate Spot runs only X86_64 Linux tasks/],
        ["arm64 with a Spot weight", { image: { context: ".", platform: "linux/arm64" }, capacity: { kind: "MIXED", fargateWeight: 1, spotWeight: 1 } }, /^image.platform \/ capacity: Fargate Spot runs only X86_64/],
        ["bucket name with capitals", { bucketName: "My_Bucket" }, /^bucketName: must be an S3 bucket name/],
        ["bucket name too short", { bucketName: "ab" }, /^bucketName: must be an S3 bucket name/],
        ["bucket name as an IP address", { bucketName: "192.168.5.4" }, /^bucketName: must be an S3 bucket name/],
        ["bucket name with '..'", { bucketName: "a..b" }, /^bucketName: must be an S3 bucket name/],
        ["input prefix past S3's key length", { inputPrefix: "p/".repeat(501) }, /^inputPrefix: must be at most 1000 bytes \(S3 keys are at most 1024\), got 1002/],
        ["17 subnets", { subnetIds: Array.from({ length: 17 }, (_, i) => `subnet-${i}`), securityGroupIds: ["sg-1"] }, /^subnetIds: ECS takes 1 to 16 subnets per task, got 17/],
        ["6 security groups", { subnetIds: ["s"], securityGroupIds: ["1", "2", "3", "4", "5", "6"] }, /^securityGroupIds: ECS takes 1 to 5 security groups per task, got 6/],
        ["51 tags", { tags: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, "v"])) }, /^tags: at most 50 tags per resource, got 51/],
        ["an aws: tag", { tags: { "aws:owner": "me" } }, /^tags.aws:owner: the "aws:" prefix is reserved for AWS/],
        ["a long tag key", { tags: { ["k".repeat(129)]: "v" } }, /^tags.k+: keys must be 1-128 characters, got 129/],
        ["a long tag value", { tags: { team: "v".repeat(257) } }, /^tags.team: values must be at most 256 characters, got 257/],
    ];
    for (const [title, override, message] of cases) {
        it(`rejects ${title}`, () => {
            const errors = validateLambdaEcsWorkerArgs({ ...MINIMAL, ...override } as LambdaEcsWorkerArgs);
            expect(errors).to.have.length(1, errors.join("\n"));
            expect(errors[0]).to.match(message);
        });
    }

    it("accepts the minimal call and a fully specified one", () => {
        expect(validateLambdaEcsWorkerArgs(MINIMAL)).to.deep.equal([]);
        expect(
            validateLambdaEcsWorkerArgs({
                image: { context: "./worker-image", dockerfile: "Dockerfile", platform: "linux/arm64" },
                inputPrefix: "in/",
                inputSuffixes: [".zip", ".tar"],
                outputPrefix: "out/",
                cpu: 16384,
                memory: 122880,
                capacity: { kind: "FARGATE" },
                subnetIds: ["s"],
                vpcId: "v",
                logRetentionDays: 3653,
                launchMode: "per-job",
                eventBusName: "arn:aws:events:us-east-1:123456789012:event-bus/jobs",
                eventSource: "com.example.render",
            }),
        ).to.deep.equal([]);
        expect(
            validateLambdaEcsWorkerArgs({ ...MINIMAL, launchMode: "service", acceptableWaitSeconds: 600, expectedJobSeconds: 30, eventBusName: "jobs" }),
        ).to.deep.equal([]);
    });

    it("accepts the queue limits at their edges: 39600 s jobs in the queue modes, 43200 s per job, a DLQ that keeps messages one second longer", () => {
        expect(validateLambdaEcsWorkerArgs({ ...MINIMAL, jobTimeoutSeconds: 39600 })).to.deep.equal([]);
        expect(validateLambdaEcsWorkerArgs({ ...MINIMAL, launchMode: "service", jobTimeoutSeconds: 39600 })).to.deep.equal([]);
        expect(validateLambdaEcsWorkerArgs({ ...MINIMAL, launchMode: "per-job", jobTimeoutSeconds: 43200 })).to.deep.equal([]);
        expect(validateLambdaEcsWorkerArgs({ ...MINIMAL, messageRetentionSeconds: 86400, deadLetterRetentionSeconds: 86401 })).to.deep.equal([]);
        expect(validateLambdaEcsWorkerArgs({ ...MINIMAL, maxReceiveCount: 999 })).to.deep.equal([]);
    });

    it("accepts arm64 on on-demand FARGATE, amd64 on Spot, a valid bucket name and 50 tags", () => {
        expect(validateLambdaEcsWorkerArgs({ image: { context: ".", platform: "linux/arm64" }, capacity: { kind: "MIXED", fargateWeight: 1, spotWeight: 0 } })).to.deep.equal([]);
        expect(validateLambdaEcsWorkerArgs({ image: { context: ".", platform: "linux/arm64" }, launcherConcurrency: 0 })).to.deep.equal([]);
        expect(validateLambdaEcsWorkerArgs({ image: { context: "." }, launcherConcurrency: 6, intakeConcurrency: 5, intakeBatchSize: 10000, environment: { WORKER_CONCURRENCY: "64" } })).to.deep.equal([]);
        expect(validateLambdaEcsWorkerArgs({ image: { context: "." }, launchMode: "per-job", intakeConcurrency: 2, intakeBatchSize: 200 })).to.deep.equal([]);
        expect(validateLambdaEcsWorkerArgs({ image: { context: ".", platform: "linux/amd64" }, capacity: { kind: "FARGATE_SPOT" }, bucketName: "my.render-bucket-01" })).to.deep.equal([]);
        expect(validateLambdaEcsWorkerArgs({ ...MINIMAL, tags: Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, "v".repeat(256)])) })).to.deep.equal([]);
    });

    it("GIVEN buildRuntimeImage false THEN only the worker's own image is built, with no RUNTIME_IMAGE argument", async () => {
        const { resources } = await buildWorker("own", { image: { context: "./own", dockerfile: "./own/Dockerfile.gpu", buildRuntimeImage: false, platform: "linux/arm64" } });
        const images = resources.filter((r) => r.type === T.image);
        expect(images.map((r) => r.name)).to.deep.equal(["own-image"]);
        expect(images[0].inputs).to.deep.equal({
            repositoryUrl: "123456789012.dkr.ecr.us-east-1.amazonaws.com/own-repo-abc123",
            context: "./own",
            dockerfile: "./own/Dockerfile.gpu",
            platform: "linux/arm64",
        });
    });

    it("GIVEN linux/arm64 on on-demand FARGATE THEN the task definition runs ARM64", async () => {
        const { resources } = await buildWorker("arm", { image: { imageUri: "public.example/arm:1", platform: "linux/arm64" } });
        expect(one(resources, T.taskDef, "arm-task").inputs.runtimePlatform).to.deep.equal({ operatingSystemFamily: "LINUX", cpuArchitecture: "ARM64" });
    });

    it("GIVEN bucketKmsKeyArn THEN the task role may use exactly that key through S3 in the stack's region", async () => {
        const key = `arn:aws:kms:${FAKE_REGION}:${FAKE_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
        const { resources } = await buildWorker("kms", { ...MINIMAL, bucketName: "media-uploads", bucketKmsKeyArn: key });
        const kms = statements(resources, "kms-task-policy").filter((s) => [s.Action].flat().some((a: string) => a.startsWith("kms:")));
        expect(kms).to.deep.equal([
            { Effect: "Allow", Action: ["kms:Decrypt", "kms:GenerateDataKey"], Resource: key, Condition: { StringEquals: { "kms:ViaService": `s3.${FAKE_REGION}.amazonaws.com` } } },
        ]);
        // No other role may use the key.
        expect(allStatements(resources).filter((s) => [s.Action].flat().some((a: string) => a.startsWith("kms:")))).to.have.length(1);
    });

    const nameCases: [string, string, RegExp][] = [
        ["a dot", "render.v2", /^name: must be letters, digits, "-" or "_"/],
        ["a space", "my render", /^name: must be letters, digits, "-" or "_"/],
        ["33 characters", "r".repeat(33), /^name: must be at most 32 characters .* got 33/],
    ];
    for (const [title, name, message] of nameCases) {
        it(`rejects a component name with ${title}`, () => {
            expect(validateLambdaEcsWorkerArgs(MINIMAL, name)).to.have.length(1);
            expect(validateLambdaEcsWorkerArgs(MINIMAL, name)[0]).to.match(message);
        });
    }
    it("accepts a 32-character name of letters, digits, - and _, and the constructor checks its name", () => {
        expect(validateLambdaEcsWorkerArgs(MINIMAL, "Render_v2-" + "x".repeat(22))).to.deep.equal([]);
        expect(() => new LambdaEcsWorker("render.v2", MINIMAL)).to.throw(/LambdaEcsWorker "render.v2": invalid arguments:\n  name: must be letters/);
    });

    it("makes the constructor throw a ResourceError naming the worker and every bad argument", () => {
        expect(() => new LambdaEcsWorker("bad", { image: { context: "." }, cpu: 3, maxTasks: -1 })).to.throw(
            /LambdaEcsWorker "bad": invalid arguments:\n  maxTasks: must be an integer from 1 to 1000, got -1\n  cpu: must be one of/,
        );
    });
});

describe("component helpers", () => {
    it("ecrRepositoryArn parses ECR URIs and rejects others", () => {
        const table: [string, string | undefined][] = [
            ["123456789012.dkr.ecr.us-east-1.amazonaws.com/render:latest", "arn:aws:ecr:us-east-1:123456789012:repository/render"],
            ["123456789012.dkr.ecr.eu-west-1.amazonaws.com/a/b@sha256:00", "arn:aws:ecr:eu-west-1:123456789012:repository/a/b"],
            ["123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/r", "arn:aws-cn:ecr:cn-north-1:123456789012:repository/r"],
            ["123456789012.dkr.ecr.us-gov-west-1.amazonaws.com/r:1", "arn:aws-us-gov:ecr:us-gov-west-1:123456789012:repository/r"],
            ["public.example/video:1", undefined],
            ["node:22-bookworm-slim", undefined],
        ];
        for (const [uri, expected] of table) expect(ecrRepositoryArn(uri), uri).to.equal(expected);
    });

    it("capacityProviderStrategy maps each capacity setting", () => {
        expect(capacityProviderStrategy({ kind: "FARGATE" })).to.deep.equal([{ capacityProvider: "FARGATE", weight: 1 }]);
        expect(capacityProviderStrategy({ kind: "FARGATE_SPOT" })).to.deep.equal([{ capacityProvider: "FARGATE_SPOT", weight: 1 }]);
        expect(capacityProviderStrategy({ kind: "MIXED", fargateWeight: 0, spotWeight: 2 })).to.deep.equal([
            { capacityProvider: "FARGATE_SPOT", weight: 2 },
        ]);
        expect(capacityProviderStrategy({ kind: "MIXED", fargateWeight: 1, spotWeight: 4, fargateBase: 2 })).to.deep.equal([
            { capacityProvider: "FARGATE", weight: 1, base: 2 },
            { capacityProvider: "FARGATE_SPOT", weight: 4 },
        ]);
    });
});
