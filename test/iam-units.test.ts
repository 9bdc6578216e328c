/**
 * The pure mapping from a recorded HTTP request to what IAM evaluates (harness/iam/requests.ts), table-tested against
 * the Service Authorization Reference and each service's documented authorization of the call.
 */
import { expect } from "chai";

import { resourceFitsFormat, statementProblems } from "../harness/iam/evaluate";
import { accessKeyOf, HttpRequest, iamRequestsFor, IamWorld, queueArnFromUrl } from "../harness/iam/requests";

const ACCOUNT = "123456789012";
const TD = `arn:aws:ecs:us-east-1:${ACCOUNT}:task-definition/render:3`;
const TASK_ROLE = `arn:aws:iam::${ACCOUNT}:role/task`;
const EXEC_ROLE = `arn:aws:iam::${ACCOUNT}:role/exec`;
const CLUSTER = `arn:aws:ecs:us-east-1:${ACCOUNT}:cluster/work`;
const WORLD: IamWorld = {
    partition: "aws",
    region: "us-east-1",
    accountId: ACCOUNT,
    taskDefinitions: {
        [TD]: { taskRoleArn: TASK_ROLE, executionRoleArn: EXEC_ROLE, tagged: true },
        [`arn:aws:ecs:us-east-1:${ACCOUNT}:task-definition/untagged:1`]: { taskRoleArn: TASK_ROLE, tagged: false },
    },
};

const auth = (service: string, key = "AKIAEXAMPLE") =>
    `AWS4-HMAC-SHA256 Credential=${key}/20261201/us-east-1/${service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc`;
const json = (service: string, target: string, body: object, scheme = "https"): HttpRequest => ({
    method: "POST",
    url: `${scheme}://${service}.us-east-1.amazonaws.com/`,
    headers: { Authorization: auth(service), "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0" },
    body: JSON.stringify(body),
});
const s3 = (method: string, pathAndQuery: string, headers: Record<string, string> = {}, scheme = "https"): HttpRequest => ({
    method,
    url: `${scheme}://s3.us-east-1.amazonaws.com${pathAndQuery}`,
    headers: { authorization: auth("s3"), ...headers },
    body: "",
});
const TLS = { "aws:SecureTransport": "true" };
const QURL = `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/render-queue`;
const QARN = `arn:aws:sqs:us-east-1:${ACCOUNT}:render-queue`;

describe("IAM mapping of recorded requests (pure)", () => {
    const table: Array<[string, HttpRequest, Array<{ action: string; resource: string; context: Record<string, unknown> }>]> = [
        ["SQS SendMessage → the queue's ARN", json("sqs", "AmazonSQS.SendMessage", { QueueUrl: QURL, MessageBody: "x" }), [{ action: "sqs:SendMessage", resource: QARN, context: TLS }]],
        ["SQS SendMessageBatch is authorized as sqs:SendMessage", json("sqs", "AmazonSQS.SendMessageBatch", { QueueUrl: QURL, Entries: [] }), [{ action: "sqs:SendMessage", resource: QARN, context: TLS }]],
        ["SQS ReceiveMessage", json("sqs", "AmazonSQS.ReceiveMessage", { QueueUrl: QURL }), [{ action: "sqs:ReceiveMessage", resource: QARN, context: TLS }]],
        ["SQS DeleteMessageBatch → sqs:DeleteMessage", json("sqs", "AmazonSQS.DeleteMessageBatch", { QueueUrl: QURL }), [{ action: "sqs:DeleteMessage", resource: QARN, context: TLS }]],
        ["SQS ChangeMessageVisibility", json("sqs", "AmazonSQS.ChangeMessageVisibility", { QueueUrl: QURL }), [{ action: "sqs:ChangeMessageVisibility", resource: QARN, context: TLS }]],
        ["SQS GetQueueAttributes", json("sqs", "AmazonSQS.GetQueueAttributes", { QueueUrl: QURL }), [{ action: "sqs:GetQueueAttributes", resource: QARN, context: TLS }]],
        [
            "SQS query protocol (Action=...) maps the same",
            { method: "POST", url: "https://sqs.us-east-1.amazonaws.com/", headers: { Authorization: auth("sqs") }, body: `Action=SendMessage&QueueUrl=${encodeURIComponent(QURL)}&MessageBody=x` },
            [{ action: "sqs:SendMessage", resource: QARN, context: TLS }],
        ],
        [
            "plain HTTP → aws:SecureTransport false",
            json("sqs", "AmazonSQS.SendMessage", { QueueUrl: QURL }, "http"),
            [{ action: "sqs:SendMessage", resource: QARN, context: { "aws:SecureTransport": "false" } }],
        ],
        [
            "ECS ListTasks without containerInstance → resource * with ecs:cluster (how AWS authorizes it)",
            json("ecs", "AmazonEC2ContainerServiceV20141113.ListTasks", { cluster: CLUSTER, startedBy: "lew-render" }),
            [{ action: "ecs:ListTasks", resource: "*", context: { ...TLS, "ecs:cluster": CLUSTER } }],
        ],
        [
            "ECS ListTasks of a container instance → that instance's ARN",
            json("ecs", "AmazonEC2ContainerServiceV20141113.ListTasks", { cluster: "work", containerInstance: "abc" }),
            [{ action: "ecs:ListTasks", resource: `arn:aws:ecs:us-east-1:${ACCOUNT}:container-instance/work/abc`, context: { ...TLS, "ecs:cluster": CLUSTER } }],
        ],
        [
            "ECS ListTasks without cluster → the default cluster",
            json("ecs", "AmazonEC2ContainerServiceV20141113.ListTasks", {}),
            [{ action: "ecs:ListTasks", resource: "*", context: { ...TLS, "ecs:cluster": `arn:aws:ecs:us-east-1:${ACCOUNT}:cluster/default` } }],
        ],
        [
            "ECS DescribeClusters → one authorization per cluster named, on the cluster (names expand to ARNs)",
            json("ecs", "AmazonEC2ContainerServiceV20141113.DescribeClusters", { clusters: [CLUSTER, "other"] }),
            [
                { action: "ecs:DescribeClusters", resource: CLUSTER, context: TLS },
                { action: "ecs:DescribeClusters", resource: `arn:aws:ecs:us-east-1:${ACCOUNT}:cluster/other`, context: TLS },
            ],
        ],
        [
            "DynamoDB UpdateItem → the table's ARN",
            json("dynamodb", "DynamoDB_20120810.UpdateItem", { TableName: "render-launcher-state", Key: { id: { S: "gate" } } }),
            [{ action: "dynamodb:UpdateItem", resource: `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/render-launcher-state`, context: TLS }],
        ],
        [
            "ECS DescribeTasks → one authorization per task (ids expand to task ARNs)",
            json("ecs", "AmazonEC2ContainerServiceV20141113.DescribeTasks", { cluster: CLUSTER, tasks: [`arn:aws:ecs:us-east-1:${ACCOUNT}:task/work/t1`, "t2"] }),
            [
                { action: "ecs:DescribeTasks", resource: `arn:aws:ecs:us-east-1:${ACCOUNT}:task/work/t1`, context: { ...TLS, "ecs:cluster": CLUSTER } },
                { action: "ecs:DescribeTasks", resource: `arn:aws:ecs:us-east-1:${ACCOUNT}:task/work/t2`, context: { ...TLS, "ecs:cluster": CLUSTER } },
            ],
        ],
        [
            "ECS RunTask → RunTask on the task definition, PassRole of both roles to ECS tasks, TagResource when tags propagate",
            json("ecs", "AmazonEC2ContainerServiceV20141113.RunTask", { cluster: CLUSTER, taskDefinition: TD, count: 1, propagateTags: "TASK_DEFINITION", capacityProviderStrategy: [{ capacityProvider: "FARGATE_SPOT", weight: 1 }] }),
            [
                { action: "ecs:RunTask", resource: TD, context: { ...TLS, "ecs:cluster": CLUSTER, "ecs:capacity-provider": ["FARGATE_SPOT"] } },
                { action: "iam:PassRole", resource: TASK_ROLE, context: { ...TLS, "iam:PassedToService": "ecs-tasks.amazonaws.com" } },
                { action: "iam:PassRole", resource: EXEC_ROLE, context: { ...TLS, "iam:PassedToService": "ecs-tasks.amazonaws.com" } },
                { action: "ecs:TagResource", resource: `arn:aws:ecs:us-east-1:${ACCOUNT}:task/work/new-task`, context: { ...TLS, "ecs:CreateAction": "RunTask" } },
            ],
        ],
        [
            "ECS RunTask of an untagged task definition by family:revision: no TagResource, only the roles it has",
            json("ecs", "AmazonEC2ContainerServiceV20141113.RunTask", { cluster: "work", taskDefinition: "untagged:1", propagateTags: "TASK_DEFINITION" }),
            [
                { action: "ecs:RunTask", resource: `arn:aws:ecs:us-east-1:${ACCOUNT}:task-definition/untagged:1`, context: { ...TLS, "ecs:cluster": CLUSTER } },
                { action: "iam:PassRole", resource: TASK_ROLE, context: { ...TLS, "iam:PassedToService": "ecs-tasks.amazonaws.com" } },
            ],
        ],
        [
            "ECS RunTask with request tags and a task role override",
            json("ecs", "AmazonEC2ContainerServiceV20141113.RunTask", { cluster: CLUSTER, taskDefinition: TD, tags: [{ key: "job", value: "a" }], overrides: { taskRoleArn: `arn:aws:iam::${ACCOUNT}:role/other` } }),
            [
                { action: "ecs:RunTask", resource: TD, context: { ...TLS, "ecs:cluster": CLUSTER, "aws:RequestTag/job": "a", "aws:TagKeys": ["job"] } },
                { action: "iam:PassRole", resource: `arn:aws:iam::${ACCOUNT}:role/other`, context: { ...TLS, "iam:PassedToService": "ecs-tasks.amazonaws.com" } },
                { action: "iam:PassRole", resource: EXEC_ROLE, context: { ...TLS, "iam:PassedToService": "ecs-tasks.amazonaws.com" } },
                { action: "ecs:TagResource", resource: `arn:aws:ecs:us-east-1:${ACCOUNT}:task/work/new-task`, context: { ...TLS, "ecs:CreateAction": "RunTask" } },
            ],
        ],
        ["S3 GetObject (path-style, key decoded)", s3("GET", "/bkt/inbox/my%20scene%2B1.zip?x-id=GetObject"), [{ action: "s3:GetObject", resource: "arn:aws:s3:::bkt/inbox/my scene+1.zip", context: TLS }]],
        ["S3 HeadObject is authorized as s3:GetObject", s3("HEAD", "/bkt/a.png"), [{ action: "s3:GetObject", resource: "arn:aws:s3:::bkt/a.png", context: TLS }]],
        [
            "S3 PutObject with SSE header → s3:x-amz-server-side-encryption",
            s3("PUT", "/bkt/out/a.png?x-id=PutObject", { "x-amz-server-side-encryption": "aws:kms" }),
            [{ action: "s3:PutObject", resource: "arn:aws:s3:::bkt/out/a.png", context: { ...TLS, "s3:x-amz-server-side-encryption": "aws:kms" } }],
        ],
        [
            "S3 CopyObject → PutObject on the target, GetObject on the source",
            s3("PUT", "/bkt/b.png", { "x-amz-copy-source": "/bkt/a%20b.png" }),
            [
                { action: "s3:PutObject", resource: "arn:aws:s3:::bkt/b.png", context: TLS },
                { action: "s3:GetObject", resource: "arn:aws:s3:::bkt/a b.png", context: TLS },
            ],
        ],
        ["S3 DeleteObject", s3("DELETE", "/bkt/a.error.json?x-id=DeleteObject"), [{ action: "s3:DeleteObject", resource: "arn:aws:s3:::bkt/a.error.json", context: TLS }]],
        ["S3 CreateMultipartUpload → s3:PutObject", s3("POST", "/bkt/out/a.mp4?uploads&x-id=CreateMultipartUpload"), [{ action: "s3:PutObject", resource: "arn:aws:s3:::bkt/out/a.mp4", context: TLS }]],
        ["S3 UploadPart → s3:PutObject", s3("PUT", "/bkt/out/a.mp4?partNumber=2&uploadId=u-1&x-id=UploadPart"), [{ action: "s3:PutObject", resource: "arn:aws:s3:::bkt/out/a.mp4", context: TLS }]],
        ["S3 CompleteMultipartUpload → s3:PutObject", s3("POST", "/bkt/out/a.mp4?uploadId=u-1"), [{ action: "s3:PutObject", resource: "arn:aws:s3:::bkt/out/a.mp4", context: TLS }]],
        ["S3 AbortMultipartUpload → s3:AbortMultipartUpload", s3("DELETE", "/bkt/out/a.mp4?uploadId=u-1&x-id=AbortMultipartUpload"), [{ action: "s3:AbortMultipartUpload", resource: "arn:aws:s3:::bkt/out/a.mp4", context: TLS }]],
        ["S3 virtual-hosted style", { ...s3("GET", "/k/x.zip"), url: "https://bkt.s3.us-east-1.amazonaws.com/k/x.zip" }, [{ action: "s3:GetObject", resource: "arn:aws:s3:::bkt/k/x.zip", context: TLS }]],
        ["S3 ListObjectsV2 → s3:ListBucket with s3:prefix", s3("GET", "/bkt?list-type=2&prefix=inbox%2F"), [{ action: "s3:ListBucket", resource: "arn:aws:s3:::bkt", context: { ...TLS, "s3:prefix": "inbox/" } }]],
        [
            "S3 ListObjectsV2 of one key (the worker's deleted-input check: max-keys 1, the key as prefix) → s3:ListBucket with that s3:prefix",
            s3("GET", "/bkt?list-type=2&max-keys=1&prefix=inbox%2Fa%20b.zip"),
            [{ action: "s3:ListBucket", resource: "arn:aws:s3:::bkt", context: { ...TLS, "s3:prefix": "inbox/a b.zip" } }],
        ],
        ["S3 over plain HTTP → aws:SecureTransport false", s3("GET", "/bkt/a.zip", {}, "http"), [{ action: "s3:GetObject", resource: "arn:aws:s3:::bkt/a.zip", context: { "aws:SecureTransport": "false" } }]],
        [
            "Logs CreateLogStream → the new stream's ARN",
            json("logs", "Logs_20140328.CreateLogStream", { logGroupName: "/aws/lambda/x", logStreamName: "2026/12/01/[$LATEST]abc" }),
            [{ action: "logs:CreateLogStream", resource: `arn:aws:logs:us-east-1:${ACCOUNT}:log-group:/aws/lambda/x:log-stream:2026/12/01/[$LATEST]abc`, context: TLS }],
        ],
        [
            "Logs PutLogEvents → the stream's ARN",
            json("logs", "Logs_20140328.PutLogEvents", { logGroupName: "g", logStreamName: "s" }),
            [{ action: "logs:PutLogEvents", resource: `arn:aws:logs:us-east-1:${ACCOUNT}:log-group:g:log-stream:s`, context: TLS }],
        ],
        ["ECR GetAuthorizationToken → * (no resource type)", json("ecr", "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken", {}), [{ action: "ecr:GetAuthorizationToken", resource: "*", context: TLS }]],
        [
            "ECR BatchGetImage → the repository (of registryId)",
            json("ecr", "AmazonEC2ContainerRegistry_V20150921.BatchGetImage", { registryId: "210987654321", repositoryName: "team/render" }),
            [{ action: "ecr:BatchGetImage", resource: "arn:aws:ecr:us-east-1:210987654321:repository/team/render", context: TLS }],
        ],
        [
            "ECS DescribeServices → one authorization per service, names expanded to service/<cluster>/<name>, with ecs:cluster",
            json("ecs", "AmazonEC2ContainerServiceV20141113.DescribeServices", { cluster: CLUSTER, services: ["render-service", `arn:aws:ecs:us-east-1:${ACCOUNT}:service/work/other`] }),
            [
                { action: "ecs:DescribeServices", resource: `arn:aws:ecs:us-east-1:${ACCOUNT}:service/work/render-service`, context: { ...TLS, "ecs:cluster": CLUSTER } },
                { action: "ecs:DescribeServices", resource: `arn:aws:ecs:us-east-1:${ACCOUNT}:service/work/other`, context: { ...TLS, "ecs:cluster": CLUSTER } },
            ],
        ],
        [
            "ECS UpdateService (desiredCount only) → the service's ARN with ecs:cluster",
            json("ecs", "AmazonEC2ContainerServiceV20141113.UpdateService", { cluster: "work", service: "render-service", desiredCount: 2 }),
            [{ action: "ecs:UpdateService", resource: `arn:aws:ecs:us-east-1:${ACCOUNT}:service/work/render-service`, context: { ...TLS, "ecs:cluster": CLUSTER } }],
        ],
        [
            "ECS UpdateService with a strategy and a task definition → ecs:capacity-provider and ecs:task-definition (as an ARN)",
            json("ecs", "AmazonEC2ContainerServiceV20141113.UpdateService", { cluster: CLUSTER, service: "render-service", taskDefinition: "render:3", capacityProviderStrategy: [{ capacityProvider: "FARGATE", weight: 1 }] }),
            [
                {
                    action: "ecs:UpdateService",
                    resource: `arn:aws:ecs:us-east-1:${ACCOUNT}:service/work/render-service`,
                    context: { ...TLS, "ecs:cluster": CLUSTER, "ecs:capacity-provider": ["FARGATE"], "ecs:task-definition": TD },
                },
            ],
        ],
        [
            "ECS UpdateTaskProtection (the agent's call) → one authorization per task, ids expanded to task/<cluster>/<id>",
            json("ecs", "AmazonEC2ContainerServiceV20141113.UpdateTaskProtection", { cluster: CLUSTER, tasks: ["t1", `arn:aws:ecs:us-east-1:${ACCOUNT}:task/work/t2`], protectionEnabled: true, expiresInMinutes: 70 }),
            [
                { action: "ecs:UpdateTaskProtection", resource: `arn:aws:ecs:us-east-1:${ACCOUNT}:task/work/t1`, context: { ...TLS, "ecs:cluster": CLUSTER } },
                { action: "ecs:UpdateTaskProtection", resource: `arn:aws:ecs:us-east-1:${ACCOUNT}:task/work/t2`, context: { ...TLS, "ecs:cluster": CLUSTER } },
            ],
        ],
        [
            "EventBridge PutEvents → one authorization per entry, on its bus, with events:source and events:detail-type",
            json("events", "AWSEvents.PutEvents", { Entries: [{ Source: "lambda-ecs-worker", DetailType: "Job Done", Detail: "{}" }, { EventBusName: "jobs", Source: "s", DetailType: "d" }] }),
            [
                { action: "events:PutEvents", resource: `arn:aws:events:us-east-1:${ACCOUNT}:event-bus/default`, context: { ...TLS, "events:source": "lambda-ecs-worker", "events:detail-type": "Job Done" } },
                { action: "events:PutEvents", resource: `arn:aws:events:us-east-1:${ACCOUNT}:event-bus/jobs`, context: { ...TLS, "events:source": "s", "events:detail-type": "d" } },
            ],
        ],
    ];
    for (const [title, req, expected] of table) {
        it(title, () => {
            expect(iamRequestsFor(req, WORLD).map(({ action, resource, context }) => ({ action, resource, context }))).to.deep.equal(expected);
        });
    }

    const unmapped: Array<[string, HttpRequest, RegExp]> = [
        ["an unknown ECS operation", json("ecs", "AmazonEC2ContainerServiceV20141113.StopTask", {}), /unmapped ECS operation StopTask/],
        ["an ECS UpdateService naming no service", json("ecs", "AmazonEC2ContainerServiceV20141113.UpdateService", { cluster: CLUSTER, desiredCount: 1 }), /ECS service call without a service/],
        ["an unknown SQS operation", json("sqs", "AmazonSQS.PurgeQueue", { QueueUrl: QURL }), /unmapped SQS operation PurgeQueue/],
        ["an S3 object subresource", s3("PUT", "/bkt/a.png?tagging"), /unmapped S3 object subresource/],
        ["S3 ListParts (not a call the worker makes)", s3("GET", "/bkt/a.png?uploadId=u-1"), /unmapped S3 object subresource/],
        ["S3 UploadPartCopy", s3("PUT", "/bkt/a.png?partNumber=1&uploadId=u-1", { "x-amz-copy-source": "/bkt/b.png" }), /unmapped S3 object subresource/],
        ["an S3 bucket write", s3("PUT", "/bkt"), /unmapped S3 bucket request/],
        ["an unsigned request", { method: "GET", url: "https://s3.us-east-1.amazonaws.com/b/k", headers: {}, body: "" }, /unmapped AWS service undefined/],
        ["a service not mapped", json("lambda", "x.Invoke", {}), /unmapped AWS service "lambda"/],
        ["an EventBridge operation other than PutEvents", json("events", "AWSEvents.PutRule", {}), /unmapped EventBridge operation PutRule/],
        ["RunTask of a task definition the world does not know", json("ecs", "AmazonEC2ContainerServiceV20141113.RunTask", { cluster: CLUSTER, taskDefinition: "other:1" }), /unknown task definition/],
    ];
    for (const [title, req, error] of unmapped) {
        it(`throws, naming it, on ${title} (every recorded request must be mapped)`, () => {
            expect(() => iamRequestsFor(req, WORLD)).to.throw(error);
        });
    }

    it("reads the access key id that attributes a request to a role", () => {
        expect(accessKeyOf(json("sqs", "AmazonSQS.SendMessage", {}))).to.equal("AKIAEXAMPLE");
        expect(accessKeyOf({ method: "GET", url: "https://x/", headers: { authorization: auth("s3", "AKIALAUNCHERROLE") }, body: "" })).to.equal("AKIALAUNCHERROLE");
        expect(accessKeyOf({ method: "GET", url: "https://x/", headers: {}, body: "" })).to.equal(undefined);
    });

    it("turns queue URLs (AWS's and moto's) into queue ARNs, and rejects anything else", () => {
        expect(queueArnFromUrl(QURL, WORLD)).to.equal(QARN);
        expect(queueArnFromUrl(`http://127.0.0.1:5000/${ACCOUNT}/q-1`, WORLD)).to.equal(`arn:aws:sqs:us-east-1:${ACCOUNT}:q-1`);
        expect(() => queueArnFromUrl("https://sqs.us-east-1.amazonaws.com/q", WORLD)).to.throw(/not a queue URL/);
    });

    const fits: Array<[string, string, boolean]> = [
        ["arn:aws:logs:us-east-1:1:log-group:render-logs:*", "arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}:log-stream:${LogStreamName}", true],
        ["arn:aws:ecs:us-east-1:1:task/work/*", "arn:${Partition}:ecs:${Region}:${Account}:task/${ClusterName}/${TaskId}", true],
        ["arn:aws:ecs:us-east-1:1:container-instance/work/*", "arn:${Partition}:ecs:${Region}:${Account}:task/${ClusterName}/${TaskId}", false],
        ["arn:aws:s3:::bkt/inbox/*", "arn:${Partition}:s3:::${BucketName}/${ObjectName}", true],
        ["arn:aws:s3:::bkt", "arn:${Partition}:s3:::${BucketName}/${ObjectName}", false],
        ["arn:aws:sqs:us-east-1:1:q", "arn:${Partition}:sqs:${Region}:${Account}:${QueueName}", true],
        ["arn:aws:sq?:us-east-1:1:q", "arn:${Partition}:sqs:${Region}:${Account}:${QueueName}", true],
    ];
    for (const [resource, format, expected] of fits) {
        it(`a Resource ${resource} ${expected ? "fits" : "does not fit"} ${format}`, () => {
            expect(resourceFitsFormat(resource, format)).to.equal(expected);
        });
    }

    const statements: Array<[string, any, string[]]> = [
        ["a valid statement", { Effect: "Allow", Action: "ecs:ListTasks", Resource: "*", Condition: { ArnEquals: { "ecs:cluster": "arn:aws:ecs:us-east-1:1:cluster/c" } } }, []],
        ["an unknown action", { Effect: "Allow", Action: "sqs:SendMessages", Resource: "arn:aws:sqs:us-east-1:1:q" }, ["sqs:SendMessages: no such action"]],
        [
            "a Resource of the wrong type",
            { Effect: "Allow", Action: "ecs:DescribeTasks", Resource: "arn:aws:ecs:us-east-1:1:container-instance/c/*" },
            ["ecs:DescribeTasks: Resource arn:aws:ecs:us-east-1:1:container-instance/c/* matches none of arn:${Partition}:ecs:${Region}:${Account}:task/${ClusterName}/${TaskId}"],
        ],
        [
            '"*" for an action AWS authorizes on a resource',
            { Effect: "Allow", Action: "ecs:DescribeTasks", Resource: "*" },
            ['ecs:DescribeTasks: Resource "*" but AWS authorizes this call on arn:${Partition}:ecs:${Region}:${Account}:task/${ClusterName}/${TaskId}'],
        ],
        [
            "a condition key the action does not support",
            { Effect: "Allow", Action: "sqs:SendMessage", Resource: "arn:aws:sqs:us-east-1:1:q", Condition: { ArnEquals: { "ecs:cluster": "x" } } },
            ["sqs:SendMessage: condition key ecs:cluster is not valid for it (valid: aws:ResourceTag/${TagKey})"],
        ],
    ];
    for (const [title, statement, expected] of statements) {
        it(`statementProblems: ${title}`, async () => {
            expect(await statementProblems(statement, ["ecs:ListTasks"])).to.deep.equal(expected);
        });
    }
});
