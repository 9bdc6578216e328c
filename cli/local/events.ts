/**
 * Asynchronous event delivery to the launcher's code, as Lambda does it: the stack's EventBridge schedules, each
 * failed invocation retried `maximumRetryAttempts` times, then Lambda's on-failure record sent to the dead-letter
 * queue (the destination). (The bucket's notifications reach the launcher through the intake: intake.ts.)
 */
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import * as crypto from "crypto";

import { InvokeResult } from "./launcher";

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

    /** Fires a scheduled event in the background (invocations are serialized by the launcher anyway). */
    fireScheduled(rule: string, region: string): void {
        void this.handle(JSON.stringify(scheduledEvent(rule, region)));
    }
}
