/**
 * A launcher's world in moto: upload bucket with an S3 → SQS notification (to capture REAL S3 event messages: the
 * launcher's intake), work queue, dead-letter queue, the launcher's coordination table, ECS cluster and a registered
 * Fargate task definition, plus the default VPC's subnet and security group (read through the EC2 query API: the repo
 * has no EC2 SDK client).
 */
import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateClusterCommand, DescribeTasksCommand, ECSClient, ListTasksCommand, RegisterTaskDefinitionCommand, Task } from "@aws-sdk/client-ecs";
import { CreateBucketCommand, PutBucketNotificationConfigurationCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import {
    CreateQueueCommand,
    DeleteMessageBatchCommand,
    GetQueueAttributesCommand,
    ReceiveMessageCommand,
    SQSClient,
} from "@aws-sdk/client-sqs";

import { Moto, motoClientConfig } from "../../harness/moto";

export interface LauncherWorld {
    s3: S3Client;
    sqs: SQSClient;
    ecs: ECSClient;
    bucket: string;
    eventsQueueUrl: string;
    workQueueUrl: string;
    dlqUrl: string;
    clusterArn: string;
    taskDefinitionArn: string;
    /** The launcher's coordination table (issue #19). */
    stateTable: string;
    subnetId: string;
    securityGroupId: string;
}

async function ec2Query(moto: Moto, action: string): Promise<string> {
    const res = await fetch(`${moto.endpoint}/`, {
        method: "POST",
        headers: {
            "content-type": "application/x-www-form-urlencoded",
            authorization: "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=x",
        },
        body: new URLSearchParams({ Action: action, Version: "2016-11-15" }).toString(),
    });
    return res.text();
}

/** Create everything under a name (several worlds can live in one moto). */
export async function createLauncherWorld(moto: Moto, name: string, containerName: string): Promise<LauncherWorld> {
    const cfg = motoClientConfig(moto.endpoint);
    const s3 = new S3Client({ ...cfg, forcePathStyle: true });
    const sqs = new SQSClient(cfg);
    const ecs = new ECSClient(cfg);

    const subnetId = /<subnetId>([^<]+)</.exec(await ec2Query(moto, "DescribeSubnets"))?.[1];
    const securityGroupId = /<groupId>([^<]+)</.exec(await ec2Query(moto, "DescribeSecurityGroups"))?.[1];
    if (!subnetId || !securityGroupId) throw new Error("moto has no default subnet / security group");

    const queue = async (q: string) => (await sqs.send(new CreateQueueCommand({ QueueName: `${name}-${q}` }))).QueueUrl!;
    const eventsQueueUrl = await queue("s3-events");
    const workQueueUrl = await queue("work");
    const dlqUrl = await queue("dlq");
    const eventsQueueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: eventsQueueUrl, AttributeNames: ["QueueArn"] })))
        .Attributes!.QueueArn!;

    const bucket = `${name}-uploads`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await s3.send(
        new PutBucketNotificationConfigurationCommand({
            Bucket: bucket,
            NotificationConfiguration: { QueueConfigurations: [{ QueueArn: eventsQueueArn, Events: ["s3:ObjectCreated:*"] }] },
        }),
    );

    const stateTable = `${name}-launcher-state`;
    await new DynamoDBClient(cfg).send(
        new CreateTableCommand({ TableName: stateTable, BillingMode: "PAY_PER_REQUEST", KeySchema: [{ AttributeName: "id", KeyType: "HASH" }], AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }] }),
    );
    const cluster = await ecs.send(new CreateClusterCommand({ clusterName: `${name}-cluster` }));
    const td = await ecs.send(
        new RegisterTaskDefinitionCommand({
            family: `${name}-task`,
            requiresCompatibilities: ["FARGATE"],
            networkMode: "awsvpc",
            cpu: "1024",
            memory: "2048",
            containerDefinitions: [{ name: containerName, image: "render:latest", memory: 2048, essential: true }],
        }),
    );
    return {
        s3,
        sqs,
        ecs,
        bucket,
        eventsQueueUrl,
        workQueueUrl,
        dlqUrl,
        clusterArn: cluster.cluster!.clusterArn!,
        taskDefinitionArn: td.taskDefinition!.taskDefinitionArn!,
        stateTable,
        subnetId,
        securityGroupId,
    };
}

/** Upload objects (empty bodies unless given). */
export async function upload(w: LauncherWorld, keys: string[]): Promise<void> {
    for (const key of keys) await w.s3.send(new PutObjectCommand({ Bucket: w.bucket, Key: key, Body: `scene ${key}` }));
}

/** Receive and delete every message of a queue (moto delivers immediately), as raw bodies. */
export async function drainQueue(sqs: SQSClient, queueUrl: string): Promise<string[]> {
    const bodies: string[] = [];
    for (;;) {
        const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
        const msgs = res.Messages ?? [];
        if (msgs.length === 0) return bodies;
        bodies.push(...msgs.map((m) => m.Body!));
        await sqs.send(
            new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: msgs.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle! })) }),
        );
    }
}

/** The tasks of a cluster started by `startedBy`, described. */
export async function tasksStartedBy(w: LauncherWorld, startedBy: string): Promise<Task[]> {
    const arns = (await w.ecs.send(new ListTasksCommand({ cluster: w.clusterArn, startedBy }))).taskArns ?? [];
    if (arns.length === 0) return [];
    const tasks: Task[] = [];
    for (let i = 0; i < arns.length; i += 100) {
        tasks.push(...((await w.ecs.send(new DescribeTasksCommand({ cluster: w.clusterArn, tasks: arns.slice(i, i + 100) }))).tasks ?? []));
    }
    return tasks;
}
