/**
 * The component's IAM documents, built from plain ARNs WITHOUT Pulumi mocks: the builders are pure, so each case
 * states the exact statements a role gets. (test/component.test.ts checks the same documents as the stack renders them.)
 */
import { expect } from "chai";

import * as pulumi from "@pulumi/pulumi";

import {
    allow,
    assumeRolePolicy,
    bucketPolicy,
    deadLetterQueuePolicy,
    executionRolePolicy,
    intakeQueuePolicy,
    launcherRolePolicy,
    PolicyDocument,
    str,
    taskRolePolicy,
} from "../components/lambda-ecs-worker/policies";

const BUCKET = "arn:aws:s3:::inbox";
const QUEUE = "arn:aws:sqs:us-east-1:123456789012:render-queue";
const DLQ = "arn:aws:sqs:us-east-1:123456789012:render-dlq";
const INTAKE = "arn:aws:sqs:us-east-1:123456789012:render-intake";
const STATE_TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/render-launcher-state";
const LOGS = "arn:aws:logs:us-east-1:123456789012:log-group:render-logs";
const REPO = "arn:aws:ecr:us-east-1:123456789012:repository/render";
const CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/render-cluster";
const TASK_ROLE = "arn:aws:iam::123456789012:role/render-task-role";
const EXEC_ROLE = "arn:aws:iam::123456789012:role/render-execution-role";
const RULE = "arn:aws:events:us-east-1:123456789012:rule/render-start-failures";
const FAILURES_RULE = "arn:aws:events:us-east-1:123456789012:rule/render-launcher-failures";
const LOGS_STATEMENT = { Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: `${LOGS}:*` };
const QUEUE_CONSUMER = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:SendMessage"];
const DLQ_SEND = { Effect: "Allow", Action: "sqs:SendMessage", Resource: DLQ };
const BUS = "arn:aws:events:us-east-1:123456789012:event-bus/default";
const SOURCE = "lambda-ecs-worker.render";
const EVENTS = { eventBusArn: BUS, eventSource: SOURCE };
const putEvents = (source: string, detailTypes: string[]) => ({
    Effect: "Allow",
    Action: "events:PutEvents",
    Resource: BUS,
    Condition: {
        "ForAllValues:StringEquals": { "events:source": [source], "events:detail-type": detailTypes },
        Null: { "events:source": "false", "events:detail-type": "false" },
    },
});
/** The worker publishes one event per job, on exactly the bus, with exactly its source. */
const TASK_PUT_EVENTS = putEvents(SOURCE, ["Job Succeeded", "Job Failed"]);
/** Lambda puts the launcher's failed invocations on the bus (its on-failure destination) with the launcher role. */
const LAMBDA_PUT_FAILURES = putEvents("lambda", ["Lambda Function Invocation Result - Failure"]);
/** The launcher publishes Job Failed for jobs that end in it (dead-lettered invocations, per-job start failures). */
const LAUNCHER_PUT_EVENTS = putEvents(SOURCE, ["Job Failed"]);
const LAUNCHER_EVENTS = [LAMBDA_PUT_FAILURES, LAUNCHER_PUT_EVENTS];
const LAUNCHER_ARNS = {
    partition: "aws",
    region: "us-east-1",
    account: "123456789012",
    family: "project-dev-render",
    clusterArn: CLUSTER,
    clusterName: "render-cluster",
    queueArn: QUEUE,
    deadLetterQueueArn: DLQ,
    intakeQueueArn: INTAKE,
    taskRoleArn: TASK_ROLE,
    executionRoleArn: EXEC_ROLE,
    logGroupArn: LOGS,
    ...EVENTS,
};
/** Issue #19: the event source mapping polls the intake with the launcher's role; the launcher dead-letters in every mode. */
const INTAKE_CONSUMER = { Effect: "Allow", Action: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], Resource: INTAKE };
const COORDINATE = { Effect: "Allow", Action: "dynamodb:UpdateItem", Resource: STATE_TABLE };
const RUN_TASKS = [
    {
        Effect: "Allow",
        Action: "ecs:RunTask",
        Resource: "arn:aws:ecs:us-east-1:123456789012:task-definition/project-dev-render:*",
        Condition: { ArnEquals: { "ecs:cluster": CLUSTER } },
    },
    {
        Effect: "Allow",
        Action: "ecs:TagResource",
        Resource: "arn:aws:ecs:us-east-1:123456789012:task/render-cluster/*",
        Condition: { StringEquals: { "ecs:CreateAction": "RunTask" } },
    },
    {
        Effect: "Allow",
        Action: "iam:PassRole",
        Resource: [TASK_ROLE, EXEC_ROLE],
        Condition: { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } },
    },
];

const cases: { what: string; document: PolicyDocument; statements: object[] }[] = [
    {
        what: "the created bucket denies every request without TLS, on the bucket and its objects",
        document: bucketPolicy(BUCKET),
        statements: [
            {
                Sid: "DenyInsecureTransport",
                Effect: "Deny",
                Principal: "*",
                Action: "s3:*",
                Resource: [BUCKET, `${BUCKET}/*`],
                Condition: { Bool: { "aws:SecureTransport": "false" } },
            },
        ],
    },
    {
        what: "the execution role pulls from exactly the image's ECR repository (the token only on *) and writes the task logs",
        document: executionRolePolicy({ repositoryArn: REPO, logGroupArn: LOGS }),
        statements: [
            { Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" },
            { Effect: "Allow", Action: ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"], Resource: REPO },
            LOGS_STATEMENT,
        ],
    },
    {
        what: "the execution role of an image outside ECR gets no ECR statement",
        document: executionRolePolicy({ repositoryArn: undefined, logGroupArn: LOGS }),
        statements: [LOGS_STATEMENT],
    },
    {
        what: "the task role reads inputs, writes outputs next to them, consumes the queue (no GetQueueAttributes) and dead-letters",
        document: taskRolePolicy({ launchMode: "drain", bucketArn: BUCKET, inputPrefix: "", outputPrefix: "", queueArn: QUEUE, deadLetterQueueArn: DLQ, ...EVENTS }),
        statements: [
            { Effect: "Allow", Action: "s3:GetObject", Resource: `${BUCKET}/*` },
            { Effect: "Allow", Action: "s3:ListBucket", Resource: BUCKET, Condition: { StringLike: { "s3:prefix": "*" } } },
            { Effect: "Allow", Action: "s3:PutObject", Resource: [`${BUCKET}/*.png`, `${BUCKET}/*.log`, `${BUCKET}/*.error.json`] },
            { Effect: "Allow", Action: "s3:AbortMultipartUpload", Resource: [`${BUCKET}/*.png`, `${BUCKET}/*.log`] },
            { Effect: "Allow", Action: "s3:DeleteObject", Resource: `${BUCKET}/*.error.json` },
            { Effect: "Allow", Action: QUEUE_CONSUMER, Resource: QUEUE },
            { Effect: "Allow", Action: "sqs:SendMessage", Resource: DLQ },
            TASK_PUT_EVENTS,
        ],
    },
    {
        what: "with outputPrefix the task role writes only under it, and reads only under inputPrefix",
        document: taskRolePolicy({ launchMode: "drain", bucketArn: BUCKET, inputPrefix: "in/", outputPrefix: "out/", queueArn: QUEUE, deadLetterQueueArn: DLQ, ...EVENTS }),
        statements: [
            { Effect: "Allow", Action: "s3:GetObject", Resource: `${BUCKET}/in/*` },
            { Effect: "Allow", Action: "s3:ListBucket", Resource: BUCKET, Condition: { StringLike: { "s3:prefix": "in/*" } } },
            { Effect: "Allow", Action: "s3:PutObject", Resource: [`${BUCKET}/out/*.png`, `${BUCKET}/out/*.log`, `${BUCKET}/out/*.error.json`] },
            { Effect: "Allow", Action: "s3:AbortMultipartUpload", Resource: [`${BUCKET}/out/*.png`, `${BUCKET}/out/*.log`] },
            { Effect: "Allow", Action: "s3:DeleteObject", Resource: `${BUCKET}/out/*.error.json` },
            { Effect: "Allow", Action: QUEUE_CONSUMER, Resource: QUEUE },
            { Effect: "Allow", Action: "sqs:SendMessage", Resource: DLQ },
            TASK_PUT_EVENTS,
        ],
    },
    {
        what: "with only inputPrefix the task role writes outputs next to the inputs, under inputPrefix",
        document: taskRolePolicy({ launchMode: "drain", bucketArn: BUCKET, inputPrefix: "in/", outputPrefix: "", queueArn: QUEUE, deadLetterQueueArn: DLQ, ...EVENTS }),
        statements: [
            { Effect: "Allow", Action: "s3:GetObject", Resource: `${BUCKET}/in/*` },
            { Effect: "Allow", Action: "s3:ListBucket", Resource: BUCKET, Condition: { StringLike: { "s3:prefix": "in/*" } } },
            { Effect: "Allow", Action: "s3:PutObject", Resource: [`${BUCKET}/in/*.png`, `${BUCKET}/in/*.log`, `${BUCKET}/in/*.error.json`] },
            { Effect: "Allow", Action: "s3:AbortMultipartUpload", Resource: [`${BUCKET}/in/*.png`, `${BUCKET}/in/*.log`] },
            { Effect: "Allow", Action: "s3:DeleteObject", Resource: `${BUCKET}/in/*.error.json` },
            { Effect: "Allow", Action: QUEUE_CONSUMER, Resource: QUEUE },
            { Effect: "Allow", Action: "sqs:SendMessage", Resource: DLQ },
            TASK_PUT_EVENTS,
        ],
    },
    {
        what: "in per-job mode the task role never touches the work queue (its one job comes from its environment)",
        document: taskRolePolicy({ launchMode: "per-job", bucketArn: BUCKET, inputPrefix: "", outputPrefix: "", queueArn: QUEUE, deadLetterQueueArn: DLQ, ...EVENTS }),
        statements: [
            { Effect: "Allow", Action: "s3:GetObject", Resource: `${BUCKET}/*` },
            { Effect: "Allow", Action: "s3:ListBucket", Resource: BUCKET, Condition: { StringLike: { "s3:prefix": "*" } } },
            { Effect: "Allow", Action: "s3:PutObject", Resource: [`${BUCKET}/*.png`, `${BUCKET}/*.log`, `${BUCKET}/*.error.json`] },
            { Effect: "Allow", Action: "s3:AbortMultipartUpload", Resource: [`${BUCKET}/*.png`, `${BUCKET}/*.log`] },
            { Effect: "Allow", Action: "s3:DeleteObject", Resource: `${BUCKET}/*.error.json` },
            DLQ_SEND,
            TASK_PUT_EVENTS,
        ],
    },
    {
        what: "in service mode the task role may also set its task's scale-in protection (the agent calls it), on its cluster's tasks only",
        document: taskRolePolicy({
            launchMode: "service",
            bucketArn: BUCKET,
            inputPrefix: "",
            outputPrefix: "",
            queueArn: QUEUE,
            deadLetterQueueArn: DLQ,
            ...EVENTS,
            clusterArn: CLUSTER,
            clusterName: "render-cluster",
            partition: "aws",
            region: "us-east-1",
            account: "123456789012",
        }),
        statements: [
            { Effect: "Allow", Action: "s3:GetObject", Resource: `${BUCKET}/*` },
            { Effect: "Allow", Action: "s3:ListBucket", Resource: BUCKET, Condition: { StringLike: { "s3:prefix": "*" } } },
            { Effect: "Allow", Action: "s3:PutObject", Resource: [`${BUCKET}/*.png`, `${BUCKET}/*.log`, `${BUCKET}/*.error.json`] },
            { Effect: "Allow", Action: "s3:AbortMultipartUpload", Resource: [`${BUCKET}/*.png`, `${BUCKET}/*.log`] },
            { Effect: "Allow", Action: "s3:DeleteObject", Resource: `${BUCKET}/*.error.json` },
            { Effect: "Allow", Action: QUEUE_CONSUMER, Resource: QUEUE },
            DLQ_SEND,
            TASK_PUT_EVENTS,
            {
                Effect: "Allow",
                Action: "ecs:UpdateTaskProtection",
                Resource: "arn:aws:ecs:us-east-1:123456789012:task/render-cluster/*",
                Condition: { ArnEquals: { "ecs:cluster": CLUSTER } },
            },
        ],
    },
    {
        what: "drain: the launcher consumes the intake, queues and reads the backlog, coordinates on its table, counts its cluster's tasks (DescribeClusters: no listing), runs, tags, passes the two roles, dead-letters",
        document: launcherRolePolicy({ launchMode: "drain", ...LAUNCHER_ARNS, stateTableArn: STATE_TABLE }),
        statements: [
            INTAKE_CONSUMER,
            { Effect: "Allow", Action: ["sqs:SendMessage", "sqs:GetQueueAttributes"], Resource: QUEUE },
            COORDINATE,
            { Effect: "Allow", Action: "ecs:DescribeClusters", Resource: CLUSTER },
            ...RUN_TASKS,
            DLQ_SEND,
            ...LAUNCHER_EVENTS,
            LOGS_STATEMENT,
        ],
    },
    {
        what: "per-job: the launcher consumes the intake, runs, tags and passes, dead-letters; nothing on the work queue, no table, no counting",
        document: launcherRolePolicy({ launchMode: "per-job", ...LAUNCHER_ARNS }),
        statements: [INTAKE_CONSUMER, ...RUN_TASKS, DLQ_SEND, ...LAUNCHER_EVENTS, LOGS_STATEMENT],
    },
    {
        what: "service: the launcher consumes the intake, queues, reads the backlog, coordinates on its table and wakes exactly its service (the service starts tasks)",
        document: launcherRolePolicy({ launchMode: "service", ...LAUNCHER_ARNS, stateTableArn: STATE_TABLE, serviceName: "render-service" }),
        statements: [
            INTAKE_CONSUMER,
            { Effect: "Allow", Action: ["sqs:SendMessage", "sqs:GetQueueAttributes"], Resource: QUEUE },
            COORDINATE,
            {
                Effect: "Allow",
                Action: ["ecs:DescribeServices", "ecs:UpdateService"],
                Resource: "arn:aws:ecs:us-east-1:123456789012:service/render-cluster/render-service",
                Condition: { ArnEquals: { "ecs:cluster": CLUSTER } },
            },
            DLQ_SEND,
            ...LAUNCHER_EVENTS,
            LOGS_STATEMENT,
        ],
    },
    {
        what: "S3 may send to the intake queue from exactly the bucket, in exactly the stack's account",
        document: intakeQueuePolicy({ intakeQueueArn: INTAKE, bucketArn: BUCKET, account: "123456789012" }),
        statements: [
            {
                Effect: "Allow",
                Principal: { Service: "s3.amazonaws.com" },
                Action: "sqs:SendMessage",
                Resource: INTAKE,
                Condition: { ArnEquals: { "aws:SourceArn": BUCKET }, StringEquals: { "aws:SourceAccount": "123456789012" } },
            },
        ],
    },
    {
        what: "in per-job mode EventBridge may send to the dead-letter queue only from the start-failure rule",
        document: deadLetterQueuePolicy({ deadLetterQueueArn: DLQ, ruleArn: RULE }),
        statements: [
            {
                Effect: "Allow",
                Principal: { Service: "events.amazonaws.com" },
                Action: "sqs:SendMessage",
                Resource: DLQ,
                Condition: { ArnEquals: { "aws:SourceArn": RULE } },
            },
        ],
    },
    {
        what: "EventBridge may send to the dead-letter queue from exactly the listed rules (launcher failures, start failures)",
        document: deadLetterQueuePolicy({ deadLetterQueueArn: DLQ, ruleArn: [FAILURES_RULE, RULE] }),
        statements: [
            {
                Effect: "Allow",
                Principal: { Service: "events.amazonaws.com" },
                Action: "sqs:SendMessage",
                Resource: DLQ,
                Condition: { ArnEquals: { "aws:SourceArn": [FAILURES_RULE, RULE] } },
            },
        ],
    },
];

describe("IAM documents (pure builders, no mocks)", () => {
    for (const c of cases) {
        it(c.what, () => {
            expect(c.document.Version).to.equal("2012-10-17");
            expect(c.document.Statement).to.deep.equal(c.statements);
            // Plain ARNs in, plain JSON out: nothing left for Pulumi to resolve.
            expect(JSON.parse(JSON.stringify(c.document))).to.deep.equal(c.document);
        });
    }

    it("assumeRolePolicy trusts exactly one service principal", () => {
        expect(JSON.parse(assumeRolePolicy("ecs-tasks.amazonaws.com"))).to.deep.equal({
            Version: "2012-10-17",
            Statement: [{ Effect: "Allow", Principal: { Service: "ecs-tasks.amazonaws.com" }, Action: "sts:AssumeRole" }],
        });
    });

    it("allow adds a Condition only when one is given", () => {
        expect(allow("s3:GetObject", BUCKET)).to.deep.equal({ Effect: "Allow", Action: "s3:GetObject", Resource: BUCKET });
        expect(allow("s3:GetObject", BUCKET, { Bool: { x: "y" } })).to.have.property("Condition").deep.equal({ Bool: { x: "y" } });
    });

    it("str joins plain strings into a plain string (and leaves Inputs to pulumi.interpolate)", () => {
        expect(str`${"a"}/${"b"}*${".png"}`).to.equal("a/b*.png");
        expect(str`arn:${"aws"}:s3:::x`).to.equal("arn:aws:s3:::x");
        expect(pulumi.Output.isInstance(str`${Promise.resolve("a")}/b`)).to.equal(true);
    });
});

describe("taskRolePolicy with bucketKmsKeyArn (SSE-KMS bucket)", () => {
    const KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const base = {
        bucketArn: "arn:aws:s3:::media",
        inputPrefix: "",
        outputPrefix: "",
        queueArn: "arn:aws:sqs:us-east-1:123456789012:q",
        deadLetterQueueArn: "arn:aws:sqs:us-east-1:123456789012:dlq",
        eventBusArn: "arn:aws:events:us-east-1:123456789012:event-bus/default",
        eventSource: "s",
    };
    for (const launchMode of ["drain", "per-job", "service"] as const) {
        it(`${launchMode}: decrypt and generate data keys on exactly that key, only through S3 in the region; none without it`, () => {
            const kms = (doc: any) => doc.Statement.filter((s: any) => [s.Action].flat().some((a: string) => a.startsWith("kms:")));
            const extra = launchMode === "service" ? { clusterArn: "c", clusterName: "n", partition: "aws", account: "123456789012" } : {};
            expect(kms(taskRolePolicy({ ...base, ...extra, launchMode, region: "us-east-1", bucketKmsKeyArn: KEY }))).to.deep.equal([
                { Effect: "Allow", Action: ["kms:Decrypt", "kms:GenerateDataKey"], Resource: KEY, Condition: { StringEquals: { "kms:ViaService": "s3.us-east-1.amazonaws.com" } } },
            ]);
            expect(kms(taskRolePolicy({ ...base, ...extra, launchMode, region: "us-east-1" }))).to.deep.equal([]);
        });
    }
});
