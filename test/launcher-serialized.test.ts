/**
 * The decisive launcher test: the exact code Pulumi packages for the component's launcher Lambda (its `__index.js`,
 * taken from the mocks' recorded `aws:lambda/function:Function`), run in a fresh Node process against moto_server,
 * with REAL S3 notification events produced by moto (bucket → SQS notification).
 *
 * Work-arounds for moto 5.2.1, in this test only (never in the launcher):
 *  - RunTask with a `capacityProviderStrategy` answers HTTP 500 (even for FARGATE), so the component's
 *    CAPACITY_PROVIDER_STRATEGY is replaced with "[]" (the launcher then sends launchType FARGATE); the strategy path
 *    is covered against SDK mocks in launcher.test.ts.
 *  - moto runs no containers: started tasks stay RUNNING. moto's DescribeClusters counts no Fargate task (running and
 *    pending 0), so the "≤ MAX_TASKS across invocations" checks rest on the launcher's ledger of recent starts (what
 *    counts a task on AWS until ECS's counts show it). ListTasks' `startedBy` filter does work in moto 5.2.1 (the test
 *    counts the launcher's tasks with it; checked below against a foreign task).
 *  - moto URL-encodes "/" in event keys ("inbox%2Fa.zip"); S3 leaves it as is. Both decode the same.
 */
import "../harness/mocks";

import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";

import { RunTaskCommand } from "@aws-sdk/client-ecs";
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { HeadObjectCommand } from "@aws-sdk/client-s3";

import { sqsRecord } from "../cli/local/intake";
import { parseLauncherSettings } from "../functions/launcher";
import { LAUNCHER_ENV } from "../functions/launcher-settings";
import { createLauncherWorld, drainQueue, LauncherWorld, tasksStartedBy, upload } from "./helpers/launcher-moto";
import { buildLauncherPackage, invokeInFreshNode, LauncherPackage, writeLauncherModule } from "../harness/launcher-package";
import { Moto, startMoto } from "../harness/moto";

const COMPONENT_ARGS = { inputPrefix: "inbox/", inputSuffixes: [".zip", ".pov"], maxTasks: 10 };

/** The component's launcher environment, with the AWS resources swapped for the moto ones. */
function launcherEnv(pkg: LauncherPackage, w: LauncherWorld, moto: Moto, over: Record<string, string> = {}): Record<string, string> {
    return {
        ...pkg.env,
        [LAUNCHER_ENV.queueUrl]: w.workQueueUrl,
        [LAUNCHER_ENV.deadLetterQueueUrl]: w.dlqUrl,
        [LAUNCHER_ENV.cluster]: w.clusterArn,
        [LAUNCHER_ENV.taskDefinition]: w.taskDefinitionArn,
        [LAUNCHER_ENV.subnets]: w.subnetId,
        [LAUNCHER_ENV.securityGroups]: w.securityGroupId,
        [LAUNCHER_ENV.capacityProviderStrategy]: "[]",
        [LAUNCHER_ENV.stateTable]: w.stateTable,
        ...moto.env,
        ...over,
    };
}

/** One event holding every S3 record of these real notification bodies (S3 may batch records; the launcher handles all). */
function mergedEvent(bodies: string[]): { Records: unknown[] } {
    return { Records: bodies.flatMap((b) => JSON.parse(b).Records ?? []) };
}

function keysOf(bodies: string[]): string[] {
    return bodies.map((b) => JSON.parse(b).key).sort();
}

describe("launcher: the serialized package against moto", function () {
    let moto: Moto;
    let drain: LauncherPackage;
    let drainModule: string;

    before(async () => {
        drain = await buildLauncherPackage("render", COMPONENT_ARGS);
        drainModule = writeLauncherModule(drain.indexJs);
        moto = await startMoto();
    });
    after(async () => {
        await moto?.stop();
        if (drainModule) fs.rmSync(path.dirname(drainModule), { recursive: true, force: true });
    });

    it("is a single __index.js (no node_modules) exporting handler, with settings the launcher accepts", () => {
        expect(drain.paths).to.deep.equal(["__index.js"]);
        expect(drain.handler).to.equal("__index.handler");
        expect(drain.indexJs).to.match(/exports\.handler = /);
        expect(drain.indexJs).to.match(/require\("@aws-sdk\/client-sqs"\)/);
        expect(drain.indexJs).to.match(/require\("@aws-sdk\/client-ecs"\)/);
        expect(drain.indexJs).not.to.match(/@pulumi\//);
        // Every variable of the contract is set (but the service mode's wake and the Spot fallback, set only where
        // they apply), and the component's values parse.
        const modeSpecific: string[] = [LAUNCHER_ENV.serviceName, LAUNCHER_ENV.backlogPerTask, LAUNCHER_ENV.spotFallback];
        expect(Object.keys(drain.env)).to.include.members(Object.values(LAUNCHER_ENV).filter((v) => !modeSpecific.includes(v)));
        for (const v of modeSpecific) expect(drain.env, v).not.to.have.property(v);
        const s = parseLauncherSettings(drain.env);
        expect(s).to.include({ mode: "drain", maxTasks: 10, inputPrefix: "inbox/" });
        expect(s.inputSuffixes).to.deep.equal([".zip", ".pov"]);
        expect(s.startedBy.length).to.be.within(1, 36);
    });

    it("drain: queues decoded keys from real S3 events, ignores the rest, starts Fargate tasks with the right settings", async () => {
        const w = await createLauncherWorld(moto, "drain", drain.env[LAUNCHER_ENV.containerName]);
        const startedBy = drain.env[LAUNCHER_ENV.startedBy];
        const env = launcherEnv(drain, w, moto);

        // The notification configuration itself produced the s3:TestEvent.
        const testEvents = await drainQueue(w.sqs, w.eventsQueueUrl);
        expect(testEvents).to.have.length(1);
        const testEvent = await invokeInFreshNode(drainModule, env, JSON.parse(testEvents[0]));
        expect(testEvent.error).to.equal(undefined);
        expect(testEvent.result).to.include({ accepted: 0, ignored: 1, queued: 0, tasksStarted: 0 });
        expect(testEvent.logs.find((l) => l.msg === "ignored")).to.include({ reason: "s3:TestEvent" });

        const jobs = ["inbox/my scene.zip", "inbox/café ünï 日本.zip", "inbox/a+b.zip", "inbox/100% done.POV", "inbox/deep/dir/Upper.ZIP"];
        const others = ["inbox/notes.txt", "inbox/x.png", "inbox/x.log", "inbox/x.error.json", "outside/y.zip", "inbox/"];
        await upload(w, [...jobs, ...others]);
        const bodies = await drainQueue(w.sqs, w.eventsQueueUrl);
        expect(bodies).to.have.length(jobs.length + others.length);
        // Real, encoded keys: the launcher must decode them.
        expect(bodies.map((b) => JSON.parse(b).Records[0].s3.object.key)).to.include("inbox%2Fa%2Bb.zip");

        // A foreign task in the same cluster: must not count as ours (and proves moto's startedBy filter works).
        await w.ecs.send(
            new RunTaskCommand({
                cluster: w.clusterArn,
                taskDefinition: w.taskDefinitionArn,
                startedBy: "someone-else",
                launchType: "FARGATE",
                networkConfiguration: { awsvpcConfiguration: { subnets: [w.subnetId], securityGroups: [w.securityGroupId] } },
            }),
        );
        expect(await tasksStartedBy(w, "someone-else")).to.have.length(1);
        expect(await tasksStartedBy(w, startedBy)).to.have.length(0);

        const inv = await invokeInFreshNode(drainModule, env, mergedEvent(bodies));
        expect(inv.error, inv.stderr).to.equal(undefined);
        expect(inv.result).to.include({ mode: "drain", accepted: jobs.length, ignored: others.length, queued: jobs.length, tasksStarted: jobs.length });
        expect(inv.logs.filter((l) => l.msg === "ignored").map((l) => [l.key, l.reason])).to.have.deep.members([
            ["inbox/notes.txt", "suffix not accepted"],
            ["inbox/x.png", "worker output"],
            ["inbox/x.log", "worker output"],
            ["inbox/x.error.json", "worker output"],
            ["outside/y.zip", "outside the input prefix"],
            ["inbox/", "not an object key"],
        ]);
        for (const line of inv.logs) expect(line).to.have.property("msg").that.is.a("string");

        const queued = await drainQueue(w.sqs, w.workQueueUrl);
        expect(keysOf(queued)).to.deep.equal([...jobs].sort());
        const first = JSON.parse(queued.find((b) => JSON.parse(b).key === "inbox/my scene.zip")!);
        expect(first).to.have.keys(["bucket", "key", "size", "etag", "eventTime"]);
        expect(first).to.include({ bucket: w.bucket, size: Buffer.byteLength("scene inbox/my scene.zip") });

        const tasks = await tasksStartedBy(w, startedBy);
        expect(tasks).to.have.length(jobs.length);
        for (const t of tasks) {
            expect(t).to.include({ startedBy, launchType: "FARGATE", taskDefinitionArn: w.taskDefinitionArn, clusterArn: w.clusterArn });
            const subnet = t.attachments?.[0]?.details?.find((d) => d.name === "subnetId")?.value;
            expect(subnet).to.equal(w.subnetId);
            expect(t.overrides?.containerOverrides ?? []).to.deep.equal([]);
        }
    });

    it("drain: a burst of 100 real records with MAX_TASKS 10 starts between 1 and 10 tasks, across invocations too", async () => {
        const w = await createLauncherWorld(moto, "burst", drain.env[LAUNCHER_ENV.containerName]);
        const startedBy = drain.env[LAUNCHER_ENV.startedBy];
        const env = launcherEnv(drain, w, moto);
        await drainQueue(w.sqs, w.eventsQueueUrl); // the s3:TestEvent

        const keys = Array.from({ length: 100 }, (_, i) => `inbox/burst/scene ${i}.zip`);
        await upload(w, keys);
        const bodies = await drainQueue(w.sqs, w.eventsQueueUrl);
        expect(bodies).to.have.length(100);

        const inv = await invokeInFreshNode(drainModule, env, mergedEvent(bodies));
        expect(inv.error, inv.stderr).to.equal(undefined);
        expect(inv.result).to.include({ accepted: 100, queued: 100 });
        const afterFirst = (await tasksStartedBy(w, startedBy)).length;
        expect(afterFirst).to.be.within(1, 10);
        expect(inv.result.tasksStarted).to.equal(afterFirst);

        // More uploads while those tasks run: one invocation per real event, as S3 would do.
        await upload(w, ["inbox/late 1.zip", "inbox/late 2.zip"]);
        for (const body of await drainQueue(w.sqs, w.eventsQueueUrl)) {
            const again = await invokeInFreshNode(drainModule, env, JSON.parse(body));
            expect(again.error, again.stderr).to.equal(undefined);
            expect(again.result).to.include({ accepted: 1, queued: 1 });
        }
        const total = (await tasksStartedBy(w, startedBy)).length;
        expect(total).to.be.within(1, 10);
        const depth = await w.sqs.send(new GetQueueAttributesCommand({ QueueUrl: w.workQueueUrl, AttributeNames: ["ApproximateNumberOfMessages"] }));
        expect(Number(depth.Attributes!.ApproximateNumberOfMessages)).to.equal(102);
    });

    it("drain: an intake batch as the event source mapping delivers it (S3's real notifications in the intake): every job queued, none retried", async () => {
        const w = await createLauncherWorld(moto, "intake", drain.env[LAUNCHER_ENV.containerName]);
        const arn = (await w.sqs.send(new GetQueueAttributesCommand({ QueueUrl: w.eventsQueueUrl, AttributeNames: ["QueueArn"] }))).Attributes!.QueueArn!;
        await upload(w, ["inbox/one.zip", "inbox/two.zip", "inbox/three.zip"]);
        const messages = [];
        for (let got; (got = (await w.sqs.send(new ReceiveMessageCommand({ QueueUrl: w.eventsQueueUrl, MaxNumberOfMessages: 10, AttributeNames: ["All"] }))).Messages ?? []).length > 0; ) messages.push(...got);
        // S3's test event (from the notification configuration) and the three uploads, each its own record.
        expect(messages).to.have.length(4);
        const inv = await invokeInFreshNode(drainModule, launcherEnv(drain, w, moto), { Records: messages.map((m) => sqsRecord(m, arn, "us-east-1")) });
        expect(inv.error, inv.stderr).to.equal(undefined);
        expect(inv.result).to.deep.include({ accepted: 3, ignored: 1, queued: 3, tasksStarted: 3, batchItemFailures: [] });
        expect(keysOf(await drainQueue(w.sqs, w.workQueueUrl))).to.deep.equal(["inbox/one.zip", "inbox/three.zip", "inbox/two.zip"]);
    });

    it("drain: the scheduled reconcile event starts tasks for jobs left waiting, and queues nothing", async () => {
        const w = await createLauncherWorld(moto, "tick", drain.env[LAUNCHER_ENV.containerName]);
        const startedBy = drain.env[LAUNCHER_ENV.startedBy];
        for (const key of ["inbox/left 1.zip", "inbox/left 2.zip", "inbox/left 3.zip"]) {
            await w.sqs.send(new SendMessageCommand({ QueueUrl: w.workQueueUrl, MessageBody: JSON.stringify({ bucket: w.bucket, key }) }));
        }
        expect(await tasksStartedBy(w, startedBy)).to.have.length(0);
        // The event EventBridge sends for a schedule rule.
        const tick = {
            version: "0",
            id: "5e5d0a61-0000-0000-0000-000000000000",
            "detail-type": "Scheduled Event",
            source: "aws.events",
            account: "123456789012",
            time: "2026-11-23T05:00:00Z",
            region: "us-east-1",
            resources: ["arn:aws:events:us-east-1:123456789012:rule/render-reconcile"],
            detail: {},
        };
        const inv = await invokeInFreshNode(drainModule, launcherEnv(drain, w, moto), tick);
        expect(inv.error, inv.stderr).to.equal(undefined);
        expect(inv.result).to.include({ accepted: 0, ignored: 0, queued: 0, tasksStarted: 3 });
        expect(await tasksStartedBy(w, startedBy)).to.have.length(3);
        const depth = await w.sqs.send(new GetQueueAttributesCommand({ QueueUrl: w.workQueueUrl, AttributeNames: ["ApproximateNumberOfMessages"] }));
        expect(Number(depth.Attributes!.ApproximateNumberOfMessages)).to.equal(3);
    });

    describe("per-job mode (the component's per-job launcher)", () => {
        let perJob: LauncherPackage;
        let perJobModule: string;
        before(async () => {
            perJob = await buildLauncherPackage("render", { ...COMPONENT_ARGS, launchMode: "per-job" });
            perJobModule = writeLauncherModule(perJob.indexJs);
        });
        after(() => {
            if (perJobModule) fs.rmSync(path.dirname(perJobModule), { recursive: true, force: true });
        });

        it("starts one task per job with JOB_BUCKET/JOB_KEY/JOB_ETAG (the event's ETag) overrides and queues nothing", async () => {
            expect(perJob.env[LAUNCHER_ENV.launchMode]).to.equal("per-job");
            const container = perJob.env[LAUNCHER_ENV.containerName];
            const w = await createLauncherWorld(moto, "perjob", container);
            await drainQueue(w.sqs, w.eventsQueueUrl);
            const jobs = ["inbox/one scene.zip", "inbox/ünï+code.pov"];
            await upload(w, [...jobs, "inbox/one scene.png"]);
            const inv = await invokeInFreshNode(perJobModule, launcherEnv(perJob, w, moto), mergedEvent(await drainQueue(w.sqs, w.eventsQueueUrl)));
            expect(inv.error, inv.stderr).to.equal(undefined);
            expect(inv.result).to.include({ mode: "per-job", accepted: 2, ignored: 1, queued: 0, tasksStarted: 2, deadLettered: 0 });

            expect(await drainQueue(w.sqs, w.workQueueUrl)).to.deep.equal([]);
            const tasks = await tasksStartedBy(w, perJob.env[LAUNCHER_ENV.startedBy]);
            const envs = tasks.map((t) => {
                expect(t.overrides?.containerOverrides).to.have.length(1);
                expect(t.overrides!.containerOverrides![0].name).to.equal(container);
                return t.overrides!.containerOverrides![0].environment;
            });
            const etag = async (key: string) => (await w.s3.send(new HeadObjectCommand({ Bucket: w.bucket, Key: key }))).ETag!.replace(/"/g, "");
            expect(envs).to.have.deep.members(
                await Promise.all(
                    jobs.map(async (key) => [
                        { name: "JOB_BUCKET", value: w.bucket },
                        { name: "JOB_KEY", value: key },
                        { name: "JOB_ETAG", value: await etag(key) },
                    ]),
                ),
            );
        });

        it("sends a job whose task cannot start to the dead-letter queue with the reason (no Lambda retry needed)", async () => {
            const w = await createLauncherWorld(moto, "perjobfail", perJob.env[LAUNCHER_ENV.containerName]);
            await drainQueue(w.sqs, w.eventsQueueUrl);
            await upload(w, ["inbox/doomed job.zip"]);
            const env = launcherEnv(perJob, w, moto, { [LAUNCHER_ENV.taskDefinition]: `${w.taskDefinitionArn.replace(/:\d+$/, "")}-missing:1` });
            const inv = await invokeInFreshNode(perJobModule, env, mergedEvent(await drainQueue(w.sqs, w.eventsQueueUrl)));
            expect(inv.error, inv.stderr).to.equal(undefined);
            expect(inv.result).to.include({ accepted: 1, tasksStarted: 0, notStarted: 1, deadLettered: 1 });
            const dead = (await drainQueue(w.sqs, w.dlqUrl)).map((b) => JSON.parse(b));
            expect(dead).to.have.length(1);
            expect(dead[0]).to.include({ bucket: w.bucket, key: "inbox/doomed job.zip" });
            expect(dead[0].reason).to.match(/task could not be started/);
            expect(await drainQueue(w.sqs, w.workQueueUrl)).to.deep.equal([]);
        });
    });
});
