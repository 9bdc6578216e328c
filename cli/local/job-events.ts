/**
 * The job events of a local run, read the way a user of the stack reads them: an EventBridge rule on the emulator's
 * bus (the stack's `eventBusName`, the worker's EVENT_BUS_NAME) matching the worker's source (EVENT_SOURCE) and the
 * two detail-types, with an SQS queue as its target; each event is printed as it arrives and counted per job.
 * This rule and queue are the local run's own observer, not part of the stack.
 */
import { EventBridgeClient, PutRuleCommand, PutTargetsCommand } from "@aws-sdk/client-eventbridge";
import { CreateQueueCommand, DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";

import { JOB_EVENT_DETAIL_TYPES } from "../../functions/launcher-settings";

/** One job event as it reached the queue. */
export interface SeenJobEvent {
    detailType: string;
    source: string;
    detail: { worker?: string; bucket?: string; key?: string; outputs?: string[]; seconds?: number; attempts?: number; reason?: string; failureClass?: string };
}

/** The pattern a user's rule for this worker's job events has. */
export function jobEventPattern(source: string): object {
    return { source: [source], "detail-type": [JOB_EVENT_DETAIL_TYPES.succeeded, JOB_EVENT_DETAIL_TYPES.failed] };
}

/** One line per event, e.g. `event Job Succeeded in/a.zip (3.2 s, attempt 1) → in/a.png, in/a.log`. */
export function describeJobEvent(e: SeenJobEvent): string {
    const d = e.detail ?? {};
    const facts = [typeof d.seconds === "number" ? `${d.seconds} s` : "", typeof d.attempts === "number" ? `attempt ${d.attempts}` : ""].filter(Boolean);
    const tail =
        e.detailType === JOB_EVENT_DETAIL_TYPES.failed
            ? `: ${d.failureClass ? `${d.failureClass}: ` : ""}${d.reason ?? "no reason"}`
            : (d.outputs ?? []).length > 0
              ? ` → ${(d.outputs ?? []).join(", ")}`
              : "";
    return `event ${e.detailType} ${d.key ?? "?"}${facts.length > 0 ? ` (${facts.join(", ")})` : ""}${tail}`;
}

/** A queue message body (an EventBridge event as the rule's SQS target receives it) as a job event, if it is one. */
export function parseJobEvent(body: string): SeenJobEvent | undefined {
    try {
        const e = JSON.parse(body);
        if (typeof e?.["detail-type"] !== "string" || typeof e?.detail !== "object") return undefined;
        return { detailType: e["detail-type"], source: e.source, detail: e.detail };
    } catch {
        return undefined;
    }
}

/** At most this many receives of 10 events per poll(). */
export const MAX_RECEIVES_PER_POLL = 50;

export class JobEventFeed {
    /** Every event seen so far. */
    readonly seen: SeenJobEvent[] = [];
    private queueUrl = "";

    constructor(
        private readonly c: { sqs: Pick<SQSClient, "send">; events: Pick<EventBridgeClient, "send"> },
        private readonly o: { busName: string; source: string; name: string; log: (line: string) => void },
    ) {}

    /** Creates the queue, the rule on the bus and its target. */
    async start(): Promise<void> {
        const { sqs, events } = this.c;
        this.queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: this.o.name }))).QueueUrl!;
        const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: this.queueUrl, AttributeNames: ["QueueArn"] }))).Attributes!.QueueArn!;
        await events.send(new PutRuleCommand({ Name: this.o.name, EventBusName: this.o.busName, EventPattern: JSON.stringify(jobEventPattern(this.o.source)) }));
        await events.send(new PutTargetsCommand({ Rule: this.o.name, EventBusName: this.o.busName, Targets: [{ Id: "job-events", Arn: arn }] }));
    }

    /**
     * Reads what has arrived (no wait: receives of 10 until one finds nothing, at most MAX_RECEIVES_PER_POLL), logs
     * each event, and returns them.
     */
    async poll(): Promise<SeenJobEvent[]> {
        if (this.queueUrl === "") return [];
        const all: SeenJobEvent[] = [];
        for (let i = 0; i < MAX_RECEIVES_PER_POLL; i++) {
            const r = await this.c.sqs.send(new ReceiveMessageCommand({ QueueUrl: this.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
            const messages = r.Messages ?? [];
            if (messages.length === 0) break;
            const got = messages.flatMap((m) => parseJobEvent(m.Body ?? "") ?? []);
            await this.c.sqs.send(
                new DeleteMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: messages.map((m, k) => ({ Id: String(k), ReceiptHandle: m.ReceiptHandle! })) }),
            );
            for (const e of got) this.o.log(describeJobEvent(e));
            this.seen.push(...got);
            all.push(...got);
        }
        return all;
    }

    /** Events per job key, e.g. to check that every job ended in exactly one. */
    countsByKey(): Map<string, number> {
        const out = new Map<string, number>();
        for (const e of this.seen) if (e.detail?.key) out.set(e.detail.key, (out.get(e.detail.key) ?? 0) + 1);
        return out;
    }
}

/** The run's note on its job events: how many jobs ended in exactly one event, which in none or several. */
export function jobEventsNote(counts: Map<string, number>, keys: string[]): string {
    const none = keys.filter((k) => !counts.has(k));
    const several = keys.filter((k) => (counts.get(k) ?? 0) > 1);
    const one = keys.length - none.length - several.length;
    const parts = [`job events: ${one} of ${keys.length} job(s) ended in exactly one event`];
    if (none.length > 0) parts.push(`none for ${none.join(", ")}`);
    if (several.length > 0) parts.push(`several for ${several.join(", ")}`);
    return parts.join("; ");
}
