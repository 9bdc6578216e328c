/**
 * Runs the launcher (the serialized `__index.js` Pulumi packages, in a fresh Node process) and the worker
 * (worker-image/src, in-process with the real POV-Ray) against a recording moto_server, in a world created with the
 * very names and ARNs of the stack built under the mocks, along the success and failure paths of one launch mode.
 * The launcher signs with ACCESS_KEYS.launcher, the worker with ACCESS_KEYS.task, the test's own setup with moto's
 * default key, so each recorded request is attributed to the role that makes it on AWS.
 *
 * moto differences worked around here (never in the code under test):
 *  - moto_server speaks plain HTTP on 127.0.0.1: recorded requests are re-addressed to the service's HTTPS endpoint
 *    (the SDK's default without AWS_ENDPOINT_URL) before mapping, see asSentToAws.
 *  - RunTask with a capacityProviderStrategy answers HTTP 500, so CAPACITY_PROVIDER_STRATEGY is "[]" (the launcher then
 *    sends launchType FARGATE), as in test/launcher-serialized.test.ts — except in the per-job failure step, which uses
 *    that 500 as "ECS could not start the task" (moto never fails a RunTask otherwise, not even on a deleted cluster).
 *  - subnets and security groups are moto's default VPC's (not IAM resources of RunTask).
 *  - service mode's WORKER_IDLE_EXIT=0 (run forever) is set to 1 so that the worker exits once the queue is empty.
 *  - service mode: the ECS service is created in moto under the stack's name (the launcher's SERVICE_NAME), desired
 *    count 0, so that the launcher's wake (DescribeServices, UpdateService) runs against it; moto starts no task for it.
 *  - drain and service modes: the run of the job stopped mid-job has WORKER_VISIBILITY_TIMEOUT 3 (the stack's is 300 s),
 *    so that its heartbeat (ChangeMessageVisibility, every second) happens before it is stopped, 1.5 s into its render.
 *  - service mode: the worker's ECS_AGENT_URI points at a local stand-in for the ECS agent's task protection endpoint
 *    (moto has no UpdateTaskProtection): it records each PUT and answers as the agent does on success; each recorded
 *    PUT becomes the agent's ecs:UpdateTaskProtection of the task with the task role (platform.ts
 *    agentTaskProtectionCall), evaluated like the recorded requests.
 *
 * Every mode also hands the launcher Lambda's on-failure event of one of its own invocations (source `lambda`, as the
 * rule `<name>-launcher-failure-events` delivers it), on which it publishes `Job Failed` for the invocation's jobs.
 *
 * Uploads reach the launcher as on AWS (issue #19): their S3 notification is put in the intake queue (as S3 would: its
 * SendMessage is a platform request, platform.ts) and the intake's event source mapping is played with the launcher's
 * key, as Lambda polls with the function's role: ReceiveMessage, the invocation with the batch, DeleteMessageBatch of
 * the records it handled. In drain and service modes a last step hands the launcher an intake record on its last
 * allowed receive (received 9 times before, with the test's own key) whose job the work queue refuses (its
 * MaximumMessageSize lowered to 1024 bytes, the job's key 1000 characters long): the launcher dead-letters it itself.
 * The coordination table is created under the stack's name (DynamoDB UpdateItem with the launcher's key).
 */
import { CreateClusterCommand, CreateServiceCommand, ECSClient, RegisterTaskDefinitionCommand } from "@aws-sdk/client-ecs";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { S3Client, UploadPartCommand } from "@aws-sdk/client-s3";
import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageCommand, SetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import * as fs from "fs";
import * as http from "http";
import { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";

import { LAUNCHER_ENV } from "../../functions/launcher-settings";
import { invokeInFreshNode, Invocation, writeLauncherModule } from "../launcher-package";
import { motoClientConfig } from "../moto";
import { launcherArchive, one } from "../stack";
import { Aws, makeZip, runWorkerInProcess, s3Event, scene, tinyJobZip } from "../worker-env";
import { PovrayProcessor } from "../../worker-image/src/povray";
import { Processor } from "../../worker-image/src/processor";
import { onFailureRecord } from "../../cli/local/events";
import { handledIds, sqsRecord } from "../../cli/local/intake";
import { agentTaskProtectionCall } from "./platform";
import { ACCESS_KEYS, asSentToAws, RecordedHttpRequest, RecordingMoto, roleClientConfig } from "./recording";
import { StackPolicies } from "./stack-policies";

export interface ScenarioRun {
    /** Requests signed by the launcher's and the worker's keys, re-addressed to AWS's HTTPS endpoints. */
    launcher: RecordedHttpRequest[];
    worker: RecordedHttpRequest[];
    /** Service mode: the ECS agent's UpdateTaskProtection calls (task role) for the worker's PUTs to the agent. */
    agent: RecordedHttpRequest[];
    /** The bodies of the worker's PUTs to `$ECS_AGENT_URI/task-protection/v1/state`, in order. */
    agentPuts: unknown[];
    /** What each step returned, for the test's checks that the paths really ran. */
    invocations: Invocation[];
    workerLogs: { event: string; [k: string]: unknown }[];
}

/** A processor whose one output (`.png`) is bigger than one upload part: 9 MiB. */
function bigOutputProcessor(): Processor {
    return {
        name: "big-output",
        async process(input) {
            const out = path.join(input.workDir, "big.png");
            fs.writeFileSync(out, Buffer.alloc(9 * 1024 * 1024, 1));
            return { seconds: 0.01, outputs: [{ suffix: ".png", path: out, contentType: "image/png" }] };
        },
    };
}

/** The worker's S3 client, except that the second part of an upload to a key containing `marker` fails with a 400. */
function failingSecondPart(s3: S3Client, marker: string): S3Client {
    return new Proxy(s3, {
        get(target, prop) {
            if (prop !== "send") return Reflect.get(target, prop);
            return async (cmd: { input?: { Key?: string; PartNumber?: number } }, options?: unknown) => {
                if (cmd instanceof UploadPartCommand && cmd.input.PartNumber === 2 && cmd.input.Key?.includes(marker)) {
                    throw Object.assign(new Error("injected part failure"), { name: "InvalidArgument", $fault: "client", $metadata: { httpStatusCode: 400 } });
                }
                return (target.send as (c: unknown, o?: unknown) => Promise<unknown>)(cmd, options);
            };
        },
    });
}

async function ec2Query(endpoint: string, action: string): Promise<string> {
    const res = await fetch(`${endpoint}/`, {
        method: "POST",
        headers: {
            "content-type": "application/x-www-form-urlencoded",
            authorization: "AWS4-HMAC-SHA256 Credential=testing/20261201/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=x",
        },
        body: new URLSearchParams({ Action: action, Version: "2016-11-15" }).toString(),
    });
    return res.text();
}

const SERVICE_HOSTS: Record<string, string> = { sqs: "sqs", s3: "s3", ecs: "ecs", logs: "logs", ecr: "api.ecr", events: "events", dynamodb: "dynamodb" };

/** Everything recorded since the last clear, split by role; throws on a request signed by an unknown key. */
async function attributed(rec: RecordingMoto): Promise<{ launcher: RecordedHttpRequest[]; worker: RecordedHttpRequest[] }> {
    const out = { launcher: [] as RecordedHttpRequest[], worker: [] as RecordedHttpRequest[] };
    for (const r of await rec.requests()) {
        const service = /Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\//.exec(r.headers.Authorization ?? r.headers.authorization ?? "")?.[1] ?? "";
        const aws = () => asSentToAws(r, rec.moto.endpoint, "us-east-1", SERVICE_HOSTS[service] ?? service);
        if (r.accessKeyId === ACCESS_KEYS.launcher) out.launcher.push(aws());
        else if (r.accessKeyId === ACCESS_KEYS.task) out.worker.push(aws());
        else if (r.accessKeyId !== "testing") throw new Error(`request signed by an unknown key ${r.accessKeyId}: ${r.method} ${r.url}`);
    }
    return out;
}

/** The ECS agent's task protection endpoint, standing in for it: records each request, answers as on success. */
async function agentStandIn(taskArn: string) {
    const requests: Array<{ method: string; url: string; body: string }> = [];
    const server = http.createServer((req, res) => {
        let body = "";
        req.on("data", (d) => (body += d));
        req.on("end", () => {
            requests.push({ method: req.method ?? "", url: req.url ?? "", body });
            let enabled = false;
            let minutes = 0;
            try {
                const b = JSON.parse(body);
                enabled = b.ProtectionEnabled === true;
                minutes = Number(b.ExpiresInMinutes ?? 120);
            } catch {
                // answered below as the agent answers a body it cannot read
            }
            if (req.method !== "PUT" || !req.url?.endsWith("/task-protection/v1/state")) {
                res.writeHead(404, { "Content-Type": "application/json" });
                return void res.end(JSON.stringify({ error: { Code: "NotFound", Message: req.url } }));
            }
            const expirationDate = enabled ? new Date(Date.now() + minutes * 60000).toISOString() : null;
            res.writeHead(200, { "Content-Type": "application/json" });
            res.end(JSON.stringify({ protection: { ExpirationDate: expirationDate, ProtectionEnabled: enabled, TaskArn: taskArn } }));
        });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/${taskArn.split("/").pop()}`;
    return { uri, requests, close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))) };
}

/**
 * Create the stack's world in moto (after a reset), then run every step of the stack's launch mode. Inputs are
 * `<inputPrefix>scenes/good.zip` (renders), `<inputPrefix>scenes/bad.zip` (no scene: permanent failure, .error.json
 * and DLQ), `<inputPrefix>scenes/stopped.zip` (the worker is stopped mid-job: released, or dead-lettered in
 * per-job mode) and `<inputPrefix>scenes/deleted.zip`, a job whose input was deleted before the worker got it (the
 * download's 404, then the listing that tells a deleted input from an unreadable one); a stale `.error.json` of the
 * good input exists, so a success deletes it. With `multipart` (the default), `scenes/big.zip` and
 * `scenes/bigfail.zip` get a 9 MiB output: one multipart upload that completes, one that fails at its second part and
 * is aborted.
 */
export async function runScenario(rec: RecordingMoto, sp: StackPolicies, opts: { multipart?: boolean } = {}): Promise<ScenarioRun> {
    const moto = rec.moto;
    await moto.reset();
    const setup = motoClientConfig(moto.endpoint);
    const sqsSetup = new SQSClient(setup);
    const ecsSetup = new ECSClient(setup);
    const aws = new Aws(moto);
    const mode = sp.containerEnv.WORKER_IDLE_EXIT === "0" ? "service" : sp.startFailureRuleArn ? "per-job" : "drain";

    // ---- the world, with the stack's own names (so ARNs equal the policies' ones)
    await aws.bucket(sp.bucket);
    const queueUrl = (await sqsSetup.send(new CreateQueueCommand({ QueueName: sp.queue.name }))).QueueUrl!;
    const dlqUrl = (await sqsSetup.send(new CreateQueueCommand({ QueueName: sp.dlq.name }))).QueueUrl!;
    const intakeUrl = (await sqsSetup.send(new CreateQueueCommand({ QueueName: sp.intake.name }))).QueueUrl!;
    if (sp.stateTable) {
        await new DynamoDBClient({ ...setup, maxAttempts: 3 }).send(
            new CreateTableCommand({ TableName: sp.stateTable.name, BillingMode: "PAY_PER_REQUEST", KeySchema: [{ AttributeName: "id", KeyType: "HASH" }], AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }] }),
        );
    }
    const clusterArn = (await ecsSetup.send(new CreateClusterCommand({ clusterName: sp.cluster.name }))).cluster!.clusterArn!;
    const td = (
        await ecsSetup.send(
            new RegisterTaskDefinitionCommand({
                family: sp.taskDefinitionFamily,
                requiresCompatibilities: ["FARGATE"],
                networkMode: "awsvpc",
                cpu: "1024",
                memory: "2048",
                taskRoleArn: sp.roles.task.arn,
                executionRoleArn: sp.roles.execution.arn,
                containerDefinitions: [{ name: sp.containerName, image: sp.imageUri, memory: 2048, essential: true }],
                ...(sp.taskDefinitionTagged ? { tags: [{ key: "iam-test", value: "1" }] } : {}),
            }),
        )
    ).taskDefinition!.taskDefinitionArn!;
    if (clusterArn !== sp.cluster.arn || td !== sp.taskDefinitionArn) {
        throw new Error(`moto's ARNs differ from the stack's: ${clusterArn} vs ${sp.cluster.arn}, ${td} vs ${sp.taskDefinitionArn}`);
    }
    if (mode === "service") {
        if (!sp.service) throw new Error("service mode without the launcher's SERVICE_NAME");
        const created = (
            await ecsSetup.send(new CreateServiceCommand({ cluster: sp.cluster.arn, serviceName: sp.service.name, taskDefinition: td, desiredCount: 0, launchType: "FARGATE" }))
        ).service!;
        if (created.serviceArn !== sp.service.arn) throw new Error(`moto's service ARN differs from the stack's: ${created.serviceArn} vs ${sp.service.arn}`);
    }
    const subnetId = /<subnetId>([^<]+)</.exec(await ec2Query(moto.endpoint, "DescribeSubnets"))?.[1] ?? "";
    const securityGroupId = /<groupId>([^<]+)</.exec(await ec2Query(moto.endpoint, "DescribeSecurityGroups"))?.[1] ?? "";

    const inputPrefix = sp.containerEnv.INPUT_PREFIX ?? "";
    const outputPrefix = sp.containerEnv.OUTPUT_PREFIX ?? "";
    const key = (n: string) => `${inputPrefix}scenes/${n}.zip`;
    const outBase = (n: string) => `${outputPrefix === "" ? inputPrefix : outputPrefix}scenes/${n}`;
    await aws.put(sp.bucket, key("good"), await tinyJobZip("good"));
    await aws.put(sp.bucket, key("bad"), await makeZip([{ name: "readme.txt", data: "no scene here" }]));
    // A render of several seconds: the worker is stopped while it runs.
    await aws.put(sp.bucket, key("stopped"), await makeZip([{ name: "stopped.pov", data: scene("slow.pov") }]));
    await aws.put(sp.bucket, `${outBase("good")}.error.json`, "{}");
    await rec.clear();

    // ---- the launcher, as packaged
    const fn = one(sp.resources, "aws:lambda/function:Function", `${sp.name}-launcher`);
    const { indexJs } = await launcherArchive(sp.resources);
    const module = writeLauncherModule(indexJs);
    const launcherEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries(fn.inputs.environment?.variables ?? {})) launcherEnv[k] = String(v);
    Object.assign(launcherEnv, {
        [LAUNCHER_ENV.queueUrl]: queueUrl,
        [LAUNCHER_ENV.deadLetterQueueUrl]: dlqUrl,
        [LAUNCHER_ENV.subnets]: subnetId,
        [LAUNCHER_ENV.securityGroups]: securityGroupId,
        [LAUNCHER_ENV.capacityProviderStrategy]: "[]",
        ...moto.env,
        AWS_ACCESS_KEY_ID: ACCESS_KEYS.launcher,
    });
    const invocations: Invocation[] = [];
    const invoke = async (event: unknown, over: Record<string, string> = {}) =>
        invocations.push(await invokeInFreshNode(module, { ...launcherEnv, ...over }, event));
    // The intake's event source mapping, with the launcher's role: receive the upload's notification, invoke, delete.
    const sqsLauncher = new SQSClient({ ...roleClientConfig(moto, ACCESS_KEYS.launcher), maxAttempts: 3 });
    const deliver = async (notification: unknown, over: Record<string, string> = {}, priorReceives = 0) => {
        await sqsSetup.send(new SendMessageCommand({ QueueUrl: intakeUrl, MessageBody: JSON.stringify(notification) }));
        for (let i = 0; i < priorReceives; i++) await sqsSetup.send(new ReceiveMessageCommand({ QueueUrl: intakeUrl, VisibilityTimeout: 0 }));
        const got = (await sqsLauncher.send(new ReceiveMessageCommand({ QueueUrl: intakeUrl, MaxNumberOfMessages: 10, AttributeNames: ["All"] }))).Messages ?? [];
        const records = got.map((m) => sqsRecord(m, sp.intake.arn, "us-east-1")) as { messageId: string; receiptHandle: string }[];
        const inv = await invokeInFreshNode(module, { ...launcherEnv, ...over }, { Records: records });
        invocations.push(inv);
        const done = new Set(handledIds(records, inv.error === undefined ? { ok: true, result: inv.result } : { ok: false, error: inv.error }, true));
        const Entries = records.filter((r) => done.has(r.messageId)).map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle }));
        if (Entries.length > 0) await sqsLauncher.send(new DeleteMessageBatchCommand({ QueueUrl: intakeUrl, Entries }));
    };
    const tick = { version: "0", "detail-type": "Scheduled Event", source: "aws.events", account: "123456789012", region: "us-east-1", resources: [], detail: {} };

    // ---- the worker, as the task definition configures it
    const workerCfg = roleClientConfig(moto, ACCESS_KEYS.task);
    const s3 = new S3Client({ ...workerCfg, forcePathStyle: true, maxAttempts: 3 });
    const sqs = new SQSClient({ ...workerCfg, maxAttempts: 3 });
    const eventBridge = new EventBridgeClient({ ...workerCfg, maxAttempts: 3 });
    const taskArn = `${sp.cluster.arn.replace(":cluster/", ":task/")}/0123456789abcdef0123456789abcdef`;
    const agent = mode === "service" ? await agentStandIn(taskArn) : undefined;
    const workerLogs: ScenarioRun["workerLogs"] = [];
    const runWorker = async (extra: Record<string, string>, stopOn?: string, over: { processor?: Processor; s3?: S3Client } = {}) => {
        const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "iam-worker-"));
        const env = {
            ...sp.containerEnv,
            QUEUE_URL: queueUrl,
            DLQ_URL: dlqUrl,
            WORKER_SCRATCH_DIR: scratch,
            WORKER_WAIT_SECONDS: "1",
            WORKER_IDLE_EXIT: "1",
            ...(agent ? { ECS_AGENT_URI: agent.uri } : {}),
            ...extra,
        };
        try {
            const { logs } = await runWorkerInProcess(env, {
                s3: over.s3 ?? s3,
                sqs,
                processor: over.processor ?? new PovrayProcessor({ threads: 1 }),
                eventBridge,
                onLog: (line, worker) => {
                    if (stopOn !== undefined && line.event === "scene" && String(line.key).endsWith(stopOn)) setTimeout(() => worker.stop("SIGTERM"), 1500);
                },
            });
            workerLogs.push(...logs);
        } finally {
            fs.rmSync(scratch, { recursive: true, force: true });
        }
    };

    try {
        const event = JSON.parse(s3Event(sp.bucket, [key("good"), key("bad")]));
        if (mode === "per-job") {
            await deliver(event); // one RunTask per job, the job in the container's environment
            await runWorker({ JOB_BUCKET: sp.bucket, JOB_KEY: key("good") });
            await runWorker({ JOB_BUCKET: sp.bucket, JOB_KEY: key("bad") });
            await runWorker({ JOB_BUCKET: sp.bucket, JOB_KEY: key("stopped") }, "stopped.zip");
            await runWorker({ JOB_BUCKET: sp.bucket, JOB_KEY: key("deleted") }); // never uploaded: deleted, nothing to do
            // A task ECS cannot start: the job goes to the DLQ with the reason. moto answers RunTask with the
            // component's own capacityProviderStrategy with HTTP 500 (its bug, here our failure after the retries).
            const strategy = String(fn.inputs.environment.variables[LAUNCHER_ENV.capacityProviderStrategy]);
            await deliver(JSON.parse(s3Event(sp.bucket, [key("stopped")])), { [LAUNCHER_ENV.capacityProviderStrategy]: strategy });
        } else {
            await deliver(event); // queue both jobs (drain: coordinate, count the cluster's tasks, read the backlog, start tasks)
            await runWorker({}); // good renders, bad fails for good
            if (mode === "drain") await invoke(tick); // the reconcile: the same decision, behind the same gate
            await aws.send(queueUrl, { bucket: sp.bucket, key: key("deleted") });
            await runWorker({}); // never uploaded: deleted, its message deleted
            await aws.send(queueUrl, { bucket: sp.bucket, key: key("stopped") });
            await runWorker({ WORKER_VISIBILITY_TIMEOUT: "3" }, "stopped.zip"); // stopped mid-render: heartbeats, then re-sent
            // An intake record on its last allowed receive whose job the work queue refuses: dead-lettered by the launcher.
            await sqsSetup.send(new SetQueueAttributesCommand({ QueueUrl: queueUrl, Attributes: { MaximumMessageSize: "1024" } }));
            const maxReceives = Number(launcherEnv[LAUNCHER_ENV.intakeMaxReceives]);
            await deliver(JSON.parse(s3Event(sp.bucket, [`${inputPrefix}scenes/${"x".repeat(1000)}.zip`])), {}, maxReceives - 1);
        }
        if (opts.multipart !== false) {
            // Outputs over one part: `big` is a multipart upload (Create, UploadPart, Complete), `bigfail` fails at its
            // second part (a 400 injected in the client) and is aborted (AbortMultipartUpload), then dead-lettered.
            const multipart = { processor: bigOutputProcessor(), s3: failingSecondPart(s3, "bigfail") };
            await aws.put(sp.bucket, key("big"), await tinyJobZip("big"));
            await aws.put(sp.bucket, key("bigfail"), await tinyJobZip("bigfail"));
            if (mode === "per-job") {
                await runWorker({ JOB_BUCKET: sp.bucket, JOB_KEY: key("big") }, undefined, multipart);
                await runWorker({ JOB_BUCKET: sp.bucket, JOB_KEY: key("bigfail") }, undefined, multipart);
            } else {
                await aws.send(queueUrl, { bucket: sp.bucket, key: key("big") });
                await aws.send(queueUrl, { bucket: sp.bucket, key: key("bigfail") });
                await runWorker({}, undefined, multipart);
            }
        }
        // Lambda's on-failure event of a launcher invocation that failed for good, as the launcher-failure-events
        // rule hands it over: the launcher publishes Job Failed for its jobs.
        const record = onFailureRecord(JSON.parse(s3Event(sp.bucket, [key("good")])), "launcher failed (iam test)", 3, `arn:aws:lambda:us-east-1:123456789012:function:${fn.inputs.name ?? `${fn.name}-0000000`}:$LATEST`);
        await invoke({
            version: "0",
            id: "0d4c7a4e-0000-4000-8000-000000000000",
            "detail-type": "Lambda Function Invocation Result - Failure",
            source: "lambda",
            account: "123456789012",
            time: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
            region: "us-east-1",
            resources: [record.requestContext.functionArn],
            detail: record,
        });
    } finally {
        fs.rmSync(path.dirname(module), { recursive: true, force: true });
        await agent?.close();
    }
    const agentPuts = (agent?.requests ?? []).map((r) => JSON.parse(r.body));
    for (const r of agent?.requests ?? []) {
        if (r.method !== "PUT" || !/^\/api\/[^/]+\/task-protection\/v1\/state$/.test(r.url)) throw new Error(`the worker called the agent at ${r.method} ${r.url}`);
    }
    const agentCalls = (agent?.requests ?? []).map((r) => ({ ...agentTaskProtectionCall(r.body, sp.cluster.arn, taskArn), accessKeyId: ACCESS_KEYS.task }));
    return { ...(await attributed(rec)), agent: agentCalls, agentPuts, invocations, workerLogs };
}
