/** Step "queues": the work queue, its dead-letter queue, and their two alarms. */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

import { ChildOptions, ResolvedLambdaEcsWorkerArgs } from "./args";

export interface QueueResources {
    queue: aws.sqs.Queue;
    deadLetterQueue: aws.sqs.Queue;
    /** Fires when a job lands in the dead-letter queue. */
    deadLetterAlarm: aws.cloudwatch.MetricAlarm;
    /** Fires when a job has waited longer than `oldestJobAlarmSeconds`. */
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
    const oldestJobAlarm = queueAlarm(
        "stuck-alarm",
        queue,
        "ApproximateAgeOfOldestMessage",
        r.oldestJobAlarmSeconds,
        `A ${name} job has waited over ${r.oldestJobAlarmSeconds} s: tasks may fail to start or to reach the queue`,
    );
    return { queue, deadLetterQueue, deadLetterAlarm, oldestJobAlarm };
}
