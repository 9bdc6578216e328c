/**
 * `npm run bench -- burst` (issue #19): how fast a burst of uploads is queued, and what it costs in AWS calls, for the
 * design before issue #19 (the baseline: S3 invokes the launcher asynchronously for each upload, reserved concurrency
 * 1, each invocation a full task-start decision: SendMessageBatch + ListTasks + DescribeTasks per 100 tasks +
 * GetQueueAttributes) and the intake design (S3 → intake queue → event source mapping, batches of 10, up to 5
 * invocations at once; decisions at most one a second, DescribeClusters + GetQueueAttributes + DynamoDB), at maxTasks
 * 10, 100 and 1000.
 *
 * Measured (moto_server, harness/burst.ts in its own process): a burst of 300 uploads through the stack's own trigger
 * as AWS delivers it, every request of the launcher counted by operation:
 *   measured_<n>_launcher_calls_per_upload, _ecs_calls, _decisions, _seconds, _tasks
 * Modeled (in-region latencies, stated below as model_latency_*): uploads queued per second, AWS calls per upload
 * (the launcher's own; + Lambda's polling of the intake; + S3's delivery of each notification), ECS control-plane calls
 * per second, and the time to queue a 10,000- and a 100,000-upload burst:
 *   model_<design>_<maxTasks>_uploads_per_s, _calls_per_upload, _calls_per_upload_all, _ecs_calls_per_s,
 *   _queue_10k_s, _queue_100k_s
 * The baseline's call pattern is the launcher's code before issue #19 (its per-upload calls, as test/burst.test.ts
 * measured them in its first commit: 603 ECS calls for 300 uploads, 4 AWS calls per upload below 100 tasks).
 */
import { spawnSync } from "child_process";
import * as path from "path";

import type { BurstResult } from "../harness/burst";

const ROOT = path.resolve(__dirname, "..");
const UPLOADS = 300;
const print = (name: string, value: string | number) => console.log(`${name}: ${value}`);
const fixed = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

/** In-region latencies (ms) of one call, the model's inputs. */
const L = {
    sqs: 10,
    ecsRead: 35,
    runTask: 150,
    dynamodb: 7.5,
    /** Lambda's own overhead per warm invocation (asynchronous or from an event source mapping). */
    invoke: 5,
};
/** The intake design's settings (the component's defaults) and the launcher's constants. */
const D = { batchSize: 10, concurrency: 5, decisionsPerSecond: 1, maxStartsPerDecision: 20 };

interface Model {
    uploadsPerSecond: number;
    /** The launcher's own calls per upload. */
    callsPerUpload: number;
    /** + what AWS makes for the upload (S3's delivery, Lambda's polling of the intake). */
    callsPerUploadAll: number;
    ecsCallsPerSecond: number;
}

/** Before issue #19: one invocation per upload, one at a time; each counts every task (pages of 100) and decides. */
function baseline(maxTasks: number): Model {
    const pages = Math.max(1, Math.ceil(maxTasks / 100)); // a burst keeps maxTasks tasks running
    const ms = L.invoke + L.sqs + pages * 2 * L.ecsRead + L.sqs;
    const calls = 1 + 2 * pages + 1;
    return {
        uploadsPerSecond: 1000 / ms,
        callsPerUpload: calls,
        // + S3's Invoke of the launcher for the upload.
        callsPerUploadAll: calls + 1,
        ecsCallsPerSecond: (2 * pages * 1000) / ms,
    };
}

/**
 * Issue #19: each of `concurrency` pollers receives a batch (one ReceiveMessage per 10 records), invokes the launcher
 * (SendMessageBatch calls in parallel, the gate's claim, and for the invocations that lose the window its turn:
 * counted for every invocation here, the worst case), then deletes the batch (DeleteMessageBatch per 10). One decision
 * a second: UpdateItem (claim) + DescribeClusters ∥ GetQueueAttributes + ⌈starts/10⌉ RunTask + UpdateItem (release).
 */
function intake(maxTasks: number): Model {
    const b = D.batchSize;
    const invocationMs = L.invoke + L.sqs + 2 * L.dynamodb;
    const cycleMs = Math.ceil(b / 10) * L.sqs + invocationMs + Math.ceil(b / 10) * L.sqs;
    const rate = (D.concurrency * b * 1000) / cycleMs;
    const starts = Math.min(D.maxStartsPerDecision, maxTasks); // while the farm ramps up; 0 once at maxTasks
    const decisionCalls = 1 + 2 + Math.ceil(starts / 10) + 1;
    const perUpload = (Math.ceil(b / 10) + 2) / b + (D.decisionsPerSecond * decisionCalls) / rate;
    const pollingPerUpload = (2 * Math.ceil(b / 10)) / b;
    return {
        uploadsPerSecond: rate,
        callsPerUpload: perUpload,
        // + Lambda's ReceiveMessage and DeleteMessageBatch of the intake, + S3's SendMessage of the notification.
        callsPerUploadAll: perUpload + pollingPerUpload + 1,
        ecsCallsPerSecond: D.decisionsPerSecond * (1 + Math.ceil(starts / 10)),
    };
}

function measured(maxTasks: number): BurstResult {
    const r = spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "harness/burst.ts", JSON.stringify({ uploads: UPLOADS, maxTasks })], {
        cwd: ROOT,
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
    });
    if (r.status !== 0) throw new Error(`harness/burst.ts failed: ${r.stderr.slice(-2000)}`);
    return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

function main(): void {
    for (const [k, v] of Object.entries(L)) print(`model_latency_${k}_ms`, v);
    print("model_intake_batch_size", D.batchSize);
    print("model_intake_concurrency", D.concurrency);
    for (const maxTasks of [10, 100, 1000]) {
        for (const [design, m] of [["baseline", baseline(maxTasks)], ["intake", intake(maxTasks)]] as const) {
            const p = `model_${design}_${maxTasks}`;
            print(`${p}_uploads_per_s`, fixed(m.uploadsPerSecond, 1));
            print(`${p}_calls_per_upload`, fixed(m.callsPerUpload));
            print(`${p}_calls_per_upload_all`, fixed(m.callsPerUploadAll));
            print(`${p}_ecs_calls_per_s`, fixed(m.ecsCallsPerSecond, 1));
            print(`${p}_queue_10k_s`, fixed(10000 / m.uploadsPerSecond, 0));
            print(`${p}_queue_100k_s`, fixed(100000 / m.uploadsPerSecond, 0));
        }
    }
    // Per-job mode: RunTask-bound by design (10 starts a second per worker; the rest waits in the intake).
    print("model_perjob_starts_per_s", 10);
    print("model_perjob_start_100k_s", fixed(100000 / 10, 0));

    for (const maxTasks of [10, 100, 1000]) {
        const b = measured(maxTasks);
        const launcherCalls = Object.values(b.calls).reduce((a, n) => a + n, 0);
        const p = `measured_${maxTasks}`;
        print(`${p}_uploads`, b.uploads);
        print(`${p}_jobs_queued`, b.queuedKeys.length);
        print(`${p}_tasks`, b.tasks);
        print(`${p}_invocations`, b.invocations);
        print(`${p}_launcher_calls_per_upload`, fixed(launcherCalls / b.uploads));
        print(`${p}_mapping_calls_per_upload`, fixed(b.mappingCalls / b.uploads));
        print(`${p}_ecs_calls`, b.ecsCalls);
        print(`${p}_decisions`, b.calls["ecs:DescribeClusters"] ?? 0);
        print(`${p}_seconds`, fixed(b.seconds, 1));
        print(`${p}_ecs_calls_per_s`, fixed(b.ecsCalls / b.seconds, 1));
        print(`${p}_calls`, JSON.stringify(b.calls));
    }
}

main();
