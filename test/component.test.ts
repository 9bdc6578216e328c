import { FAKE_ACCOUNT, FAKE_REGION, RecordedResource, typeChain } from "../harness/mocks";

import { expect } from "chai";

import {
    capacityProviderStrategy,
    ecrRepositoryArn,
    LambdaEcsWorker,
    LambdaEcsWorkerArgs,
    validateLambdaEcsWorkerArgs,
} from "../components";
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
 * The launcher's statements every mode has: Lambda's failed-invocation events on the bus (its on-failure destination),
 * Job Failed with its own source (dead-lettered invocations, per-job start failures), its logs.
 */
function launcherCommonStatements(name: string): object[] {
    return [
        putEvents("lambda", ["Lambda Function Invocation Result - Failure"]),
        putEvents(`lambda-ecs-worker.${name}`, ["Job Failed"]),
        { Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: `${arn("logs", `log-group:${name}-launcher-logs-0000000`)}:*` },
    ];
}

/** Drain: queue and read the backlog, list (on "*", this cluster only) and describe its tasks, start them. */
function drainLauncherStatements(name: string): object[] {
    const onCluster = { ArnEquals: { "ecs:cluster": arn("ecs", `cluster/${name}-cluster`) } };
    return [
        { Effect: "Allow", Action: ["sqs:SendMessage", "sqs:GetQueueAttributes"], Resource: queueArn(`${name}-queue-0000000`) },
        { Effect: "Allow", Action: "ecs:ListTasks", Resource: "*", Condition: onCluster },
        { Effect: "Allow", Action: "ecs:DescribeTasks", Resource: arn("ecs", `task/${name}-cluster/*`), Condition: onCluster },
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
                    `${T.alarm} render-dlq-alarm`,
                    `${T.alarm} render-stuck-alarm`,
                    `${T.repo} render-repo`,
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
                    `${T.permission} render-launcher-permission`,
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
            expect(children).to.have.length(40);
            for (const r of children) {
                expect(typeChain(r.urn), r.name).to.equal(`${COMPONENT}$${r.type}`);
            }
            expect(typeChain(one(resources, COMPONENT, "render").urn)).to.equal(COMPONENT);
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

        it("THEN both queues are encrypted and the work queue redrives to the DLQ after 3 receives", () => {
            const queue = one(resources, T.queue, "render-queue").inputs;
            const dlq = one(resources, T.queue, "render-dlq").inputs;
            expect(queue.sqsManagedSseEnabled).to.equal(true);
            expect(dlq.sqsManagedSseEnabled).to.equal(true);
            expect(JSON.parse(queue.redrivePolicy)).to.deep.equal({
                deadLetterTargetArn: queueArn("render-dlq-0000000"),
                maxReceiveCount: 3,
            });
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
            const stuck = one(resources, T.alarm, "render-stuck-alarm").inputs;
            expect(stuck).to.include({ metricName: "ApproximateAgeOfOldestMessage", comparisonOperator: "GreaterThanThreshold", threshold: 3600 });
            expect(stuck.dimensions).to.deep.equal({ QueueName: "render-queue-0000000" });
            expect(queue.visibilityTimeoutSeconds).to.equal(300);
        });

        it("THEN the notification invokes the launcher for .zip uploads only, after the permission exists", () => {
            const n = one(resources, T.notification, "render-notification").inputs;
            expect(n.bucket).to.equal("render-bucket-0000000");
            expect(n.lambdaFunctions).to.deep.equal([
                {
                    lambdaFunctionArn: arn("lambda", "function:render-launcher-0000000"),
                    events: ["s3:ObjectCreated:*"],
                    filterSuffix: ".zip",
                },
            ]);
            const p = one(resources, T.permission, "render-launcher-permission").inputs;
            expect(p).to.include({
                action: "lambda:InvokeFunction",
                principal: "s3.amazonaws.com",
                sourceArn: "arn:aws:s3:::render-bucket-0000000",
                sourceAccount: FAKE_ACCOUNT,
                function: "render-launcher-0000000",
            });
        });

        it("THEN the task role may read inputs, write outputs and work the queue (no GetQueueAttributes: the component sets its settings), nothing more", () => {
            expect(statements(resources, "render-task-policy")).to.deep.equal([
                { Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::render-bucket-0000000/*" },
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
                    Action: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"],
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

        it("THEN the drain launcher may queue, count (ListTasks on \"*\", on this cluster only), describe and start this family's tasks, and pass exactly the two task roles", () => {
            expect(statements(resources, "render-launcher-policy")).to.deep.equal(drainLauncherStatements("render"));
        });

        it("THEN no statement grants Resource '*' except ecr:GetAuthorizationToken and ecs:ListTasks (AWS authorizes both only on '*'; ListTasks on this cluster only), and no managed policy is attached", () => {
            const wildcard = allStatements(resources).filter((s) => [s.Resource].flat().includes("*"));
            expect(wildcard).to.deep.equal([
                { Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" },
                { Effect: "Allow", Action: "ecs:ListTasks", Resource: "*", Condition: { ArnEquals: { "ecs:cluster": arn("ecs", "cluster/render-cluster") } } },
            ]);
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
            expect(fn.reservedConcurrentExecutions).to.equal(1);
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
                capacity: { fargateWeight: 1, spotWeight: 3, fargateBase: 1 },
                maxTasks: 4,
                launcherConcurrency: "unreserved",
                environment: { QUALITY: "9", WORKER_CONCURRENCY: "2" },
                alarmActions: ["arn:aws:sns:eu-west-1:111122223333:oncall"],
                tags: { team: "vision" },
            }));
        });

        it("THEN it creates no bucket, repository, image or security group", () => {
            for (const t of [T.bucket, T.publicAccess, T.bucketPolicy, T.lifecycle, T.repo, T.image, T.sg]) {
                expect(resources.filter((r) => r.type === t), t).to.have.length(0);
            }
            // 22 children and the component; with the job-event routing, dashboard and its two alarms.
            expect(resources).to.have.length(32);
        });

        it("THEN one notification entry per suffix carries the prefix", () => {
            const n = one(resources, T.notification, "scan-notification").inputs;
            expect(n.bucket).to.equal("shared-bucket");
            expect(n.lambdaFunctions.map((f: any) => [f.filterPrefix, f.filterSuffix])).to.deep.equal([
                ["inbox/", ".zip"],
                ["inbox/", ".ZIP"],
                ["inbox/", ".tar.gz"],
            ]);
        });

        it("THEN the task role reads the inbox and writes only output files under the output prefix", () => {
            const s = statements(resources, "scan-task-policy");
            expect(s[0]).to.deep.equal({ Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::shared-bucket/inbox/*" });
            expect(s[1].Resource).to.deep.equal([
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
                [T.queue, T.logGroup, T.cluster, T.role, T.taskDef, T.fn, T.alarm, T.eventRule].includes(r.type),
            );
            expect(taggable).to.have.length(17);
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

        it("THEN the service launcher may queue, read the backlog and wake exactly its service: no RunTask, no PassRole, no DLQ", () => {
            expect(statements(resources, "svc-launcher-policy")).to.deep.equal([
                { Effect: "Allow", Action: ["sqs:SendMessage", "sqs:GetQueueAttributes"], Resource: queueArn("svc-queue-0000000") },
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
                ["s3:PutObject", ["arn:aws:s3:::svc-bucket-0000000/*.png", "arn:aws:s3:::svc-bucket-0000000/*.log", "arn:aws:s3:::svc-bucket-0000000/*.error.json"]],
                ["s3:AbortMultipartUpload", ["arn:aws:s3:::svc-bucket-0000000/*.png", "arn:aws:s3:::svc-bucket-0000000/*.log"]],
                ["s3:DeleteObject", "arn:aws:s3:::svc-bucket-0000000/*.error.json"],
                [["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"], queueArn("svc-queue-0000000")],
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

        it("THEN the per-job launcher may start, tag and pass, and dead-letter: nothing on the work queue, no listing or describing", () => {
            expect(statements(resources, "job-launcher-policy")).to.deep.equal([
                ...runTaskStatements("job"),
                { Effect: "Allow", Action: "sqs:SendMessage", Resource: queueArn("job-dlq-0000000") },
                ...launcherCommonStatements("job"),
            ]);
        });

        it("THEN the per-job task role has no permission on the work queue (its one job comes from its environment)", () => {
            expect(statements(resources, "job-task-policy")).to.deep.equal([
                { Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::job-bucket-0000000/*" },
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
        ["spotFallback in service mode", { launchMode: "service", capacity: "FARGATE_SPOT", spotFallback: false }, /^spotFallback: applies only with launchMode "drain" or "per-job"/],
        ["both context and imageUri", { image: { context: ".", imageUri: "x" } }, /^image: give exactly one of image.context/],
        ["neither context nor imageUri", { image: {} }, /^image: give exactly one/],
        ["dockerfile with imageUri", { image: { imageUri: "x", dockerfile: "D" } }, /^image: dockerfile applies only with image.context/],
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
        ["launcherConcurrency", { launcherConcurrency: 0 }, /^launcherConcurrency: must be an integer from 1 to 1000/],
        ["reconcile interval", { reconcileIntervalMinutes: 0 }, /^reconcileIntervalMinutes: must be an integer from 1 to 60, got 0/],
        ["reconcile outside drain", { launchMode: "service", reconcileIntervalMinutes: 5 }, /^reconcileIntervalMinutes: applies only with launchMode "drain", not "service"/],
        ["ephemeral storage", { ephemeralStorageGiB: 500 }, /^ephemeralStorageGiB: must be an integer from 21 to 200/],
        ["stopTimeout", { stopTimeout: 600 }, /^stopTimeout: must be an integer from 2 to 120, got 600/],
        ["jobTimeoutSeconds", { jobTimeoutSeconds: 0 }, /^jobTimeoutSeconds: must be an integer from 1 to 43200/],
        ["jobTimeoutSeconds past SQS's 12 h", { jobTimeoutSeconds: 43201 }, /^jobTimeoutSeconds: must be an integer from 1 to 43200, got 43201/],
        ["input prefix under the output prefix", { inputPrefix: "jobs/in/", outputPrefix: "jobs/" }, /^outputPrefix: must not contain inputPrefix \("jobs\/in\/"\)/],
        ["oldest job alarm", { oldestJobAlarmSeconds: 10 }, /^oldestJobAlarmSeconds: must be an integer from 60 to 1209600/],
        ["visibility", { visibilityTimeoutSeconds: 5 }, /^visibilityTimeoutSeconds: must be an integer from 30 to 43200/],
        ["maxReceiveCount", { maxReceiveCount: 0 }, /^maxReceiveCount: must be an integer from 1 to 1000/],
        ["retention", { messageRetentionSeconds: 30 }, /^messageRetentionSeconds: must be an integer from 60 to 1209600/],
        ["dlq retention", { deadLetterRetentionSeconds: 2000000 }, /^deadLetterRetentionSeconds: must be an integer from 60 to 1209600/],
        ["log retention", { logRetentionDays: 10 }, /^logRetentionDays: must be one of 1, 3, 5, 7, 14, 30/],
        ["capacity string", { capacity: "EC2" as any }, /^capacity: must be "FARGATE", "FARGATE_SPOT" or \{ fargateWeight, spotWeight \}, got "EC2"/],
        ["capacity zero weights", { capacity: { fargateWeight: 0, spotWeight: 0 } }, /^capacity: fargateWeight and spotWeight can't both be 0/],
        ["capacity negative", { capacity: { fargateWeight: -1, spotWeight: 1 } }, /^capacity.fargateWeight: must be an integer from 0 to 1000/],
        ["subnets without vpc or sg", { subnetIds: ["s"] }, /^vpcId: required with subnetIds when securityGroupIds is not given/],
        ["vpc without subnets", { vpcId: "vpc-1" }, /^vpcId: applies only with subnetIds/],
        ["reserved env", { environment: { QUEUE_URL: "x" } }, /^environment.QUEUE_URL: is set by the component/],
        ["reserved WORKER_ env", { environment: { WORKER_IDLE_EXIT: "0" } }, /^environment.WORKER_IDLE_EXIT: is set by the component/],
        ["reserved one-shot env", { environment: { JOB_KEY: "x" } }, /^environment.JOB_KEY: is set by the component; reserved are QUEUE_URL, DLQ_URL/],
        ["force destroy with existing bucket", { bucketName: "bb-b", forceDestroyBucket: true }, /^forceDestroyBucket: applies only to a bucket this component creates/],
        ["a KMS key without bucketName", { bucketKmsKeyArn: "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" }, /^bucketKmsKeyArn: applies only with bucketName/],
        ["a KMS alias", { bucketName: "media", bucketKmsKeyArn: "arn:aws:kms:us-east-1:123456789012:alias/media" }, /^bucketKmsKeyArn: must be a KMS key ARN/],
        // AWS's rules that the mocks cannot see (sources in validate.ts)
        ["arm64 on FARGATE_SPOT", { image: { context: ".", platform: "linux/arm64" }, capacity: "FARGATE_SPOT" }, /^image.platform \/ capacity: Fargate Spot runs only X86_64 Linux tasks/],
        ["arm64 with a Spot weight", { image: { context: ".", platform: "linux/arm64" }, capacity: { fargateWeight: 1, spotWeight: 1 } }, /^image.platform \/ capacity: Fargate Spot runs only X86_64/],
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
                capacity: "FARGATE",
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

    it("accepts arm64 on on-demand FARGATE, amd64 on Spot, a valid bucket name and 50 tags", () => {
        expect(validateLambdaEcsWorkerArgs({ image: { context: ".", platform: "linux/arm64" }, capacity: { fargateWeight: 1, spotWeight: 0 } })).to.deep.equal([]);
        expect(validateLambdaEcsWorkerArgs({ image: { context: ".", platform: "linux/amd64" }, capacity: "FARGATE_SPOT", bucketName: "my.render-bucket-01" })).to.deep.equal([]);
        expect(validateLambdaEcsWorkerArgs({ ...MINIMAL, tags: Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, "v".repeat(256)])) })).to.deep.equal([]);
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
        expect(capacityProviderStrategy("FARGATE")).to.deep.equal([{ capacityProvider: "FARGATE", weight: 1 }]);
        expect(capacityProviderStrategy("FARGATE_SPOT")).to.deep.equal([{ capacityProvider: "FARGATE_SPOT", weight: 1 }]);
        expect(capacityProviderStrategy({ fargateWeight: 0, spotWeight: 2 })).to.deep.equal([
            { capacityProvider: "FARGATE_SPOT", weight: 2 },
        ]);
        expect(capacityProviderStrategy({ fargateWeight: 1, spotWeight: 4, fargateBase: 2 })).to.deep.equal([
            { capacityProvider: "FARGATE", weight: 1, base: 2 },
            { capacityProvider: "FARGATE_SPOT", weight: 4 },
        ]);
    });
});
