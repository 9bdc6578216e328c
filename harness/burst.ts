/**
 * A burst of uploads through the stack's own trigger, as AWS delivers it, against moto_server (issue #19): the POV-Ray
 * stack is evaluated under the mocks and applied to a fresh emulator (cli/local), N objects are uploaded to its bucket
 * at once, and every notification reaches the launcher's serialized code (`__index.js` in its own Node processes) the
 * way the declared trigger delivers it. The launcher talks to moto through the AWS stand-in (cli/local/aws-standin.ts),
 * which counts its requests by operation. Nothing is rendered: no worker runs, so every task the launcher starts
 * stays RUNNING, and the work queue keeps every job it queued.
 *
 * Run in its own process (the stack's program is evaluated once per process): `runBurst` from a script, or
 * `ts-node harness/burst.ts '<json options>'`, which prints the result as one JSON line.
 */
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { DeleteMessageBatchCommand, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { ListTasksCommand } from "@aws-sdk/client-ecs";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import { startAwsStandIn } from "../cli/local/aws-standin";
import { Cleanup } from "../cli/local/cleanup";
import { LocalLauncher } from "../cli/local/launcher";
import { startEmulator } from "../cli/local/setup";

export interface BurstOptions {
    /** Uploads at once. */
    uploads: number;
    maxTasks: number;
    /** Further Pulumi config of the stack (e.g. `{ launchMode: "service" }`). */
    config?: Record<string, string>;
    /** Give up waiting for the deliveries after this long. Default 180 s. */
    timeoutSeconds?: number;
}

export interface BurstResult {
    uploads: number;
    /** Keys of the job messages in the work queue, as queued (duplicates included). */
    queuedKeys: string[];
    /** Tasks the launcher started (they stay RUNNING: no worker runs). */
    tasks: number;
    maxTasks: number;
    /** The launcher's requests by `<service>:<operation>`. */
    calls: Record<string, number>;
    ecsCalls: number;
    /** Launcher invocations. */
    invocations: number;
    /** Failed invocations (errors). */
    invocationErrors: string[];
    /** Seconds from the first upload to the last delivery handled. */
    seconds: number;
    /** How the trigger was delivered. */
    delivery: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runBurst(o: BurstOptions): Promise<BurstResult> {
    const cleanup = new Cleanup();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lew-burst-"));
    cleanup.dirs.push(tmp);
    try {
        const em = await startEmulator({ maxTasks: String(o.maxTasks), ...(o.config ?? {}) }, cleanup);
        const { c, p, declared, moto } = em;
        const standIn = await startAwsStandIn(moto.endpoint);
        const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", ...p.launcherEnv, ...moto.env, AWS_ENDPOINT_URL: standIn.endpoint };
        const launcher = new LocalLauncher(path.join(tmp, "launcher"), "burst", declared.launcher.indexJs, env, declared.launcher.timeoutSeconds, path.join(tmp, "launcher.log"));
        cleanup.launcher = launcher;
        await launcher.start();

        const keys = Array.from({ length: o.uploads }, (_, i) => `burst/scene-${String(i).padStart(5, "0")}.zip`);
        const started = Date.now();
        for (let i = 0; i < keys.length; i += 16) {
            await Promise.all(keys.slice(i, i + 16).map((Key) => c.s3.send(new PutObjectCommand({ Bucket: p.bucket, Key, Body: `scene ${Key}` }))));
        }

        // S3 → Lambda (asynchronous invocation, reserved concurrency 1): one invocation per notification, one at a time.
        let invocations = 0;
        const invocationErrors: string[] = [];
        let delivered = 0;
        const deadline = started + (o.timeoutSeconds ?? 180) * 1000;
        let last = Date.now();
        while (delivered < o.uploads && Date.now() < deadline) {
            const r = await c.sqs.send(new ReceiveMessageCommand({ QueueUrl: p.eventsQueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
            for (const m of r.Messages ?? []) {
                const event = JSON.parse(m.Body ?? "{}");
                if (Array.isArray(event.Records)) {
                    invocations++;
                    const res = await launcher.invoke(event);
                    if (!res.ok) invocationErrors.push(String(res.error));
                    delivered += event.Records.length;
                    last = Date.now();
                }
                await c.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: p.eventsQueueUrl, Entries: [{ Id: "0", ReceiptHandle: m.ReceiptHandle! }] }));
            }
        }
        const seconds = (last - started) / 1000;

        const queuedKeys: string[] = [];
        for (;;) {
            const r = await c.sqs.send(new ReceiveMessageCommand({ QueueUrl: p.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 600 }));
            if (!r.Messages?.length) break;
            for (const m of r.Messages) queuedKeys.push(JSON.parse(m.Body ?? "{}").key);
        }
        let tasks = 0;
        let nextToken: string | undefined;
        do {
            const page = await c.ecs.send(new ListTasksCommand({ cluster: p.clusterArn, nextToken }));
            tasks += page.taskArns?.length ?? 0;
            nextToken = page.nextToken;
        } while (nextToken);
        await standIn.stop();
        return {
            uploads: o.uploads,
            queuedKeys,
            tasks,
            maxTasks: o.maxTasks,
            calls: Object.fromEntries(standIn.calls),
            ecsCalls: standIn.count("ecs"),
            invocations,
            invocationErrors,
            seconds,
            delivery: "S3 → Lambda asynchronous invocation, one at a time (reserved concurrency 1)",
        };
    } finally {
        await cleanup.run();
    }
}

if (require.main === module) {
    runBurst(JSON.parse(process.argv[2] ?? "{}")).then(
        (r) => {
            console.log(JSON.stringify(r));
            process.exit(0);
        },
        (e) => {
            console.error(e);
            process.exit(1);
        },
    );
}
