/**
 * The end of a job, told once: an EventBridge event (`Job Succeeded` / `Job Failed`) and an EMF metrics line.
 *
 * A job ends when its message is deleted after success, when it is dead-lettered, when it fails on the receive that the
 * queue's redrive policy will not deliver again (receive count >= maxReceiveCount: SQS moves it to the DLQ), or when a
 * one-shot job returns. Releasing a message for a retry is not an end: no event.
 *
 * Publishing is best effort: a few attempts with backoff, then a `job_event_failed` log line. It never throws, so it
 * never fails, repeats or loses the job; it runs after the message is settled (a crash in between loses the event,
 * never the job), in the background of the runtime (runtime.ts), which waits for it before the worker exits.
 *
 * Settings (worker-image/README.md): EVENT_BUS_NAME (bus name or ARN; unset: no events), EVENT_SOURCE (default
 * `lambda-ecs-worker.<WORKER_NAME>`), WORKER_NAME (default: the processor's name), METRICS_NAMESPACE.
 */
import type { EventBridgeClient, PutEventsRequestEntry } from "@aws-sdk/client-eventbridge";
import { errorMessage } from "./errors";
import type { Outcome } from "./job";
import { Job, outputKeys } from "./keys";
import { Logger } from "./log";
import { DEFAULT_METRICS_NAMESPACE, jobMetricsRecord } from "./metrics";
import { sleep } from "./retry";

export const DETAIL_TYPE = { succeeded: "Job Succeeded", failed: "Job Failed" } as const;

/** The `detail` of a job event (the contract users' EventBridge rules match on). */
export interface JobEventDetail {
    /** WORKER_NAME. */
    worker: string;
    bucket: string;
    key: string;
    /** Keys (in `bucket`) the job wrote: its outputs, or its error report (`<base>.error.json`) when it failed. */
    outputs: string[];
    /** Seconds the last attempt took (download to upload). */
    seconds: number;
    /** Receives of the message (1 for a one-shot job). */
    attempts: number;
    /** Job Failed only: why. */
    reason?: string;
    /** Job Failed only: permanent | timeout | transient | interrupted | not-started | launcher. */
    failureClass?: string;
    /** When the job has one (issue #12). */
    jobId?: string;
}

export interface EventSettings {
    /** Bus name or ARN; undefined: no events (metrics are still written). */
    busName?: string;
    source: string;
    worker: string;
    namespace: string;
}

/** EventBridge's `Source`: letters, digits, `.`, `-`, `_`, `/`; not `aws.` (reserved). */
export const EVENT_SOURCE_PATTERN = /^(?!aws\.)[A-Za-z0-9._\/-]{1,256}$/;

type Env = Record<string, string | undefined>;

export function eventSettingsFromEnv(env: Env, processorName: string): EventSettings {
    const s = (n: string) => (env[n] ?? "").trim() || undefined;
    const worker = s("WORKER_NAME") ?? processorName;
    const source = s("EVENT_SOURCE") ?? `lambda-ecs-worker.${worker}`;
    if (!EVENT_SOURCE_PATTERN.test(source)) {
        throw new Error(`EVENT_SOURCE must be 1-256 letters, digits, '.', '-', '_' or '/' and not start with "aws." (got ${JSON.stringify(source)})`);
    }
    return { busName: s("EVENT_BUS_NAME"), source, worker, namespace: s("METRICS_NAMESPACE") ?? DEFAULT_METRICS_NAMESPACE };
}

/** EventBridge limits an entry to 256 KB: keep reasons short. */
export const MAX_REASON_CHARS = 2000;

/** The PutEvents entry of one job event. */
export function jobEventEntry(s: Pick<EventSettings, "busName" | "source">, detail: JobEventDetail): PutEventsRequestEntry {
    const d = { ...detail, ...(detail.reason !== undefined && { reason: detail.reason.slice(0, MAX_REASON_CHARS) }) };
    return {
        EventBusName: s.busName,
        Source: s.source,
        DetailType: detail.reason === undefined && detail.failureClass === undefined ? DETAIL_TYPE.succeeded : DETAIL_TYPE.failed,
        Detail: JSON.stringify(d),
    };
}

/** What the job runner measured (JobRunner fills it in). */
export interface JobStats {
    seconds: number;
    bytesIn: number;
    bytesOut: number;
    /** Keys of the uploaded outputs. */
    outputs: string[];
}

/** A job that has ended. */
export interface FinishedJob {
    job: Job & { jobId?: string };
    attempts: number;
    /** Undefined: succeeded. */
    failure?: { failureClass: string; reason: string; errorReport: boolean };
    stats?: Partial<JobStats>;
}

export interface JobReporterDeps {
    log: Logger;
    /** Created on first use when events are enabled. */
    eventBridge?: EventBridgeClient;
    /** Output prefixes, to name a failed job's error report. */
    keys?: { inputPrefix?: string; outputPrefix?: string };
    /** The job's stable id (issue #12), when it has one. */
    jobIdOf?: (job: Job) => string | undefined;
    /** PutEvents attempts (default 3) and backoff base (default 200 ms). */
    attempts?: number;
    baseDelayMs?: number;
    region?: string;
}

export class JobReporter {
    private eventBridge?: EventBridgeClient;

    constructor(
        readonly settings: EventSettings,
        private readonly deps: JobReporterDeps,
    ) {
        this.eventBridge = deps.eventBridge;
    }

    /** The event detail of a finished job. */
    detail(f: FinishedJob): JobEventDetail {
        const { job, failure, stats } = f;
        const jobId = typeof job.jobId === "string" ? job.jobId : this.deps.jobIdOf?.(job);
        const outputs = failure
            ? failure.errorReport
                ? [outputKeys(job.key, this.deps.keys ?? {}).error]
                : []
            : [...(stats?.outputs ?? [])];
        return {
            worker: this.settings.worker,
            bucket: job.bucket,
            key: job.key,
            outputs,
            seconds: Math.round((stats?.seconds ?? 0) * 1000) / 1000,
            attempts: f.attempts,
            ...(failure && { reason: failure.reason, failureClass: failure.failureClass }),
            ...(jobId !== undefined && jobId !== "" && { jobId }),
        };
    }

    /** Writes the metrics line and publishes the event of each finished job. Never throws. */
    async finished(jobs: FinishedJob[]): Promise<void> {
        await Promise.all(jobs.map((f) => this.one(f)));
    }

    private async one(f: FinishedJob): Promise<void> {
        const detail = this.detail(f);
        try {
            // Through the logger: one JSON line whose extra members (time, event, ...) EMF allows.
            const record = jobMetricsRecord(this.settings.namespace, {
                    worker: this.settings.worker,
                    succeeded: !f.failure,
                    failureClass: f.failure?.failureClass,
                    seconds: f.stats?.seconds ?? 0,
                    bytesIn: f.stats?.bytesIn ?? 0,
                    bytesOut: f.stats?.bytesOut ?? 0,
                    properties: { bucket: detail.bucket, key: detail.key, ...(detail.jobId && { jobId: detail.jobId }) },
            });
            this.deps.log("job_metrics", record);
        } catch (err) {
            this.deps.log("job_metrics_failed", { key: detail.key, reason: errorMessage(err) });
        }
        if (this.settings.busName === undefined) return;
        await this.publish(detail);
    }

    /** PutEvents with retries on errors and on failed entries; logs the outcome. */
    private async publish(detail: JobEventDetail): Promise<void> {
        const attempts = Math.max(1, this.deps.attempts ?? 3);
        const entry = jobEventEntry(this.settings, detail);
        let reason = "";
        for (let attempt = 1; attempt <= attempts; attempt++) {
            try {
                const EB: typeof import("@aws-sdk/client-eventbridge") = require("@aws-sdk/client-eventbridge");
                this.eventBridge ??= new EB.EventBridgeClient({ region: this.deps.region, maxAttempts: 2 });
                const out = await this.eventBridge.send(new EB.PutEventsCommand({ Entries: [entry] }));
                const failed = out.Entries?.[0];
                if (!out.FailedEntryCount && failed?.ErrorCode === undefined) {
                    this.deps.log("job_event_published", { detailType: entry.DetailType, key: detail.key, eventId: failed?.EventId, attempt });
                    return;
                }
                reason = `${failed?.ErrorCode ?? "failed entry"}: ${failed?.ErrorMessage ?? ""}`;
            } catch (err) {
                reason = errorMessage(err);
            }
            if (attempt < attempts) await sleep(Math.round((this.deps.baseDelayMs ?? 200) * 2 ** (attempt - 1) * (0.5 + Math.random())));
        }
        this.deps.log("job_event_failed", { detailType: entry.DetailType, key: detail.key, attempts, reason });
    }
}

/** The failure class of a job event (and the FailureClass metric dimension) for an outcome status. */
export function failureClassOf(status: string): string {
    return status === "aborted" ? "interrupted" : status;
}

/**
 * The finished jobs of a settled message (or a one-shot job): `jobs[i]` ran with `outcomes[i]`. Outcomes that end no
 * job are left out: `aborted` (released, or one-shot: the caller passes it as a failure), `stale` (superseded by a
 * newer upload of the same key, which has its own job and event). `errorReports`: whether the failures got one.
 */
export function finishedJobs(
    jobs: readonly Job[],
    outcomes: readonly Outcome[],
    attempts: number,
    errorReports: (status: string) => boolean,
): FinishedJob[] {
    const out: FinishedJob[] = [];
    outcomes.forEach((o, i) => {
        const job = ("job" in o && o.job) || jobs[i];
        if (!job || o.status === "stale" || o.status === "aborted") return;
        if (o.status === "ok") return void out.push({ job, attempts, stats: o.stats });
        const failureClass = failureClassOf(o.status);
        out.push({ job, attempts, stats: o.stats, failure: { failureClass, reason: o.reason, errorReport: errorReports(o.status) } });
    });
    return out;
}
