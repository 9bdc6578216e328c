/**
 * A burst of uploads through the stack's own trigger, as AWS delivers it, against moto_server (issue #19): the POV-Ray
 * stack is evaluated under the mocks and applied to a fresh emulator (cli/local), N objects are uploaded to its bucket
 * at once, and every notification reaches the launcher's serialized code (`__index.js` in its own Node processes) the
 * way the declared trigger delivers it: moto puts S3's notifications in the intake queue, and the intake's event source
 * mapping is emulated as `npm run local` does it (cli/local/intake.ts: the declared batch size, batching window and
 * maximum concurrency of launcher processes, batchItemFailures back to the queue). The launcher talks to moto through
 * the AWS stand-in (cli/local/aws-standin.ts), which counts its requests by operation. Nothing is rendered: no worker
 * runs, so every task the launcher starts stays RUNNING, and the work queue keeps every job it queued.
 *
 * Run in its own process (the stack's program is evaluated once per process): `runBurst` from a script, or
 * `ts-node harness/burst.ts '<json options>'`, which prints the result as one JSON line.
 */
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { GetQueueAttributesCommand, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { ListTasksCommand } from "@aws-sdk/client-ecs";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import { Cleanup } from "../cli/local/cleanup";
import { IntakeMapping, MappingConfig } from "../cli/local/intake";
import { startEmulator, startLaunchers } from "../cli/local/setup";

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
    /** Seconds the uploads themselves took (PutObject against moto, 16 at a time). */
    uploadSeconds: number;
    /** How the trigger was delivered. */
    delivery: string;
    /** The declared mapping, and the most invocations in flight at once. */
    mapping: MappingConfig;
    peakConcurrency: number;
    /** Intake records delivered (redeliveries included) and deleted as handled. */
    delivered: number;
    deleted: number;
    /** The mapping's ReceiveMessage and DeleteMessageBatch calls. */
    mappingCalls: number;
}


export async function runBurst(o: BurstOptions): Promise<BurstResult> {
    const cleanup = new Cleanup();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lew-burst-"));
    cleanup.dirs.push(tmp);
    try {
        const em = await startEmulator({ maxTasks: String(o.maxTasks), ...(o.config ?? {}) }, cleanup);
        const { c, p, declared, moto } = em;
        const up = await startLaunchers(em, "burst", tmp, tmp, cleanup);

        const keys = Array.from({ length: o.uploads }, (_, i) => `burst/scene-${String(i).padStart(5, "0")}.zip`);
        const started = Date.now();
        let finished = false;
        const deadline = started + (o.timeoutSeconds ?? 180) * 1000;
        const mapping = new IntakeMapping({
            sqs: c.sqs,
            queueUrl: p.intakeQueueUrl,
            queueArn: p.intakeQueueArn,
            region: em.region,
            config: declared.mapping,
            instances: up.intake,
            log: (l) => process.stderr.write(`${l}\n`),
            stopped: () => finished || Date.now() > deadline,
        });
        const delivering = mapping.run(() => !finished);
        for (let i = 0; i < keys.length; i += 16) {
            await Promise.all(keys.slice(i, i + 16).map((Key) => c.s3.send(new PutObjectCommand({ Bucket: p.bucket, Key, Body: `scene ${Key}` }))));
        }
        const uploadSeconds = (Date.now() - started) / 1000;
        // Done when every upload was delivered and the intake is empty (nothing waiting, nothing in flight).
        for (;;) {
            const a = (await c.sqs.send(new GetQueueAttributesCommand({ QueueUrl: p.intakeQueueUrl, AttributeNames: ["All"] }))).Attributes ?? {};
            const left = Number(a.ApproximateNumberOfMessages) + Number(a.ApproximateNumberOfMessagesNotVisible);
            if ((mapping.deleted >= o.uploads && left === 0) || Date.now() > deadline) break;
            await new Promise((r) => setTimeout(r, 200));
        }
        const seconds = (Date.now() - started) / 1000;
        finished = true;
        await delivering;

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
        return {
            uploads: o.uploads,
            queuedKeys,
            tasks,
            maxTasks: o.maxTasks,
            calls: Object.fromEntries(up.standIn.calls),
            ecsCalls: up.standIn.count("ecs"),
            invocations: mapping.invocations,
            invocationErrors: mapping.errors,
            seconds,
            uploadSeconds,
            delivery: "S3 → the intake queue → the emulated event source mapping (its batches, window and concurrency)",
            mapping: declared.mapping,
            peakConcurrency: mapping.peakConcurrency,
            delivered: mapping.delivered,
            deleted: mapping.deleted,
            mappingCalls: mapping.receiveCalls + mapping.deleteCalls,
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
