/**
 * Setting up one `npm run local`: the worker runner, the stack evaluated under the Pulumi mocks and applied to a
 * fresh emulator (moto_server), the launcher's own code in its process, and the jobs uploaded to the bucket.
 */
import { PutObjectCommand } from "@aws-sdk/client-s3";
import * as fs from "fs";
import * as path from "path";

import { Moto, MOTO_ENV, startMoto } from "./moto";
import { Cleanup } from "./cleanup";
import { Clients, makeClients, provision, Provisioned, substitute } from "./emulator";
import { JobBook, notAJobReason, planJobs } from "./jobs";
import { AwsStandIn, startAwsStandIn } from "./aws-standin";
import { InvokeResult, LocalLauncher } from "./launcher";
import { Progress } from "./progress";
import { imageStaleness, podmanAvailable, podmanRunner, processRunner, Runner } from "./runners";
import { DeclaredStack, evaluateStack, ROOT } from "./stack";
import { localWorkerEnv } from "./stack-dir";

/** The options setting up reads (a subset of LocalOptions). */
export interface SetupOptions {
    inputs: string[];
    maxTasks?: number;
    runner: "auto" | "process" | "podman";
    image: string;
    workerWaitSeconds: number;
    reconcileSeconds: number;
    config: Record<string, string>;
    /** The stack dir (`--stack`): its index.ts and Pulumi.yaml. Default: the POV-Ray stack at the root. */
    stackDir?: string;
}

export interface Emulator {
    declared: DeclaredStack;
    moto: Moto;
    region: string;
    c: Clients;
    p: Provisioned;
}

/** The Pulumi config the stack is evaluated with: --config pairs, and --max-tasks as `maxTasks`. */
export function stackOverrides(o: Pick<SetupOptions, "config" | "maxTasks">): Record<string, string> {
    return { ...o.config, ...(o.maxTasks !== undefined ? { maxTasks: String(o.maxTasks) } : {}) };
}

/** Throws naming the first input that is not a file. */
export function checkInputs(inputs: string[]): void {
    for (const f of inputs) if (!fs.existsSync(f) || !fs.statSync(f).isFile()) throw new Error(`no such file: ${f}`);
}

/** podman when asked, or (auto) when the image exists; else local processes with a scratch dir under `tmp`. */
export function chooseRunner(o: Pick<SetupOptions, "runner" | "image" | "stackDir">, runId: string, tmp: string): Runner {
    if (o.runner === "podman" || (o.runner === "auto" && podmanAvailable(o.image))) return podmanRunner(runId, o.image);
    // A stack's worker process gets its Dockerfile's ENV (e.g. WORKER_COMMAND) in place of its image's.
    return processRunner(runId, path.join(tmp, "scratch"), localWorkerEnv(o.stackDir ?? ROOT));
}

/** Evaluates the stack while moto_server starts (registered with `cleanup` at once), then applies the stack to it. */
export async function startEmulator(overrides: Record<string, string>, cleanup: Cleanup, stackDir = ROOT): Promise<Emulator> {
    const motoStarting = startMoto().then((m) => (cleanup.moto = m));
    const [declared, moto]: [DeclaredStack, Moto] = await Promise.all([
        evaluateStack(overrides, stackDir).catch(async (e) => {
            await motoStarting.catch(() => undefined);
            throw e;
        }),
        motoStarting,
    ]);
    const region = MOTO_ENV.AWS_REGION;
    const c = makeClients(moto.endpoint, region);
    const p = await provision(c, moto.endpoint, region, declared);
    return { declared, moto, region, c, p };
}

/** Where this run departs from the declared stack; `stale` is the image staleness warning, if any. */
export function runNotes(o: Pick<SetupOptions, "workerWaitSeconds" | "reconcileSeconds">, em: Pick<Emulator, "declared" | "p">, runnerKind: string, stale?: string): string[] {
    const notes = [...em.p.notes, `WORKER_WAIT_SECONDS=${o.workerWaitSeconds} for quick drain-and-exit`];
    for (const sch of em.declared.schedules) notes.push(`schedule ${sch.rule} (${sch.scheduleExpression}) invokes the launcher every ${o.reconcileSeconds} s`);
    if (em.p.launcherEnv.LAUNCH_MODE === "service") notes.push("launchMode service: the local runner stands in for the ECS service's queue-depth scaling");
    if (stale) notes.push(stale);
    if (runnerKind === "process") notes.push("WORKER_SCRATCH_DIR: a temp dir per task (local processes)");
    return notes;
}

/**
 * The launcher's instances: one for asynchronous invocations (the schedules), started at once, and one per poller of
 * the intake's emulated event source mapping (its maximum concurrency), each started on its first batch (as Lambda
 * starts an instance when it needs one); each a Node process running the serialized handler, all talking to the
 * emulator through the AWS stand-in (aws-standin.ts: ECS's task counts, DynamoDB's atomic conditional writes).
 * Registered with `cleanup` as one (the stand-in stops after them).
 */
export async function startLaunchers(em: Emulator, runId: string, tmp: string, logsDir: string, cleanup: Cleanup): Promise<LaunchersUp> {
    const { declared, p, moto } = em;
    const standIn = await startAwsStandIn(moto.endpoint);
    // Queue URLs too: the SQS client sends to a queue URL's host (the SDK's useQueueUrlAsEndpoint).
    const launcherEnv = substitute(p.launcherEnv, [[moto.endpoint, standIn.endpoint]]);
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", ...launcherEnv, ...moto.env, AWS_ENDPOINT_URL: standIn.endpoint, AWS_LAMBDA_FUNCTION_NAME: declared.launcher.name, LEW_LOCAL_RUN: runId };
    const make = (i: number) =>
        new LocalLauncher(path.join(tmp, `launcher-${i}`), runId, declared.launcher.indexJs, env, declared.launcher.timeoutSeconds, path.join(logsDir, i === 0 ? "launcher.log" : `launcher-${i}.log`));
    const all = Array.from({ length: 1 + declared.mapping.maxConcurrency }, (_, i) => make(i));
    cleanup.launcher = {
        stop: async () => {
            await Promise.all(all.map((l) => l.stop()));
            await standIn.stop();
        },
        killNow: () => all.forEach((l) => l.killNow()),
    };
    await all[0].start();
    const intake = all.slice(1).map((l) => {
        let started: Promise<void> | undefined;
        return { invoke: async (event: unknown) => (await (started ??= l.start()), l.invoke(event)) };
    });
    return { launcher: all[0], intake, standIn };
}

/** The launcher's running instances (see startLaunchers). */
export interface LaunchersUp {
    /** Asynchronous invocations (the schedules). */
    launcher: LocalLauncher;
    /** One per intake poller, each started on its first invocation. */
    intake: { invoke(event: unknown): Promise<InvokeResult> }[];
    standIn: AwsStandIn;
}

/** The worker's declared outputs: its container's OUTPUT_SUFFIXES (the component's `outputSuffixes`). */
export function declaredOutputs(declared: Pick<DeclaredStack, "taskDefinition">): string[] | undefined {
    const env: { name: string; value: string }[] = declared.taskDefinition.containerDefinitions[0]?.environment ?? [];
    const v = env.find((e) => e.name === "OUTPUT_SUFFIXES")?.value;
    return v ? JSON.parse(v) : undefined;
}

/**
 * The jobs of the inputs: those the bucket notification would not pass to the launcher fail at once (rather than
 * time out); the others are uploaded, each stamped with its upload time.
 */
export async function uploadJobs(inputs: string[], em: Pick<Emulator, "declared" | "c" | "p">, progress: Progress): Promise<JobBook> {
    const { declared, c, p } = em;
    const prefix = declared.config.inputPrefix ?? "";
    const book = new JobBook(planJobs(inputs, { inputPrefix: prefix, outputPrefix: declared.config.outputPrefix ?? "", outputSuffixes: declaredOutputs(declared) }), (l) => progress.log(l));
    const suffixes = declared.notifications.map((n) => n.filterSuffix ?? "");
    for (const j of book.jobs) {
        const reason = notAJobReason(j.key, suffixes);
        if (reason) book.reject(j, reason);
    }
    const uploads = book.pending();
    await Promise.all(
        uploads.map(async (j) => {
            await c.s3.send(new PutObjectCommand({ Bucket: p.bucket, Key: j.key, Body: fs.readFileSync(j.input) }));
            j.uploadedAt = Date.now();
        }),
    );
    progress.log(`uploaded ${uploads.length} job(s) to s3://${p.bucket}/${prefix}`);
    return book;
}

export interface LocalSetup extends Emulator, LaunchersUp {
    runner: Runner;
    book: JobBook;
    notes: string[];
}

/** Everything before the jobs run: runner, emulator with the stack, launcher, uploads (each registered with `cleanup`). */
export async function setUp(o: SetupOptions, progress: Progress, runId: string, tmp: string, logsDir: string, cleanup: Cleanup): Promise<LocalSetup> {
    checkInputs(o.inputs);
    const runner = chooseRunner(o, runId, tmp);
    progress.log("evaluating the stack (index.ts) under the Pulumi mocks and starting moto_server...");
    const em = await startEmulator(stackOverrides(o), cleanup, o.stackDir ?? ROOT);
    const stale = runner.kind === "podman" ? imageStaleness(o.image) : undefined;
    const notes = runNotes(o, em, runner.kind, stale);
    if (stale) progress.log(`warning: ${stale}`);
    progress.log(`emulator ${em.moto.endpoint} · run ${runId} · bucket ${em.p.bucket} · max tasks ${em.declared.launcher.environment.MAX_TASKS} · workers: ${runner.describe}`);
    const launchers = await startLaunchers(em, runId, tmp, logsDir, cleanup);
    notes.push("the launcher reaches the emulator through a stand-in (cli/local/aws-standin.ts) that fills DescribeClusters' running/pending task counts (moto leaves them 0 for Fargate tasks) and forwards DynamoDB requests one at a time (moto's conditional writes are not atomic)");
    const book = await uploadJobs(o.inputs, em, progress);
    return { ...em, runner, ...launchers, book, notes };
}
