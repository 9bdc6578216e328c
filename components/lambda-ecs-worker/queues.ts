/**
 * Step "queues": the work queue, its dead-letter queue, the intake queue (the bucket's notifications, which the
 * launcher reads through an event source mapping: launcher.ts), and their two alarms.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

import { ChildOptions, ResolvedLambdaEcsWorkerArgs } from "./args";

/** The launcher's timeout in seconds (its longest invocation: a batch of uploads, a decision, dead-letters). */
export const LAUNCHER_TIMEOUT_SECONDS = 60;
/**
 * The intake's visibility timeout: at least six times the function's timeout, as AWS recommends for an SQS event
 * source ("the extra time allows Lambda to retry if your function is throttled while processing a previous batch";
 * Lambda refuses a mapping whose function timeout exceeds the queue's visibility timeout).
 */
export const INTAKE_VISIBILITY_TIMEOUT_SECONDS = 6 * LAUNCHER_TIMEOUT_SECONDS;
/**
 * The intake's maxReceiveCount: deliveries of an upload's notification before SQS moves it to the dead-letter queue.
 * AWS recommends at least 5 for an event source mapping's queue (a throttled batch goes back to the queue with its
 * receive counted); the launcher dead-letters the jobs itself on the last one, with the reason (functions/launcher.ts).
 */
export const INTAKE_MAX_RECEIVE_COUNT = 10;

export interface QueueResources {
    queue: aws.sqs.Queue;
    deadLetterQueue: aws.sqs.Queue;
    /** The bucket's notifications (`${name}-intake`), read by the launcher's event source mapping. */
    intake: aws.sqs.Queue;
    /** Fires when a job lands in the dead-letter queue. */
    deadLetterAlarm: aws.cloudwatch.MetricAlarm;
    /** Fires when a job has waited longer than `oldestJobAlarmSeconds`, in the intake or in the work queue. */
    oldestJobAlarm: aws.cloudwatch.MetricAlarm;
}

export function createQueues(name: string, r: ResolvedLambdaEcsWorkerArgs, { parent }: ChildOptions): QueueResources {
    const deadLetterQueue = new aws.sqs.Queue(
        `${name}-dlq`,
        { messageRetentionSeconds: r.deadLetterRetentionSeconds, sqsManagedSseEnabled: true, tags: r.tags },
        { parent },
    );
    const queue = new aws.sqs.Queue(
        `${name}-queue`,
        {
            visibilityTimeoutSeconds: r.visibilityTimeoutSeconds,
            messageRetentionSeconds: r.messageRetentionSeconds,
            receiveWaitTimeSeconds: 20,
            sqsManagedSseEnabled: true,
            // The worker dead-letters a job's last attempt itself (WORKER_MAX_RECEIVE_COUNT, with its reason): SQS's redrive,
            // one receive later, is only the safety net for a worker that dies while doing so.
            redrivePolicy: pulumi.jsonStringify({ deadLetterTargetArn: deadLetterQueue.arn, maxReceiveCount: r.maxReceiveCount + 1 }),
            tags: r.tags,
        },
        { parent },
    );
    const intake = new aws.sqs.Queue(
        `${name}-intake`,
        {
            visibilityTimeoutSeconds: INTAKE_VISIBILITY_TIMEOUT_SECONDS,
            messageRetentionSeconds: r.messageRetentionSeconds,
            sqsManagedSseEnabled: true,
            redrivePolicy: pulumi.jsonStringify({ deadLetterTargetArn: deadLetterQueue.arn, maxReceiveCount: INTAKE_MAX_RECEIVE_COUNT }),
            tags: r.tags,
        },
        { parent },
    );

    const queueAlarm = (suffix: string, q: aws.sqs.Queue, metricName: string, threshold: number, description: string) =>
        new aws.cloudwatch.MetricAlarm(
            `${name}-${suffix}`,
            {
                alarmDescription: description,
                namespace: "AWS/SQS",
                metricName,
                dimensions: { QueueName: q.name },
                statistic: "Maximum",
                period: 60,
                evaluationPeriods: 1,
                comparisonOperator: "GreaterThanThreshold",
                threshold,
                treatMissingData: "notBreaching",
                alarmActions: r.alarmActions,
                tags: r.tags,
            },
            { parent },
        );
    const deadLetterAlarm = queueAlarm(
        "dlq-alarm",
        deadLetterQueue,
        "ApproximateNumberOfMessagesVisible",
        0,
        `A ${name} job failed for good: see the dead-letter queue and the job's .error.json`,
    );
    const oldestJobAlarm = new aws.cloudwatch.MetricAlarm(
        `${name}-stuck-alarm`,
        {
            alarmDescription: `A ${name} job has waited over ${r.oldestJobAlarmSeconds} s: its upload not queued (see the launcher), or tasks fail to start or to reach the queue`,
            comparisonOperator: "GreaterThanThreshold",
            threshold: r.oldestJobAlarmSeconds,
            evaluationPeriods: 1,
            treatMissingData: "notBreaching",
            metricQueries: oldestJobQueries(intake.name, queue.name),
            alarmActions: r.alarmActions,
            tags: r.tags,
        },
        { parent },
    );
    return { queue, deadLetterQueue, intake, deadLetterAlarm, oldestJobAlarm };
}

/** The oldest-job alarm's metric: the older of the intake's oldest upload and the work queue's oldest job. */
export function oldestJobQueries(intakeName: pulumi.Input<string>, queueName: pulumi.Input<string>) {
    const age = (id: string, queue: pulumi.Input<string>) => ({
        id,
        metric: { namespace: "AWS/SQS", metricName: "ApproximateAgeOfOldestMessage", dimensions: { QueueName: queue }, period: 60, stat: "Maximum" },
    });
    return [age("intake", intakeName), age("queued", queueName), { id: "oldest", expression: "MAX([FILL(intake, 0), FILL(queued, 0)])", label: "Age of the oldest job (s)", returnData: true }];
}
