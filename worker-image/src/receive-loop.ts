/**
 * The receive side of the worker: `concurrency` independent loops long-polling the queue, each running one message at
 * a time while the previous one finishes (uploads, delete) in the background, exiting after WORKER_IDLE_EXIT
 * consecutive empty receives; and the Stopper that SIGTERM triggers to stop receiving and abort jobs in flight.
 */
import { Message, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { WorkerConfig } from "./config";
import { errorMessage } from "./errors";
import { Logger } from "./log";
import type { ProcessedHook } from "./job";
import { sleep } from "./retry";
import { QueueSettings } from "./settle";

/** Stopping state shared by the loops and the jobs in flight. */
export class Stopper {
    private stopped = false;
    private stopReason = "SIGTERM";
    private readonly controller = new AbortController();
    private readonly finishingController = new AbortController();
    private readonly inflight = new Set<AbortController>();

    /**
     * @param finishWithinMs after stop(), how long a job whose processor has finished may go on uploading its outputs
     * before `finishing` aborts them (config.ts stopDeadlines). Default: aborted at once, like the jobs.
     */
    constructor(
        private readonly log: Logger,
        private readonly finishWithinMs = 0,
    ) {}

    /**
     * Aborted `finishWithinMs` after stop(): the deadline of the uploads of jobs whose processor had finished (they are
     * not aborted by stop() itself, so that a finished render is not lost).
     */
    get finishing(): AbortSignal {
        return this.finishingController.signal;
    }

    get stopping(): boolean {
        return this.stopped;
    }

    /** What stop() was called with ("SIGTERM" until then). */
    get reason(): string {
        return this.stopReason;
    }

    /** Aborted by stop(): cancels a pending receive or back-off. */
    get signal(): AbortSignal {
        return this.controller.signal;
    }

    /** Stop receiving and abort every tracked job (their messages become visible again). Only the first call counts. */
    stop(reason = "SIGTERM"): void {
        if (this.stopped) return;
        this.stopped = true;
        this.stopReason = reason;
        this.log("stopping", { reason, inflight: this.inflight.size });
        this.controller.abort();
        for (const c of this.inflight) c.abort();
        if (this.finishWithinMs <= 0) this.finishingController.abort();
        else setTimeout(() => this.finishingController.abort(), this.finishWithinMs).unref();
    }

    /** A signal for one message or job, aborted by stop() (at once if already stopping); call `done` when finished. */
    track(): { signal: AbortSignal; done: () => void } {
        const controller = new AbortController();
        if (this.stopped) controller.abort();
        this.inflight.add(controller);
        return { signal: controller.signal, done: () => void this.inflight.delete(controller) };
    }
}

/**
 * Longest a job whose processor has finished waits before its uploads, for the loop's next job to be received,
 * downloaded and unpacked (see ReceiveLoop.start): the next job's path to its processor goes first.
 */
export const FINISH_DEFER_MAX_MS = 250;

/**
 * How long the loop's next receive may stay unanswered before a finished job goes on to its uploads anyway: SQS answers
 * a long poll at once when a message is waiting, so a receive still open after this means an idle queue (the end of a
 * drain, or a quiet service), where waiting for a next job would only delay the outputs.
 */
export const RECEIVE_ANSWER_MS = 50;

/** The settings the loops read. */
export type ReceiveConfig = Pick<WorkerConfig, "queueUrl" | "waitSeconds" | "idleExit" | "concurrency">;

export interface ReceiveLoopDeps {
    sqs: SQSClient;
    log: Logger;
    stopper: Stopper;
    /** Read at each receive (the runtime resolves it from the queue at start). */
    queue: Pick<QueueSettings, "visibilityTimeout">;
    /**
     * Processes and settles one message; never throws. Calls `processed` once the message's last processor run has
     * finished (the rest, e.g. uploads, may go on in the background, once what it returns resolves), or not at all;
     * and `processed.ready` when that job is about to start its processor (a ProcessedHook, job.ts).
     */
    handle: (msg: Message, processed: ProcessedHook) => Promise<void>;
}

export class ReceiveLoop {
    constructor(
        private readonly cfg: ReceiveConfig,
        private readonly deps: ReceiveLoopDeps,
    ) {}

    /** Runs `concurrency` loops until each has seen `idleExit` empty receives in a row (0 = never) or stop(). */
    async run(): Promise<void> {
        await Promise.all(Array.from({ length: this.cfg.concurrency }, (_, i) => this.loop(i)));
    }

    /**
     * One receive loop: one job is processed at a time per loop. A job's uploads and its message's deletion finish in the
     * background while the loop receives and processes the next job, so the worker's I/O hides behind the processing; at
     * most one job finishes in the background (the loop waits for it before starting a second). The next job's path to
     * its processor goes first: a finished job's uploads start once the next job is ready to run its processor, or the
     * next receive found nothing, failed or was not answered within RECEIVE_ANSWER_MS, or the worker stops, or
     * FINISH_DEFER_MAX_MS have passed.
     */
    private async loop(index: number): Promise<void> {
        const finishing = new Set<Promise<void>>();
        try {
            await this.receiveLoop(index, finishing);
        } finally {
            await Promise.all(finishing);
        }
    }

    private async receiveLoop(index: number, finishing: Set<Promise<void>>): Promise<void> {
        const { stopper } = this.deps;
        let empty = 0;
        let failures = 0;
        // Lets the last job whose processor finished go on to its uploads (once).
        let release: () => void = () => undefined;
        const go = () => {
            release();
            release = () => undefined;
        };
        try {
            while (!stopper.stopping) {
                let messages: Message[];
                const idle = setTimeout(go, RECEIVE_ANSWER_MS);
                try {
                    messages = await this.receive();
                    failures = 0;
                } catch (err) {
                    go();
                    if (stopper.stopping) break;
                    failures++;
                    const delay = Math.min(30000, 500 * 2 ** Math.min(failures, 6));
                    this.deps.log("receive_failed", { loop: index, reason: errorMessage(err), retryInMs: delay });
                    await sleep(delay, stopper.signal);
                    continue;
                } finally {
                    clearTimeout(idle);
                }
                if (messages.length === 0) {
                    go();
                    empty++;
                    if (this.cfg.idleExit > 0 && empty >= this.cfg.idleExit) break;
                    continue;
                }
                empty = 0;
                for (const m of messages) release = await this.start(m, finishing, go);
            }
        } finally {
            go();
        }
    }

    /** One long-poll for a single message, cancelled by stop(). */
    private async receive(): Promise<Message[]> {
        const res = await this.deps.sqs.send(
            new ReceiveMessageCommand({
                QueueUrl: this.cfg.queueUrl,
                MaxNumberOfMessages: 1,
                WaitTimeSeconds: this.cfg.waitSeconds,
                VisibilityTimeout: this.deps.queue.visibilityTimeout,
                MessageSystemAttributeNames: ["ApproximateReceiveCount"],
                MessageAttributeNames: ["All"],
            }),
            { abortSignal: this.deps.stopper.signal },
        );
        return res.Messages ?? [];
    }

    /**
     * Starts a message and returns once its processor has finished, and no older message is still finishing, with the
     * function that lets it go on to its uploads. `goPrevious` lets the previous message's job go on: called when this
     * one's job is ready to run its processor (or has ended without).
     */
    private async start(m: Message, finishing: Set<Promise<void>>, goPrevious: () => void): Promise<() => void> {
        let markProcessed!: () => void;
        const jobProcessed = new Promise<void>((resolve) => (markProcessed = resolve));
        let go!: () => void;
        const mayGoOn = new Promise<void>((resolve) => (go = resolve));
        let timer: NodeJS.Timeout | undefined;
        const onStop = () => go();
        this.deps.stopper.signal.addEventListener("abort", onStop, { once: true });
        const processed: ProcessedHook = Object.assign(
            () => {
                markProcessed();
                if (this.deps.stopper.stopping) go();
                timer ??= setTimeout(go, FINISH_DEFER_MAX_MS);
                return mayGoOn;
            },
            { ready: goPrevious },
        );
        const done: Promise<void> = this.deps.handle(m, processed).finally(() => {
            markProcessed();
            goPrevious();
            go();
            clearTimeout(timer);
            this.deps.stopper.signal.removeEventListener("abort", onStop);
            finishing.delete(done);
        });
        finishing.add(done);
        await jobProcessed;
        // At most one job finishing in the background per loop: wait for older ones before the next job.
        const older = [...finishing].filter((p) => p !== done);
        if (older.length) {
            goPrevious();
            await Promise.all(older);
        }
        return go;
    }
}
