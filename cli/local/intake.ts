/**
 * The intake's event source mapping, emulated as Lambda runs an SQS event source mapping (moto does not run one: it
 * would invoke the function itself, which needs Docker): up to `maxConcurrency` pollers, each with its own launcher
 * process (a Lambda instance, one invocation at a time); a poller polls the queue, gathers a batch of up to
 * `batchSize` records for at most `windowSeconds` after the first, invokes its launcher with the batch in the shape
 * Lambda gives a function (`Records` of `eventSource` "aws:sqs", with `attributes.ApproximateReceiveCount`), then
 * deletes the records the function handled: with ReportBatchItemFailures every record but those in the answer's
 * `batchItemFailures`, which become visible again after the queue's visibility timeout; a failed invocation deletes
 * none. The records keep the receive counts SQS gives them, so the queue's redrive policy applies as on AWS.
 *
 * The pollers receive one at a time: moto 5.2.1 picks a visible message and hides it without a lock, so two concurrent
 * ReceiveMessage calls can both get it (seen here as a job queued twice); SQS hides a received message from every other
 * receiver (a standard queue's rare duplicate delivery aside, which the worker's version binding absorbs).
 */
import { DeleteMessageBatchCommand, Message, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";

import type { InvokeResult } from "./launcher";

/** What the stack declares for the mapping (aws.lambda.EventSourceMapping). */
export interface MappingConfig {
    batchSize: number;
    windowSeconds: number;
    maxConcurrency: number;
    /** FunctionResponseTypes includes ReportBatchItemFailures. */
    reportBatchItemFailures: boolean;
}

export interface IntakeDeps {
    sqs: Pick<SQSClient, "send">;
    queueUrl: string;
    queueArn: string;
    region: string;
    config: MappingConfig;
    /** One launcher instance per poller (at least `config.maxConcurrency`). */
    instances: { invoke(event: unknown): Promise<InvokeResult> }[];
    log: (line: string) => void;
    /** True once the run is stopping: pollers stop after their batch in progress. */
    stopped: () => boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A received message as a record of Lambda's SQS event. */
export function sqsRecord(m: Message, queueArn: string, region: string): Record<string, unknown> {
    return {
        messageId: m.MessageId,
        receiptHandle: m.ReceiptHandle,
        body: m.Body,
        attributes: { ...(m.Attributes ?? {}) },
        messageAttributes: {},
        md5OfBody: m.MD5OfBody,
        eventSource: "aws:sqs",
        eventSourceARN: queueArn,
        awsRegion: region,
    };
}

/** The message ids to delete after an invocation: all but the reported failures; none when it failed. */
export function handledIds(batch: { messageId: string }[], r: InvokeResult, reportBatchItemFailures: boolean): string[] {
    if (!r.ok) return [];
    const failed = new Set<string>(reportBatchItemFailures ? (r.result?.batchItemFailures ?? []).map((f: any) => f?.itemIdentifier) : []);
    return batch.map((m) => m.messageId).filter((id) => !failed.has(id));
}

export class IntakeMapping {
    /** Invocations so far, records delivered (redeliveries included), records deleted, invocations that failed. */
    invocations = 0;
    delivered = 0;
    deleted = 0;
    errors: string[] = [];
    /** Largest number of invocations in flight at once. */
    peakConcurrency = 0;
    /** The mapping's own SQS calls (Lambda's pollers make them with the function's role). */
    receiveCalls = 0;
    deleteCalls = 0;
    private inFlight = 0;
    private receiving: Promise<unknown> = Promise.resolve();

    constructor(private readonly d: IntakeDeps) {}

    /** Runs the pollers until `keepGoing()` is false (each finishes its batch in progress). */
    async run(keepGoing: () => boolean): Promise<void> {
        const n = Math.max(1, Math.min(this.d.config.maxConcurrency, this.d.instances.length));
        await Promise.all(Array.from({ length: n }, (_, i) => this.poll(i, () => keepGoing() && !this.d.stopped())));
    }

    private async poll(i: number, keepGoing: () => boolean): Promise<void> {
        const { sqs, queueUrl, config } = this.d;
        while (keepGoing()) {
            try {
                const batch: Message[] = [];
                let deadline = Infinity;
                while (batch.length < config.batchSize && Date.now() < deadline && keepGoing()) {
                    // Short polls, one at a time across the pollers (see above); an empty one waits 200 ms.
                    const receive = this.receiving.then(() =>
                        sqs.send(
                            new ReceiveMessageCommand({
                                QueueUrl: queueUrl,
                                MaxNumberOfMessages: Math.min(10, config.batchSize - batch.length),
                                WaitTimeSeconds: 0,
                                AttributeNames: ["All"],
                            }),
                        ),
                    );
                    this.receiving = receive.catch(() => undefined);
                    this.receiveCalls++;
                    const r = await receive;
                    const got = r.Messages ?? [];
                    if (got.length > 0 && batch.length === 0) deadline = Date.now() + config.windowSeconds * 1000;
                    batch.push(...got);
                    if (got.length === 0) await sleep(batch.length > 0 ? Math.min(200, Math.max(0, deadline - Date.now())) : 200);
                }
                if (batch.length === 0) continue;
                const records = batch.map((m) => sqsRecord(m, this.d.queueArn, this.d.region)) as { messageId: string; receiptHandle: string }[];
                this.invocations++;
                this.delivered += records.length;
                this.peakConcurrency = Math.max(this.peakConcurrency, ++this.inFlight);
                const result = await this.d.instances[i].invoke({ Records: records }).finally(() => this.inFlight--);
                if (!result.ok) {
                    this.errors.push(String(result.error));
                    this.d.log(`launcher invocation of ${records.length} intake record(s) failed: ${result.error} (they return to the intake after its visibility timeout)`);
                }
                const done = new Set(handledIds(records, result, config.reportBatchItemFailures));
                const entries = records.filter((m) => done.has(m.messageId)).map((m, k) => ({ Id: String(k), ReceiptHandle: m.receiptHandle }));
                for (let k = 0; k < entries.length; k += 10) {
                    await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries.slice(k, k + 10) }));
                    this.deleteCalls++;
                }
                this.deleted += entries.length;
            } catch (e) {
                if (!keepGoing()) break;
                this.d.log(`intake poller ${i}: ${(e as Error).message} (retrying)`);
                await sleep(1000);
            }
        }
    }
}
