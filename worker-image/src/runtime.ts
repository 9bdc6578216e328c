/**
 * The generic job runtime, composed of its parts (none knows about POV-Ray):
 * - receive-loop.ts: the long-poll loops (concurrency, idle exit, background finishing) and the Stopper (SIGTERM);
 * - message.ts:      one message: parse -> its jobs -> settle;
 * - job.ts:          one job: download -> unpack -> processor -> upload, classified as an Outcome;
 * - settle.ts:       delete / release / dead-letter a message, error reports, heartbeats;
 * - one-shot.ts:     one job from the environment (JOB_BUCKET + JOB_KEY), no queue.
 * - retry.ts:        retry with backoff for transient failures, abortable sleep.
 * - events.ts:       a finished job's EventBridge event and EMF metrics line (metrics.ts);
 * - protection.ts:   ECS task scale-in protection while busy (service mode).
 * `Worker` wires them to one S3 client, one SQS client and one logger; main.ts and the tests use it.
 */
import { S3Client } from "@aws-sdk/client-s3";
import { Message, SQSClient } from "@aws-sdk/client-sqs";
import * as fs from "fs";
import { jobId } from "./binding";
import { WorkerConfig, stopDeadlines } from "./config";
import { JobReporter, eventSettingsFromEnv } from "./events";
import { JobRunner, Outcome } from "./job";
import { Job } from "./keys";
import { Logger, createLogger } from "./log";
import { MessageHandler } from "./message";
import { runOneShot } from "./one-shot";
import { parentDeathTie } from "./parent-death";
import { Processor } from "./processor";
import { TaskProtection, protectionFromEnv } from "./protection";
import { ReceiveLoop, Stopper } from "./receive-loop";
import { QueueSettings, Settler, configuredQueueSettings, resolveQueueSettings } from "./settle";

export { MAX_SOURCE_KEY_METADATA, sourceKeyMetadata } from "./job";
export type { Outcome } from "./job";
export { sqsSafe } from "./settle";

export interface WorkerDeps {
    s3?: S3Client;
    sqs?: SQSClient;
    log?: Logger;
    /** Job events and metrics; default from the environment (EVENT_BUS_NAME, EVENT_SOURCE, WORKER_NAME, METRICS_NAMESPACE). */
    reporter?: JobReporter;
    /** Task scale-in protection; default from the environment (TASK_PROTECTION, ECS_AGENT_URI); null: none. */
    protection?: TaskProtection | null;
    /** Where the defaults above are read (default process.env). */
    env?: Record<string, string | undefined>;
}

/** S3 client honouring AWS_ENDPOINT_URL (path-style addressing when an endpoint is set, e.g. for moto). */
export function makeS3(region?: string): S3Client {
    return new S3Client({ region, forcePathStyle: !!process.env.AWS_ENDPOINT_URL, maxAttempts: 3 });
}

export function makeSqs(region?: string): SQSClient {
    return new SQSClient({ region, maxAttempts: 3 });
}

export class Worker {
    private readonly sqs: SQSClient;
    private readonly log: Logger;
    private readonly stopper: Stopper;
    /** Configured, else the queue's (filled in by run()), else 300 s / 3. */
    private readonly queue: QueueSettings;
    private readonly jobs: JobRunner;
    private readonly settler: Settler;
    private readonly messages: MessageHandler;
    readonly reporter: JobReporter;
    readonly protection?: TaskProtection;
    /**
     * Work that decides no job's outcome — job events and metrics, removing a stale error report — done off the path
     * between one job and the next; the worker waits for it before it exits.
     */
    private readonly background = new Set<Promise<unknown>>();

    constructor(
        private readonly cfg: WorkerConfig,
        processor: Processor,
        deps: WorkerDeps = {},
    ) {
        const s3 = deps.s3 ?? makeS3(cfg.region);
        this.sqs = deps.sqs ?? makeSqs(cfg.region);
        this.log = deps.log ?? createLogger({ worker: processor.name });
        this.stopper = new Stopper(this.log, stopDeadlines(cfg.stopTimeoutSeconds).finishWithinMs);
        this.queue = configuredQueueSettings(cfg);
        this.jobs = new JobRunner(cfg, { s3, processor, log: this.log, finishing: this.stopper.finishing, background: (p) => this.inBackground(p) });
        this.settler = new Settler(cfg, { s3, sqs: this.sqs, log: this.log, queue: this.queue, processorName: processor.name });
        const env = deps.env ?? process.env;
        this.reporter =
            deps.reporter ??
            new JobReporter(eventSettingsFromEnv(env, processor.name), { log: this.log, keys: cfg, region: cfg.region, jobIdOf: jobId });
        const protection = deps.protection === undefined ? protectionFromEnv(env, cfg.jobTimeoutSeconds, this.log) : undefined;
        this.protection = deps.protection ?? (protection && new TaskProtection(protection, { log: this.log }));
        this.messages = new MessageHandler({ runJob: (...a) => this.jobs.runJob(...a), settler: this.settler, log: this.log, finished: this.finished });
    }

    /** A settled message's (or the one-shot job's) finished jobs: their events and metrics, in the background. */
    private readonly finished = async (jobs: Parameters<JobReporter["finished"]>[0]) => this.inBackground(this.reporter.finished(jobs));

    /** Runs `work` in the background, tracked until it settles (it never rejects here). */
    private inBackground(work: Promise<unknown>): void {
        const tracked: Promise<unknown> = work.catch(() => undefined).finally(() => this.background.delete(tracked));
        this.background.add(tracked);
    }

    /** Resolves once the background work (and what it started meanwhile) has settled. */
    private async backgroundDone(): Promise<void> {
        while (this.background.size > 0) await Promise.all([...this.background]);
    }

    get isStopping(): boolean {
        return this.stopper.stopping;
    }

    /** SIGTERM: stop receiving, abort in-flight jobs (their messages become visible again). */
    stop(reason = "SIGTERM"): void {
        this.stopper.stop(reason);
    }

    /** Runs until the queue is drained (WORKER_IDLE_EXIT), forever (0) or stop(). Returns the exit code. */
    async run(): Promise<number> {
        // What a killed worker on this scratch dir left behind goes before the first job.
        await this.jobs.sweepAtStart();
        if (this.cfg.jobBucket && this.cfg.jobKey) return this.runOneShot(this.cfg.jobBucket, this.cfg.jobKey);
        await fs.promises.mkdir(this.cfg.scratchDir, { recursive: true });
        await resolveQueueSettings(this.sqs, this.cfg, this.queue, this.log);
        this.log("started", {
            queueUrl: this.cfg.queueUrl,
            concurrency: this.cfg.concurrency,
            idleExit: this.cfg.idleExit,
            visibilityTimeout: this.queue.visibilityTimeout,
            maxReceiveCount: this.queue.maxReceiveCount,
            toolParentDeath: parentDeathTie(),
        });
        const loop = new ReceiveLoop(this.cfg, {
            sqs: this.sqs,
            log: this.log,
            stopper: this.stopper,
            queue: this.queue,
            handle: (msg, processed) => this.handleMessage(msg, processed),
        });
        await loop.run();
        await this.backgroundDone();
        this.log("exiting", { reason: this.stopper.stopping ? "stopped" : "queue drained", code: 0 });
        return 0;
    }

    /** Processes and settles one SQS message (see MessageHandler.handle); stop() aborts it. */
    async handleMessage(msg: Message, processed?: () => void): Promise<void> {
        const tracked = this.stopper.track();
        await this.protection?.busy();
        try {
            await this.messages.handle(msg, tracked.signal, processed);
        } finally {
            tracked.done();
            await this.protection?.idle();
        }
    }

    /** One job: download, unpack, process, upload. Never throws: returns how it went. */
    runJob(job: Job, signal: AbortSignal, attempt: number, processed?: () => void): Promise<Outcome> {
        return this.jobs.runJob(job, signal, attempt, processed);
    }

    /** One-shot mode (JOB_BUCKET + JOB_KEY): process one job from the environment, no queue. */
    async runOneShot(bucket: string, key: string): Promise<number> {
        const deps = { runJob: this.runJob.bind(this), settler: this.settler, stopper: this.stopper, log: this.log, finished: this.finished };
        try {
            return await runOneShot(this.cfg, deps, bucket, key);
        } finally {
            await this.backgroundDone();
        }
    }
}
