/**
 * Asynchronous event delivery to the launcher's code, as Lambda does it: the stack's EventBridge schedules, and what
 * the stack's rules with the launcher as their target matched on the emulator's bus (their stand-in queues, e.g. ECS's
 * task state changes the local run emits, see ecs-events.ts), each failed invocation retried `maximumRetryAttempts`
 * times, then Lambda's on-failure record sent to the dead-letter queue (the destination). (The bucket's notifications
 * reach the launcher through the intake: intake.ts.)
 */
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import * as crypto from "crypto";

import { InvokeResult } from "./launcher";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Lambda's on-failure destination record of an asynchronous invocation whose retries are exhausted. */
export function onFailureRecord(event: unknown, error: string | undefined, attempts: number, functionArn: string, now = new Date(), requestId: string = crypto.randomUUID()) {
    return {
        version: "1.0",
        timestamp: now.toISOString(),
        requestContext: { requestId, functionArn, condition: "RetriesExhausted", approximateInvokeCount: attempts },
        requestPayload: event,
        responseContext: { statusCode: 200, executedVersion: "$LATEST", functionError: "Unhandled" },
        responsePayload: { errorType: "Error", errorMessage: error },
    };
}

/** The "Scheduled Event" EventBridge hands a rule's target (time to the second, like EventBridge). */
export function scheduledEvent(rule: string, region: string, now = new Date(), id: string = crypto.randomUUID()) {
    return {
        version: "0",
        id,
        "detail-type": "Scheduled Event",
        source: "aws.events",
        account: "123456789012",
        time: now.toISOString().replace(/\.\d+Z$/, "Z"),
        region,
        resources: [`arn:aws:events:${region}:123456789012:rule/${rule}`],
        detail: {},
    };
}

/**
 * The stack's launcher schedules at a compressed interval: `due(now)` returns the rules to fire, every rule once per
 * interval (the first interval counts from construction), and nothing when the stack declares no schedule.
 */
export class Schedules {
    private nextTick: number;
    /** Scheduled events fired so far. */
    ticks = 0;

    constructor(private readonly rules: string[], private readonly intervalMs: number, now = Date.now()) {
        this.nextTick = now + intervalMs;
    }

    due(now = Date.now()): string[] {
        if (this.rules.length === 0 || now < this.nextTick) return [];
        this.nextTick = now + this.intervalMs;
        this.ticks += this.rules.length;
        return [...this.rules];
    }
}

export interface DeliveryDeps {
    launcher: { invoke(event: unknown): Promise<InvokeResult> };
    sqs: Pick<SQSClient, "send">;
    /** The stand-ins for the launcher as the target of the stack's EventBridge rules (appliers.ts). */
    ruleQueueUrls?: string[];
    /** The launcher's on-failure destination. */
    dlqUrl: string;
    functionName: string;
    /** Lambda's async retries after a failed invocation. */
    maximumRetryAttempts: number;
    log: (line: string) => void;
    /** True once the run is stopping or interrupted: no further invocation. */
    stopped: () => boolean;
}

export class EventDelivery {
    /** Launcher invocations so far (retries included). */
    invocations = 0;
    /** Passes of loop() over every queue that found nothing. */
    private emptyRounds = 0;

    constructor(private readonly d: DeliveryDeps) {}

    /** One event (JSON text) through the launcher, with Lambda's async retries and on-failure record. */
    async handle(body: string): Promise<void> {
        let event: any;
        try {
            event = JSON.parse(body);
        } catch {
            return;
        }
        const attempts = 1 + this.d.maximumRetryAttempts;
        for (let attempt = 1; attempt <= attempts; attempt++) {
            if (this.d.stopped()) return;
            this.invocations++;
            const r = await this.d.launcher.invoke(event);
            if (r.ok || this.d.stopped()) return;
            this.d.log(`launcher invocation failed (attempt ${attempt} of ${attempts}): ${r.error}`);
            if (attempt === attempts) {
                const record = onFailureRecord(event, r.error, attempts, this.d.functionName);
                await this.d.sqs
                    .send(new SendMessageCommand({ QueueUrl: this.d.dlqUrl, MessageBody: JSON.stringify(record) }))
                    .catch((e) => this.d.log(`could not dead-letter the event: ${errText(e)}`));
            }
        }
    }

    /**
     * Resolves once loop() has made a whole pass over its queues that began after this call and found nothing (what
     * was in them then has been handed to the launcher), or at `until` (epoch ms).
     */
    async idle(until: number): Promise<void> {
        if (!this.d.ruleQueueUrls?.length) return;
        const from = this.emptyRounds;
        while (this.emptyRounds < from + 2 && Date.now() < until && !this.d.stopped()) await sleep(100);
    }

    /** Fires a scheduled event in the background (invocations are serialized by the launcher anyway). */
    fireScheduled(rule: string, region: string): void {
        void this.handle(JSON.stringify(scheduledEvent(rule, region)));
    }

    /** Hands the rules' stand-in queues' messages to the launcher, each deleted once handled, while `keepGoing()`. */
    async loop(keepGoing: () => boolean): Promise<void> {
        const { sqs } = this.d;
        const queues = this.d.ruleQueueUrls ?? [];
        while (keepGoing() && queues.length > 0) {
            try {
                let got = 0;
                for (const QueueUrl of queues) {
                    const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
                    for (const m of r.Messages ?? []) {
                        got++;
                        await this.handle(m.Body ?? "");
                        await sqs.send(new DeleteMessageBatchCommand({ QueueUrl, Entries: [{ Id: "0", ReceiptHandle: m.ReceiptHandle! }] }));
                    }
                }
                if (got === 0) {
                    this.emptyRounds++;
                    await sleep(300);
                }
            } catch (e) {
                if (this.d.stopped()) break;
                this.d.log(`rule queues: ${errText(e)} (retrying)`);
                await sleep(1000);
            }
        }
    }
}
