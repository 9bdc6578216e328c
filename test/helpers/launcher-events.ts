/** S3 notification events for launcher tests (keys are given already URL-encoded, as S3 sends them). */

export interface S3RecordOptions {
    bucket?: string;
    eventName?: string;
    size?: number;
    eTag?: string;
    eventTime?: string;
}

/** One S3 event record, shaped like the ones S3 (and moto) deliver. */
export function s3Record(encodedKey: string, o: S3RecordOptions = {}): Record<string, any> {
    const bucket = o.bucket ?? "bucket";
    return {
        eventVersion: "2.1",
        eventSource: "aws:s3",
        awsRegion: "us-east-1",
        eventTime: o.eventTime ?? "2026-01-01T00:00:00.000Z",
        eventName: o.eventName ?? "ObjectCreated:Put",
        userIdentity: { principalId: "AWS:EXAMPLE" },
        requestParameters: { sourceIPAddress: "127.0.0.1" },
        responseElements: { "x-amz-request-id": "req", "x-amz-id-2": "id2" },
        s3: {
            s3SchemaVersion: "1.0",
            configurationId: "launcher",
            bucket: { name: bucket, ownerIdentity: { principalId: "EXAMPLE" }, arn: `arn:aws:s3:::${bucket}` },
            object: { key: encodedKey, size: o.size ?? 1, eTag: o.eTag ?? "etag", sequencer: "0A1B2C3D4E5F678901" },
        },
    };
}

export function s3Event(records: unknown[]): { Records: unknown[] } {
    return { Records: records };
}

/**
 * A batch of intake records as Lambda's SQS event source mapping delivers it: each record's `body` the JSON of an S3
 * notification (as S3 sends it to the intake queue), `attributes.ApproximateReceiveCount` its receives so far.
 */
export function sqsEvent(records: { body: unknown; id?: string; receives?: number }[]): { Records: unknown[] } {
    return {
        Records: records.map((r, i) => ({
            messageId: r.id ?? `msg-${i}`,
            receiptHandle: `handle-${i}`,
            body: typeof r.body === "string" ? r.body : JSON.stringify(r.body),
            attributes: { ApproximateReceiveCount: String(r.receives ?? 1), SentTimestamp: "1767225600000", SenderId: "AIDAEXAMPLE", ApproximateFirstReceiveTimestamp: "1767225600001" },
            messageAttributes: {},
            md5OfBody: "0",
            eventSource: "aws:sqs",
            eventSourceARN: "arn:aws:sqs:us-east-1:123456789012:render-intake",
            awsRegion: "us-east-1",
        })),
    };
}

/** SDK client settings for mocked clients (aws-sdk-client-mock): a region and fake credentials. */
export const TEST_REGION = { region: "us-east-1", credentials: { accessKeyId: "test", secretAccessKey: "test" } };

/** The launcher's environment as the component sets it for a worker named "render" (add or override per spec). */
export const LAUNCHER_TEST_ENV = {
    QUEUE_URL: "https://queue.example/123456789012/work",
    DLQ_URL: "https://queue.example/123456789012/dlq",
    CLUSTER: "arn:aws:ecs:us-east-1:123456789012:cluster/render",
    TASK_DEFINITION: "arn:aws:ecs:us-east-1:123456789012:task-definition/render:3",
    CONTAINER_NAME: "worker",
    SUBNETS: "subnet-a",
    MAX_TASKS: "4",
    STARTED_BY: "lew-render",
    EVENT_BUS_NAME: "default",
    WORKER_NAME: "render",
};
