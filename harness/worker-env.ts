/**
 * Helpers for the worker tests and benchmark: S3/SQS clients on moto, zips of the fixture scenes, a PNG header
 * reader, an in-process worker with captured logs and a child-process worker.
 */
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import {
    CreateQueueCommand,
    GetQueueAttributesCommand,
    Message,
    ReceiveMessageCommand,
    SendMessageCommand,
    SQSClient,
} from "@aws-sdk/client-sqs";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yazl from "yazl";
import type { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { jobId } from "../worker-image/src/binding";
import { WorkerConfig, configFromEnv } from "../worker-image/src/config";
import { JobReporter, eventSettingsFromEnv } from "../worker-image/src/events";
import { PovrayProcessor } from "../worker-image/src/povray";
import { Processor } from "../worker-image/src/processor";
import { Worker } from "../worker-image/src/runtime";
import { Moto, motoClientConfig, startMoto } from "./moto";

export const REPO = path.resolve(__dirname, "..");
export const SCENES = path.join(REPO, "test/fixtures/scenes");
export const WORKER_MAIN = path.join(REPO, "worker-image/src/main.ts");

export function scene(name: string): Buffer {
    return fs.readFileSync(path.join(SCENES, name));
}

export interface ZipEntry {
    name: string;
    data?: Buffer | string;
    /** Unix mode incl. file type bits, e.g. 0o120777 for a symlink. */
    mode?: number;
    dir?: boolean;
}

/** Builds a zip in memory with yazl. Names are not validated (so tests can build hostile zips). */
export function makeZip(entries: ZipEntry[]): Promise<Buffer> {
    const zip = new yazl.ZipFile();
    for (const e of entries) {
        if (e.dir) zip.addEmptyDirectory(e.name, { mode: e.mode });
        else zip.addBuffer(Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data ?? ""), e.name, { mode: e.mode });
    }
    zip.end();
    return new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        zip.outputStream.on("data", (c: Buffer) => chunks.push(c));
        zip.outputStream.on("end", () => resolve(Buffer.concat(chunks)));
        zip.outputStream.on("error", reject);
    });
}

/** yazl refuses unsafe names: build with a placeholder of the same length, then patch the bytes. */
export async function makeZipWithRawName(safeName: string, rawName: string, data: string): Promise<Buffer> {
    if (Buffer.byteLength(safeName) !== Buffer.byteLength(rawName)) throw new Error("names must have the same length");
    const buf = await makeZip([{ name: safeName, data }]);
    const from = Buffer.from(safeName);
    const to = Buffer.from(rawName);
    let i = buf.indexOf(from);
    while (i >= 0) {
        to.copy(buf, i);
        i = buf.indexOf(from, i + to.length);
    }
    return buf;
}

/** The tiny scene with its INI, zipped under `<base>.ini` / tiny.pov. */
export function tinyJobZip(base: string): Promise<Buffer> {
    return makeZip([
        { name: `${base}.ini`, data: scene("tiny.ini") },
        { name: "tiny.pov", data: scene("tiny.pov") },
    ]);
}

/** Width/height from a PNG's IHDR chunk; throws when it is not a PNG. */
export function pngSize(buf: Buffer): { width: number; height: number } {
    const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    if (buf.length < 24 || !buf.subarray(0, 8).equals(sig) || buf.toString("ascii", 12, 16) !== "IHDR") {
        throw new Error("not a PNG");
    }
    return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

export class Aws {
    readonly s3: S3Client;
    readonly sqs: SQSClient;
    constructor(readonly moto: Moto) {
        const common = motoClientConfig(moto.endpoint);
        this.s3 = new S3Client({ ...common, forcePathStyle: true });
        this.sqs = new SQSClient(common);
    }

    async bucket(name: string): Promise<string> {
        await this.s3.send(new CreateBucketCommand({ Bucket: name }));
        return name;
    }

    async queue(name: string, attrs: Record<string, string> = {}): Promise<{ url: string; arn: string }> {
        const res = await this.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attrs }));
        const url = res.QueueUrl!;
        const a = await this.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }));
        return { url, arn: a.Attributes!.QueueArn! };
    }

    /** A work queue with a real redrive policy to its own DLQ. */
    async queues(name: string, maxReceiveCount = 3, visibilityTimeout = 30): Promise<{ queueUrl: string; dlqUrl: string }> {
        const dlq = await this.queue(`${name}-dlq`);
        const q = await this.queue(name, {
            VisibilityTimeout: String(visibilityTimeout),
            RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount }),
        });
        return { queueUrl: q.url, dlqUrl: dlq.url };
    }

    /** Uploads an object; returns its ETag as S3 answers it (quoted). */
    async put(bucket: string, key: string, body: Buffer | string): Promise<string> {
        const res = await this.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
        return res.ETag ?? "";
    }

    async get(bucket: string, key: string): Promise<Buffer | undefined> {
        try {
            const res = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
            return Buffer.from(await res.Body!.transformToByteArray());
        } catch (e) {
            if ((e as { name?: string }).name === "NoSuchKey") return undefined;
            throw e;
        }
    }

    async head(bucket: string, key: string) {
        return this.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    }

    async send(queueUrl: string, body: unknown): Promise<void> {
        await this.sqs.send(
            new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: typeof body === "string" ? body : JSON.stringify(body) }),
        );
    }

    /** Every message currently visible (received with a short visibility timeout, then left). */
    async drain(queueUrl: string): Promise<Message[]> {
        const out: Message[] = [];
        for (;;) {
            const res = await this.sqs.send(
                new ReceiveMessageCommand({
                    QueueUrl: queueUrl,
                    MaxNumberOfMessages: 10,
                    WaitTimeSeconds: 0,
                    VisibilityTimeout: 60,
                    MessageAttributeNames: ["All"],
                    MessageSystemAttributeNames: ["All"],
                }),
            );
            if (!res.Messages?.length) return out;
            out.push(...res.Messages);
        }
    }

    /** Visible + in-flight + delayed messages. */
    async depth(queueUrl: string): Promise<number> {
        const res = await this.sqs.send(
            new GetQueueAttributesCommand({
                QueueUrl: queueUrl,
                AttributeNames: [
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            }),
        );
        const a = res.Attributes ?? {};
        return (
            Number(a.ApproximateNumberOfMessages ?? 0) +
            Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) +
            Number(a.ApproximateNumberOfMessagesDelayed ?? 0)
        );
    }
}

/** An S3 event notification body, keys URL-encoded the way S3 does it (`+` for spaces). */
export function s3Event(bucket: string, keys: string[]): string {
    const encode = (k: string) => encodeURIComponent(k).replace(/%20/g, "+").replace(/%2F/g, "/");
    return JSON.stringify({
        Records: keys.map((k) => ({
            eventVersion: "2.1",
            eventSource: "aws:s3",
            awsRegion: "us-east-1",
            eventTime: new Date().toISOString(),
            eventName: "ObjectCreated:Put",
            s3: { s3SchemaVersion: "1.0", bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` }, object: { key: encode(k), size: 1 } },
        })),
    });
}

export type LogLine = { event: string; [k: string]: unknown };

/** Environment for a worker talking to moto. */
export function workerEnv(moto: Moto, extra: Record<string, string>): Record<string, string> {
    return {
        ...moto.env,
        WORKER_WAIT_SECONDS: "1",
        WORKER_IDLE_EXIT: "1",
        WORKER_SCRATCH_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "worker-test-scratch-")),
        ...extra,
    };
}

/**
 * Runs a worker in-process until it exits (drain mode), with its config from `env` (moto's endpoint/credentials must
 * already be in process.env: see useMotoEnv). Returns the exit code and the captured log lines.
 */
export async function runWorkerInProcess(
    env: Record<string, string>,
    opts: {
        s3?: S3Client;
        sqs?: SQSClient;
        processor?: Processor;
        onLog?: (line: LogLine, worker: Worker) => void;
        /**
         * Job events through this client, with the event and task-protection settings read from `env` (EVENT_BUS_NAME,
         * EVENT_SOURCE, WORKER_NAME, TASK_PROTECTION, ECS_AGENT_URI, ...) as in a container. Unset: from process.env.
         */
        eventBridge?: EventBridgeClient;
    } = {},
): Promise<{ code: number; logs: LogLine[] }> {
    const logs: LogLine[] = [];
    const cfg: WorkerConfig = configFromEnv(env);
    const processor = opts.processor ?? new PovrayProcessor();
    const log = (event: string, fields: Record<string, unknown> = {}) => {
        const line = { event, ...fields };
        logs.push(line);
        opts.onLog?.(line, worker);
    };
    const reporter = opts.eventBridge
        ? new JobReporter(eventSettingsFromEnv(env, processor.name), { log, keys: cfg, region: cfg.region, jobIdOf: jobId, eventBridge: opts.eventBridge })
        : undefined;
    const worker: Worker = new Worker(cfg, processor, {
        s3: opts.s3,
        sqs: opts.sqs,
        log,
        ...(opts.eventBridge ? { env, reporter } : {}),
    });
    const code = await worker.run();
    return { code, logs };
}

/**
 * An S3 client on moto whose `send` fails with a 503 for the first `failures` commands named `commandName`
 * (Infinity = always): to exercise the worker's transient-failure path. `makeError` replaces the injected 503.
 */
export function flakyS3(moto: Moto, commandName: string, failures: number, makeError?: () => Error): S3Client {
    const client = new S3Client({ region: "us-east-1", endpoint: moto.endpoint, forcePathStyle: true, maxAttempts: 1 });
    const send = client.send.bind(client) as (...a: unknown[]) => Promise<unknown>;
    let failed = 0;
    (client as unknown as { send: (...a: unknown[]) => Promise<unknown> }).send = async (...args: unknown[]) => {
        const cmd = args[0] as { constructor: { name: string } };
        if (cmd.constructor.name === commandName && failed < failures) {
            failed++;
            if (makeError) throw makeError();
            throw Object.assign(new Error("Service Unavailable (injected)"), {
                name: "ServiceUnavailable",
                $metadata: { httpStatusCode: 503 },
            });
        }
        return send(...args);
    };
    return client;
}

/** Characters SQS accepts in a message body or attribute value; moto does not check them. */
const SQS_VALID = /^[\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u;

/**
 * An SQS client on moto that rejects SendMessage with characters outside SQS's allowed set (in the body or a string
 * attribute) the way SQS does (400 InvalidMessageContents), and records every SendMessage it accepted.
 */
export function strictSqs(moto: Moto): { sqs: SQSClient; sent: Array<{ body: string; attributes: Record<string, string> }> } {
    const client = new SQSClient({ region: "us-east-1", endpoint: moto.endpoint });
    const send = client.send.bind(client) as (...a: unknown[]) => Promise<unknown>;
    const sent: Array<{ body: string; attributes: Record<string, string> }> = [];
    (client as unknown as { send: (...a: unknown[]) => Promise<unknown> }).send = async (...args: unknown[]) => {
        const cmd = args[0] as { constructor: { name: string }; input: { MessageBody?: string; MessageAttributes?: Record<string, { StringValue?: string }> } };
        if (cmd.constructor.name === "SendMessageCommand") {
            const attributes = Object.fromEntries(Object.entries(cmd.input.MessageAttributes ?? {}).map(([k, v]) => [k, v.StringValue ?? ""]));
            for (const v of [cmd.input.MessageBody ?? "", ...Object.values(attributes)]) {
                if (!SQS_VALID.test(v)) {
                    throw Object.assign(new Error("Invalid characters found (injected check)"), {
                        name: "InvalidMessageContents",
                        $fault: "client",
                        $metadata: { httpStatusCode: 400 },
                    });
                }
            }
            sent.push({ body: cmd.input.MessageBody ?? "", attributes });
        }
        return send(...args);
    };
    return { sqs: client, sent };
}

/** Puts moto's endpoint and fake credentials into process.env (the SDK default chain); returns a restore function. */
export function useMotoEnv(moto: Moto): () => void {
    const saved: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(moto.env)) {
        saved[k] = process.env[k];
        process.env[k] = v;
    }
    return () => {
        for (const [k, v] of Object.entries(saved)) {
            if (v === undefined) delete process.env[k];
            else process.env[k] = v;
        }
    };
}

/**
 * A worker spec's emulator, as mocha hooks: `before` starts moto_server, points the SDK's environment at it
 * (useMotoEnv) and hands the emulator and its clients to `ready`; `after` restores the environment and stops it.
 * Returns `setup()`, which makes a fresh bucket and work queue with its DLQ (`<prefix>-<n>`) for a test.
 */
export function useWorkerMoto(
    prefix: string,
    ready: (moto: Moto, aws: Aws) => void,
): (maxReceiveCount?: number, visibilityTimeout?: number) => Promise<{ bucket: string; queueUrl: string; dlqUrl: string }> {
    let moto: Moto | undefined;
    let aws: Aws;
    let restoreEnv: (() => void) | undefined;
    let n = 0;
    before(async function () {
        moto = await startMoto();
        aws = new Aws(moto);
        restoreEnv = useMotoEnv(moto);
        ready(moto, aws);
    });
    after(async function () {
        restoreEnv?.();
        await moto?.stop();
    });
    return async (maxReceiveCount = 3, visibilityTimeout = 30) => {
        n++;
        const bucket = await aws.bucket(`${prefix}-${n}`);
        return { bucket, ...(await aws.queues(`${prefix}-${n}`, maxReceiveCount, visibilityTimeout)) };
    };
}

export interface ChildWorker {
    proc: ChildProcess;
    logs: LogLine[];
    /** Resolves with the first log line matching. */
    waitFor(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
    exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
    stderr(): string;
}

/**
 * Starts `node -r ts-node/register/transpile-only worker-image/src/main.ts` with exactly `env` (+ PATH/HOME);
 * `prefix`: a command line to run it under (e.g. `unshare ... sh -c '...; exec "$@"' sh`).
 */
export function startChildWorker(env: Record<string, string>, opts: { prefix?: string[] } = {}): ChildWorker {
    const argv = [...(opts.prefix ?? []), process.execPath, "-r", "ts-node/register/transpile-only", WORKER_MAIN];
    const proc = spawn(argv[0], argv.slice(1), {
        cwd: REPO,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? os.tmpdir(), ...env },
        stdio: ["ignore", "pipe", "pipe"],
    });
    const logs: LogLine[] = [];
    const waiters: Array<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
    let buf = "";
    let err = "";
    proc.stdout!.on("data", (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            let parsed: LogLine;
            try {
                parsed = JSON.parse(line);
            } catch {
                parsed = { event: "non-json", line };
            }
            logs.push(parsed);
            for (const w of [...waiters]) {
                if (w.pred(parsed)) {
                    waiters.splice(waiters.indexOf(w), 1);
                    w.resolve(parsed);
                }
            }
        }
    });
    proc.stderr!.on("data", (d: Buffer) => {
        err = (err + d.toString()).slice(-8000);
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        proc.on("exit", (code, signal) => resolve({ code, signal })),
    );
    return {
        proc,
        logs,
        exited,
        stderr: () => err,
        waitFor(pred, timeoutMs = 60000) {
            const found = logs.find(pred);
            if (found) return Promise.resolve(found);
            return new Promise((resolve, reject) => {
                const t = setTimeout(
                    () => reject(new Error(`log line not seen in ${timeoutMs} ms; logs: ${JSON.stringify(logs)}\n${err}`)),
                    timeoutMs,
                );
                waiters.push({
                    pred,
                    resolve: (l) => {
                        clearTimeout(t);
                        resolve(l);
                    },
                });
                void exited.then(() => {
                    clearTimeout(t);
                    const f = logs.find(pred);
                    if (f) resolve(f);
                    else reject(new Error(`worker exited before the log line; logs: ${JSON.stringify(logs)}\n${err}`));
                });
            });
        },
    };
}
