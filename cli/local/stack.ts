/**
 * Evaluates a stack's Pulumi program (the POV-Ray stack's index.ts by default; `--stack DIR`: DIR/index.ts with
 * DIR/Pulumi.yaml) in-process under the project's Pulumi mocks (./mocks.ts) and returns
 * what it declares: the recorded resources' resolved inputs, read by type. Nothing here restates the component's
 * settings: queue attributes, redrive policy, notification filters, task definition and launcher settings all come
 * from the recorded inputs; `npm run local` then applies them to the emulator.
 *
 * Config: every key of Pulumi.yaml's `config:` at its declared default, then the caller's overrides
 * (e.g. `{ maxTasks: "3" }`), exactly as `pulumi up` would hand them to index.ts.
 */
import * as fs from "fs";
import * as path from "path";

import { PACKAGE_ROOT } from "../../components/lambda-ecs-worker/package-root";
import type { MappingConfig } from "./intake";
import { programFile } from "./stack-dir";

/** This package's root: the POV-Ray stack (its index.ts, Pulumi.yaml) in this repository. */
export const ROOT = PACKAGE_ROOT;

export interface DeclaredQueue {
    /** Fake URL/ARN the mocks gave the queue (what the other resources reference). */
    fakeUrl: string;
    fakeArn: string;
    name: string;
    /** Declared SQS attributes (API names), e.g. VisibilityTimeout, RedrivePolicy (with the fake DLQ ARN). */
    attributes: Record<string, string>;
}

export interface DeclaredNotification {
    events: string[];
    filterPrefix?: string;
    filterSuffix?: string;
}

export interface DeclaredStack {
    /** The config the stack was evaluated with (`key` → value). */
    config: Record<string, string>;
    bucketName: string;
    queue: DeclaredQueue;
    deadLetterQueue: DeclaredQueue;
    /** The queue the bucket's notifications go to (the launcher's intake). */
    intakeQueue: DeclaredQueue;
    /** The intake's event source mapping (emulated by intake.ts). */
    mapping: MappingConfig;
    notifications: DeclaredNotification[];
    cluster: { name: string; fakeArn: string; settings: { name: string; value: string }[] };
    capacityProviders: { capacityProviders: string[]; strategy: { capacityProvider: string; weight?: number; base?: number }[] };
    taskDefinition: {
        fakeArn: string;
        family: string;
        cpu: string;
        memory: string;
        networkMode: string;
        requiresCompatibilities: string[];
        volumes: { name: string }[];
        runtimePlatform?: { operatingSystemFamily?: string; cpuArchitecture?: string };
        containerDefinitions: any[];
        executionRoleArn?: string;
        taskRoleArn?: string;
    };
    /** EventBridge schedules that invoke the launcher (drain mode's "reconcile" runs). */
    schedules: { rule: string; scheduleExpression: string; intervalSeconds: number }[];
    launcher: {
        name: string;
        environment: Record<string, string>;
        timeoutSeconds: number;
        /** Lambda's async retries after a failed invocation (FunctionEventInvokeConfig), default 2. */
        maximumRetryAttempts: number;
        /** The serialized handler module (`__index.js` of the code archive). */
        indexJs: string;
    };
    /** Every resource the stack declares (type token, name, mock id, resolved inputs), for the applier table. */
    resources: { type: string; name: string; id: string; inputs: Record<string, any> }[];
}

/** `config:` keys of Pulumi.yaml with their declared type and default (a flat, two-level YAML map). */
export function declaredConfig(root = ROOT): Record<string, { type?: string; default?: string }> {
    const lines = fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8").split("\n");
    const start = lines.indexOf("config:");
    const out: Record<string, { type?: string; default?: string }> = {};
    let key = "";
    for (const line of lines.slice(start + 1)) {
        if (/^\S/.test(line)) break;
        const k = /^ {2}(\w+):\s*$/.exec(line);
        const v = /^ {4}(type|default):\s*(.*)$/.exec(line);
        if (k) out[(key = k[1])] = {};
        else if (v && key) out[key][v[1] as "type" | "default"] = v[2].replace(/^"(.*)"$/, "$1");
    }
    return out;
}

/** `config:` keys of Pulumi.yaml with their declared defaults. */
export function declaredConfigDefaults(root = ROOT): Record<string, string> {
    return Object.fromEntries(Object.entries(declaredConfig(root)).flatMap(([k, v]) => (v.default === undefined ? [] : [[k, v.default]])));
}

/** Seconds of an EventBridge `rate(N unit)` expression; 0 for anything else (cron expressions are not emulated). */
export function rateSeconds(expr: string): number {
    const m = /^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$/.exec(expr.trim());
    if (!m) return 0;
    const unit = m[2].startsWith("minute") ? 60 : m[2].startsWith("hour") ? 3600 : 86400;
    return Number(m[1]) * unit;
}

function single<T extends { type: string; name: string }>(resources: T[], type: string, pred: (r: T) => boolean = () => true): T {
    const found = resources.filter((r) => r.type === type && pred(r));
    if (found.length !== 1) throw new Error(`the stack declares ${found.length} ${type} resources, expected exactly one`);
    return found[0];
}

/** The component's type token. */
const COMPONENT_TYPE = "lambda-ecs-worker:index:LambdaEcsWorker";

/**
 * The resources of the stack's one `LambdaEcsWorker`: the component and its children (the program's exports are not
 * needed). Throws when the program declares none, or more than one.
 */
export function workerResources<T extends { type: string; name: string; urn: string }>(all: T[], program: string): T[] {
    const workers = all.filter((r) => r.type === COMPONENT_TYPE);
    if (workers.length !== 1) {
        throw new Error(
            `${program} declares ${workers.length} LambdaEcsWorker components${workers.length ? ` (${workers.map((w) => w.name).join(", ")})` : ""}; the offline run takes a stack with exactly one`,
        );
    }
    const name = workers[0].name;
    return all.filter((r) => r === workers[0] || (r.urn.includes(`::${COMPONENT_TYPE}$`) && r.name.startsWith(`${name}-`)));
}

/**
 * Lets `require` load the stack's TypeScript program as `pulumi up` does (ts-node, transpile only): nothing to do when
 * this process already runs under ts-node (this repository), else the stack's own ts-node (a Pulumi TypeScript
 * project has it), or an error saying what to install.
 */
export function registerTypeScript(stackDir: string): void {
    if (require.extensions[".ts"]) return;
    let tsNode: string;
    try {
        tsNode = require.resolve("ts-node", { paths: [stackDir] });
    } catch {
        throw new Error(`the stack's program is TypeScript, and ts-node is not installed in ${stackDir}: npm install --save-dev ts-node typescript`);
    }
    let typescriptVersion = "";
    try {
        typescriptVersion = require(require.resolve("typescript", { paths: [stackDir] })).version;
    } catch {}
    require(tsNode).register({ transpileOnly: true, compilerOptions: stackCompilerOptions(typescriptVersion) });
}

/**
 * The compiler options the stack's program is loaded with, whatever its tsconfig says: CommonJS with node resolution
 * (what `require` does). TypeScript 6 deprecates that resolution (`node10`) and refuses it unless told to ignore the
 * deprecation, an option TypeScript 5 in turn refuses with "6.0".
 */
export function stackCompilerOptions(typescriptVersion: string): Record<string, string> {
    const major = Number(/^(\d+)\./.exec(typescriptVersion)?.[1] ?? 0);
    return { module: "commonjs", moduleResolution: "node", ...(major >= 6 ? { ignoreDeprecations: "6.0" } : {}) };
}

/**
 * Evaluates `<stackDir>/index.ts` (default: the POV-Ray stack at the root) with the given config overrides of its
 * Pulumi.yaml. Must run once per process (the module registers its stack on import). Loads @pulumi/pulumi,
 * @pulumi/aws and the mocks: a few seconds.
 */
export async function evaluateStack(overrides: Record<string, string> = {}, stackDir = ROOT): Promise<DeclaredStack> {
    // Importing the mocks installs them before anything of the stack is loaded.
    const mocks: typeof import("./mocks") = require("./mocks");
    const pulumi: typeof import("@pulumi/pulumi") = require("@pulumi/pulumi");

    const defaults = declaredConfigDefaults(stackDir);
    for (const k of Object.keys(overrides)) {
        if (!(k in defaults)) throw new Error(`unknown config key "${k}"; Pulumi.yaml declares ${Object.keys(defaults).join(", ")}`);
    }
    const config = { ...defaults, ...overrides };
    const project = pulumi.getProject();
    pulumi.runtime.setAllConfig(Object.fromEntries(Object.entries(config).map(([k, v]) => [`${project}:${k}`, v])));
    mocks.resetRecorded();
    const program = programFile(stackDir);
    if (program.endsWith(".ts")) registerTypeScript(stackDir);
    require(program);
    await mocks.registrationsSettled();
    const resources = workerResources(mocks.recorded, program);

    const fn = single(resources, "aws:lambda/function:Function", (r) => r.name.endsWith("-launcher"));
    const launcherEnv: Record<string, string> = { ...(fn.inputs.environment?.variables ?? {}) };
    const { indexJs } = await mocks.launcherArchive(resources);
    const invokeConfig = resources.find((r) => r.type === "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig");

    const queueName = (url: string) => url.slice(url.lastIndexOf("/") + 1);
    const notification = single(resources, "aws:s3/bucketNotification:BucketNotification");
    const targets: any[] = notification.inputs.queues ?? [];
    const intakeArn: string = targets[0]?.queueArn ?? "";
    if (!intakeArn || targets.some((q) => q.queueArn !== intakeArn)) throw new Error("the bucket notification must send to exactly one queue (the launcher's intake)");
    const intakeRes = single(resources, "aws:sqs/queue:Queue", (r) => r.outputs.arn === intakeArn);
    const queues = resources.filter((r) => r.type === "aws:sqs/queue:Queue" && r !== intakeRes);
    const work = single(queues, "aws:sqs/queue:Queue", (r) => r.inputs.redrivePolicy !== undefined);
    const dlqRes = single(queues, "aws:sqs/queue:Queue", (r) => r !== work);
    const redrive = JSON.parse(work.inputs.redrivePolicy);
    const esm = single(resources, "aws:lambda/eventSourceMapping:EventSourceMapping", (r) => r.inputs.eventSourceArn === intakeArn);
    const attrs = (i: any): Record<string, string> => {
        const a: Record<string, string> = {};
        const set = (k: string, v: unknown) => {
            if (v !== undefined && v !== null) a[k] = String(v);
        };
        set("VisibilityTimeout", i.visibilityTimeoutSeconds);
        set("MessageRetentionPeriod", i.messageRetentionSeconds);
        set("ReceiveMessageWaitTimeSeconds", i.receiveWaitTimeSeconds);
        set("DelaySeconds", i.delaySeconds);
        set("MaximumMessageSize", i.maxMessageSize);
        set("SqsManagedSseEnabled", i.sqsManagedSseEnabled);
        if (i.redrivePolicy !== undefined) set("RedrivePolicy", i.redrivePolicy);
        return a;
    };

    const cluster = single(resources, "aws:ecs/cluster:Cluster");
    const bucketName: string = notification.inputs.bucket;
    const [queueUrl, dlqUrl]: string[] = [work.outputs.url, dlqRes.outputs.url];
    const td = single(resources, "aws:ecs/taskDefinition:TaskDefinition");
    const [clusterArn, taskDefinitionArn, launcherName]: string[] = [cluster.outputs.arn, td.outputs.arn, fn.outputs.name];
    const ccp = resources.find((r) => r.type === "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders");
    const ti = td.inputs;

    const schedules = resources
        .filter((r) => r.type === "aws:cloudwatch/eventTarget:EventTarget" && String(r.inputs.arn ?? "").endsWith(`:function:${launcherName}`))
        .map((target) => {
            const rule = resources.find(
                (r) => r.type === "aws:cloudwatch/eventRule:EventRule" && String(target.inputs.rule ?? "").startsWith(r.name) && r.inputs.scheduleExpression,
            );
            const expr: string = rule?.inputs.scheduleExpression ?? "";
            return { rule: String(target.inputs.rule), scheduleExpression: expr, intervalSeconds: rateSeconds(expr) };
        })
        .filter((x) => x.intervalSeconds > 0);

    return {
        config,
        schedules,
        bucketName,
        queue: { fakeUrl: queueUrl, fakeArn: "", name: queueName(queueUrl), attributes: attrs(work.inputs) },
        deadLetterQueue: { fakeUrl: dlqUrl, fakeArn: redrive.deadLetterTargetArn, name: queueName(dlqUrl), attributes: attrs(dlqRes.inputs) },
        intakeQueue: { fakeUrl: intakeRes.outputs.url, fakeArn: intakeArn, name: intakeRes.outputs.name, attributes: attrs(intakeRes.inputs) },
        mapping: {
            batchSize: Number(esm.inputs.batchSize ?? 10),
            windowSeconds: Number(esm.inputs.maximumBatchingWindowInSeconds ?? 0),
            maxConcurrency: Number(esm.inputs.scalingConfig?.maximumConcurrency ?? 1000),
            reportBatchItemFailures: (esm.inputs.functionResponseTypes ?? []).includes("ReportBatchItemFailures"),
        },
        notifications: targets.map((l: any) => ({
            events: l.events,
            ...(l.filterPrefix ? { filterPrefix: l.filterPrefix } : {}),
            ...(l.filterSuffix ? { filterSuffix: l.filterSuffix } : {}),
        })),
        cluster: { name: clusterArn.slice(clusterArn.lastIndexOf("/") + 1), fakeArn: clusterArn, settings: cluster.inputs.settings ?? [] },
        capacityProviders: {
            capacityProviders: ccp?.inputs.capacityProviders ?? [],
            strategy: ccp?.inputs.defaultCapacityProviderStrategies ?? [],
        },
        taskDefinition: {
            fakeArn: taskDefinitionArn,
            family: ti.family,
            cpu: String(ti.cpu),
            memory: String(ti.memory),
            networkMode: ti.networkMode,
            requiresCompatibilities: ti.requiresCompatibilities ?? [],
            volumes: ti.volumes ?? [],
            runtimePlatform: ti.runtimePlatform,
            containerDefinitions: JSON.parse(ti.containerDefinitions),
            executionRoleArn: ti.executionRoleArn,
            taskRoleArn: ti.taskRoleArn,
        },
        launcher: {
            name: launcherName,
            environment: launcherEnv,
            timeoutSeconds: Number(fn.inputs.timeout ?? 3),
            maximumRetryAttempts: Number(invokeConfig?.inputs.maximumRetryAttempts ?? 2),
            indexJs,
        },
        resources: resources.map((r) => ({ type: r.type, name: r.name, id: r.id, inputs: r.inputs })),
    };
}

if (require.main === module) {
    // Debug aid: print what the stack declares (without the launcher code).
    evaluateStack().then(
        (s) => {
            console.log(JSON.stringify({ ...s, launcher: { ...s.launcher, indexJs: `${s.launcher.indexJs.length} chars` } }, null, 2));
            process.exit(0);
        },
        (e) => {
            console.error(e);
            process.exit(1);
        },
    );
}
