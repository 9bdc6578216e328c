/**
 * Watches the emulator for the outcome of each job, as a user of the stack would: the PNG or the `.error.json` the
 * worker writes next to the input, or a message in the dead-letter queue naming the job; and the work queue's depth.
 */
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import * as fs from "fs";
import * as path from "path";

import { decodeS3Key } from "../../functions/launcher";
import { displayPath, Job, JobBook } from "./jobs";

/**
 * The job keys and the reason of one dead-letter message: a job `{bucket,key,reason}` from a worker or a launcher,
 * an S3 event the worker could not handle, or Lambda's on-failure record of a launcher invocation that failed for
 * good (the S3 event in `requestPayload`, the error in `responsePayload`). SQS's own redrive carries no reason.
 * `jobId`: the worker's stable id of the dead-lettered job (body or attribute), when there is one: the DLQ is
 * at-least-once, so copies of one message share it.
 */
export function deadLetteredJobs(messageBody: string, reasonAttribute?: string, jobIdAttribute?: string): { keys: string[]; reason: string; jobId?: string } {
    let body: any = {};
    try {
        body = JSON.parse(messageBody);
    } catch {}
    const keys: string[] = [];
    if (typeof body?.key === "string") keys.push(body.key);
    for (const rec of [...(body?.Records ?? []), ...(body?.requestPayload?.Records ?? [])]) {
        const raw = rec?.s3?.object?.key;
        if (typeof raw !== "string") continue;
        try {
            keys.push(decodeS3Key(raw));
        } catch {}
    }
    const launcherError = body?.responsePayload?.errorMessage;
    const reason = body?.reason ?? (launcherError && `launcher failed: ${launcherError}`) ?? reasonAttribute ?? "dead-lettered (maxReceiveCount reached)";
    const jobId = typeof body?.jobId === "string" ? body.jobId : jobIdAttribute;
    return jobId ? { keys, reason, jobId } : { keys, reason };
}

/**
 * What settles a job, given the bucket's keys and the reasons read from the DLQ: its outputs (all of them: the PNG for
 * POV-Ray; kind "png" names the primary output), else its error report, else a DLQ reason.
 */
export function jobOutcome(job: Job, bucketKeys: Set<string>, dlqReasons: Map<string, string>): { kind: "png" | "error" } | { kind: "dlq"; reason: string } | undefined {
    if ((job.outputs ?? [job.png]).every((k) => bucketKeys.has(k))) return { kind: "png" };
    if (bucketKeys.has(job.error)) return { kind: "error" };
    const reason = dlqReasons.get(job.key);
    return reason !== undefined ? { kind: "dlq", reason } : undefined;
}

export interface QueueDepth {
    /** ApproximateNumberOfMessages: jobs waiting for a worker. */
    visible: number;
    /** ApproximateNumberOfMessagesNotVisible: jobs a worker holds. */
    inFlight: number;
}

/** How many settled jobs' outputs pollOutputs downloads at once. */
export const OUTPUT_DOWNLOADS = 8;

export interface WatchTarget {
    s3: S3Client;
    sqs: SQSClient;
    bucket: string;
    queueUrl: string;
    dlqUrl: string;
    /** Where downloaded PNGs and error reports go. */
    outDir: string;
}

export class JobWatcher {
    /** Reasons read from the DLQ, by job key (a job may also have an output by the time it is read). */
    readonly dlqReasons = new Map<string, string>();
    depth: QueueDepth = { visible: 0, inFlight: 0 };
    /** jobIds of the dead-letter messages read; a second message with one of them is a copy (the DLQ is at-least-once). */
    readonly dlqJobIds = new Set<string>();
    /** Dead-letter messages that were copies of one already read (same jobId): counted once. */
    dlqDuplicates = 0;
    /** `<key>: <reason>` of dead-letter messages naming a job already done (it produced its outputs): a job ended twice. */
    readonly lateDeadLetters: string[] = [];

    constructor(private readonly t: WatchTarget, private readonly book: JobBook) {}

    /** Reads (and deletes) the dead-letter queue's messages; remembers the reason of each pending job they name. */
    async pollDlq(): Promise<void> {
        const { sqs, dlqUrl } = this.t;
        const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageAttributeNames: ["All"] }));
        const msgs = r.Messages ?? [];
        for (const m of msgs) {
            const { keys, reason, jobId } = deadLetteredJobs(m.Body ?? "", m.MessageAttributes?.reason?.StringValue, m.MessageAttributes?.jobId?.StringValue);
            if (jobId !== undefined) {
                if (this.dlqJobIds.has(jobId)) {
                    this.dlqDuplicates++;
                    continue;
                }
                this.dlqJobIds.add(jobId);
            }
            for (const k of keys) {
                const j = this.book.byKey.get(k);
                if (j && !j.result) this.dlqReasons.set(j.key, reason);
                else if (j?.result?.status === "done") this.lateDeadLetters.push(`${k}: ${reason}`);
            }
        }
        if (msgs.length > 0) {
            await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: dlqUrl, Entries: msgs.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
        }
    }

    /**
     * Settles every pending job that has an outcome: downloads its PNG or error report into outDir, OUTPUT_DOWNLOADS
     * jobs at a time (a burst's outputs arrive together: one by one, the run's view of it fell tens of seconds behind).
     */
    async pollOutputs(): Promise<void> {
        const keys = await this.bucketKeys();
        const ready = this.book.pending().flatMap((j) => {
            const outcome = jobOutcome(j, keys, this.dlqReasons);
            return outcome ? [{ j, outcome }] : [];
        });
        const next = () => ready.shift();
        // Every download ends before this returns (the caller's next poll must not settle a job twice); the first
        // failure, if any, is thrown then.
        const ends = await Promise.allSettled(
            Array.from({ length: Math.min(OUTPUT_DOWNLOADS, ready.length) }, async () => {
                for (let x = next(); x; x = next()) await this.settle(x.j, x.outcome);
            }),
        );
        const failed = ends.find((e): e is PromiseRejectedResult => e.status === "rejected");
        if (failed) throw failed.reason;
    }

    private async settle(j: Job, outcome: NonNullable<ReturnType<typeof jobOutcome>>): Promise<void> {
        if (outcome.kind === "png") {
            // Each output as <name><suffix> (the key's base is <name>); the primary one is shown.
            const base = j.error.slice(0, j.error.length - ".error.json".length);
            const files = (j.outputs ?? [j.png]).map((k) => [k, path.join(this.t.outDir, j.name + k.slice(base.length))]);
            for (const [k, file] of files) await this.download(k, file);
            this.book.finish(j, "done", displayPath(files[0][1]));
        } else if (outcome.kind === "error") {
            const file = path.join(this.t.outDir, `${j.name}.error.json`);
            await this.download(j.error, file);
            let reason = "failed";
            try {
                reason = JSON.parse(fs.readFileSync(file, "utf8")).reason ?? reason;
            } catch {}
            this.book.finish(j, "failed", displayPath(file), reason);
        } else if (outcome.kind === "dlq") {
            this.book.finish(j, "failed", undefined, outcome.reason);
        }
    }

    async pollQueue(): Promise<QueueDepth> {
        const a = await this.t.sqs.send(
            new GetQueueAttributesCommand({ QueueUrl: this.t.queueUrl, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }),
        );
        this.depth = {
            visible: Number(a.Attributes?.ApproximateNumberOfMessages ?? 0),
            inFlight: Number(a.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
        };
        return this.depth;
    }

    private async bucketKeys(): Promise<Set<string>> {
        const keys = new Set<string>();
        let token: string | undefined;
        do {
            const page = await this.t.s3.send(new ListObjectsV2Command({ Bucket: this.t.bucket, ContinuationToken: token }));
            for (const obj of page.Contents ?? []) keys.add(obj.Key!);
            token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
        return keys;
    }

    private async download(key: string, file: string): Promise<void> {
        const obj = await this.t.s3.send(new GetObjectCommand({ Bucket: this.t.bucket, Key: key }));
        fs.writeFileSync(file, Buffer.from(await obj.Body!.transformToByteArray()));
    }
}
