/**
 * The component's job-event routing against moto's EventBridge, as declared under the mocks: the rules' event
 * patterns and their targets' input transformers are applied to the emulator unchanged, then events shaped like
 * AWS's (ECS's "ECS Task State Change", Lambda's on-failure destination event) are put on the default bus, and the
 * SQS queue standing for each target must receive exactly what the declared transformer makes of them.
 *
 * Where moto differs from AWS: moto does not emit ECS or Lambda events itself (we put them, in AWS's documented
 * shape, with PutEvents); it can't invoke a Lambda target, so an SQS queue stands in for the launcher target and
 * receives the event as EventBridge would hand it to the function; and its input transformer inserts a string
 * variable without the quotes AWS adds, so the start-failure DLQ target's template is checked against AWS's
 * documented behaviour in test/component.test.ts, and here only the rule's match (a target without transformer).
 */
import { buildWorker, one } from "../harness/stack";

import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { EventBridgeClient, PutEventsCommand, PutRuleCommand, PutTargetsCommand } from "@aws-sdk/client-eventbridge";
import { expect } from "chai";

import { RecordedResource } from "../harness/mocks";
import { Moto, motoClientConfig, startMoto } from "../harness/moto";
import { onFailureRecord, scheduledEvent } from "../cli/local/events";
import { jobEventPattern } from "../cli/local/job-events";
import { createHandler, launchStep, parseLauncherSettings } from "../functions/launcher";
import { Aws, makeZip, runWorkerInProcess, s3Event, scene, tinyJobZip, useMotoEnv, workerEnv } from "../harness/worker-env";

const RULE = "aws:cloudwatch/eventRule:EventRule";
const TARGET = "aws:cloudwatch/eventTarget:EventTarget";

describe("job-event routing against moto's EventBridge", function () {
    this.timeout(120000);
    let moto: Moto;
    let sqs: SQSClient;
    let events: EventBridgeClient;
    let perJob: RecordedResource[];
    let n = 0;

    before(async () => {
        ({ resources: perJob } = await buildWorker("job", { image: { context: "./worker-image" }, launchMode: "per-job" }));
        moto = await startMoto();
        sqs = new SQSClient(motoClientConfig(moto.endpoint));
        events = new EventBridgeClient(motoClientConfig(moto.endpoint));
    });
    after(async () => {
        await moto?.stop();
    });

    /** A fresh queue standing for one target; its ARN. */
    async function queue(): Promise<{ url: string; arn: string }> {
        const url = (await sqs.send(new CreateQueueCommand({ QueueName: `target-${++n}` }))).QueueUrl!;
        const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }))).Attributes!.QueueArn!;
        return { url, arn };
    }

    /** The declared rule (pattern as declared) with the declared target's transformer, its target a fresh queue. */
    async function applyRule(rule: string, target: string, transform = true): Promise<string> {
        const declared = one(perJob, RULE, rule).inputs;
        const t = one(perJob, TARGET, target).inputs;
        const q = await queue();
        const Name = `${rule}-${n}`;
        await events.send(new PutRuleCommand({ Name, EventPattern: declared.eventPattern, EventBusName: declared.eventBusName ?? "default" }));
        const it = transform ? t.inputTransformer : undefined;
        await events.send(
            new PutTargetsCommand({
                Rule: Name,
                EventBusName: declared.eventBusName ?? "default",
                Targets: [{ Id: "t", Arn: q.arn, ...(it ? { InputTransformer: { InputPathsMap: it.inputPaths, InputTemplate: it.inputTemplate } } : {}) }],
            }),
        );
        return q.url;
    }

    async function put(source: string, detailType: string, detail: object): Promise<void> {
        const out = await events.send(new PutEventsCommand({ Entries: [{ Source: source, DetailType: detailType, Detail: JSON.stringify(detail) }] }));
        expect(out.FailedEntryCount ?? 0, JSON.stringify(out.Entries)).to.equal(0);
    }

    async function bodies(url: string): Promise<any[]> {
        const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
        return (r.Messages ?? []).map((m) => JSON.parse(m.Body!));
    }

    /** ECS's "ECS Task State Change" of a per-job task that failed to start (the fields the rule and transformer read). */
    function taskFailedToStart(over: Record<string, unknown> = {}) {
        return {
            clusterArn: "arn:aws:ecs:us-east-1:123456789012:cluster/job-cluster",
            taskArn: "arn:aws:ecs:us-east-1:123456789012:task/job-cluster/abc",
            startedBy: "lew-job",
            lastStatus: "STOPPED",
            stopCode: "TaskFailedToStart",
            stoppedReason: "CannotPullContainerError: pull access denied",
            overrides: {
                containerOverrides: [
                    { name: "worker", environment: [{ name: "JOB_BUCKET", value: "job-bucket" }, { name: "JOB_KEY", value: "in/scene one.zip" }] },
                ],
            },
            ...over,
        };
    }

    it("GIVEN a per-job task that failed to start THEN the rule matches it: the DLQ target and the launcher get the event", async () => {
        const dlq = await applyRule("job-start-failures", "job-start-failures-target", false);
        const launcher = await applyRule("job-start-failures", "job-start-failures-launcher-target");
        await put("aws.ecs", "ECS Task State Change", taskFailedToStart());
        expect((await bodies(dlq)).map((e) => e.detail)).to.deep.equal([taskFailedToStart()]);
        const [routed, ...more] = await bodies(launcher);
        expect(more).to.have.length(0);
        expect(routed).to.include({ source: "aws.ecs", "detail-type": "ECS Task State Change" });
        expect(routed.detail).to.deep.equal(taskFailedToStart());
    });

    it("GIVEN other ECS events (another cluster, another worker, a task that ran, a stop for another reason) THEN neither target gets anything", async () => {
        const dlq = await applyRule("job-start-failures", "job-start-failures-target", false);
        await put("aws.ecs", "ECS Task State Change", taskFailedToStart({ clusterArn: "arn:aws:ecs:us-east-1:123456789012:cluster/other" }));
        await put("aws.ecs", "ECS Task State Change", taskFailedToStart({ startedBy: "lew-other" }));
        await put("aws.ecs", "ECS Task State Change", taskFailedToStart({ lastStatus: "RUNNING" }));
        await put("aws.ecs", "ECS Task State Change", taskFailedToStart({ stopCode: "EssentialContainerExited" }));
        expect(await bodies(dlq)).to.deep.equal([]);
    });

    const FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:job-launcher-0000000";
    const s3Event = { Records: [{ eventSource: "aws:s3", eventName: "ObjectCreated:Put", s3: { bucket: { name: "job-bucket" }, object: { key: "in/a.zip" } } }] };

    it("GIVEN a launcher invocation that failed for good THEN the DLQ gets Lambda's invocation record itself, and the launcher the event", async () => {
        const dlq = await applyRule("job-launcher-failures", "job-launcher-failures-target");
        const launcher = await applyRule("job-launcher-failure-events", "job-launcher-failure-events-launcher-target");
        // Lambda's record names the function with its qualifier.
        const record = onFailureRecord(s3Event, "1 job(s) neither started nor dead-lettered", 3, `${FUNCTION}:$LATEST`);
        await put("lambda", "Lambda Function Invocation Result - Failure", record);
        expect(await bodies(dlq)).to.deep.equal([record]);
        const [routed, ...more] = await bodies(launcher);
        expect(more).to.have.length(0);
        expect(routed).to.include({ source: "lambda", "detail-type": "Lambda Function Invocation Result - Failure" });
        expect(routed.detail).to.deep.equal(record);
    });

    it("GIVEN a failed invocation that was no S3 notification (a reconcile tick, a routed event) THEN only the DLQ gets it: the launcher never loops on its own failures", async () => {
        const dlq = await applyRule("job-launcher-failures", "job-launcher-failures-target");
        const launcher = await applyRule("job-launcher-failure-events", "job-launcher-failure-events-launcher-target");
        const tick = onFailureRecord(scheduledEvent("job-reconcile", "us-east-1"), "boom", 3, FUNCTION);
        const nested = onFailureRecord({ source: "lambda", detail: onFailureRecord(s3Event, "x", 3, FUNCTION) }, "again", 3, FUNCTION);
        await put("lambda", "Lambda Function Invocation Result - Failure", tick);
        await put("lambda", "Lambda Function Invocation Result - Failure", nested);
        expect(await bodies(dlq)).to.have.deep.members([tick, nested]);
        expect(await bodies(launcher)).to.deep.equal([]);
    });

    it("GIVEN another function's failure THEN nothing is routed", async () => {
        const dlq = await applyRule("job-launcher-failures", "job-launcher-failures-target");
        await put("lambda", "Lambda Function Invocation Result - Failure", onFailureRecord(s3Event, "x", 3, `${FUNCTION}-other`));
        await put("lambda", "Lambda Function Invocation Result - Failure", onFailureRecord(s3Event, "x", 3, `${FUNCTION}2:$LATEST`));
        expect(await bodies(dlq)).to.deep.equal([]);
    });
});

/**
 * The worker's and the launcher's events reach a user's rule (on the worker's source and the two detail-types) with
 * the documented detail: success, permanent failure, dead-lettered after retries, per-job start failure and a
 * dead-lettered launcher invocation. The worker runs in-process and the launcher's handler is built from the
 * component's environment contract, both against moto (which accepts PutEvents and routes to SQS as EventBridge does).
 */
describe("job events reach a user's rule with the documented detail (worker and launcher against moto)", function () {
    this.timeout(180000);
    const SOURCE = "lambda-ecs-worker.render";
    const WORKER_EVENT_ENV = { EVENT_BUS_NAME: "default", EVENT_SOURCE: SOURCE, WORKER_NAME: "render" };
    let moto: Moto;
    let aws: Aws;
    let events: EventBridgeClient;
    let restoreEnv: () => void;
    let rulesQueue: string;
    let n = 0;

    before(async () => {
        moto = await startMoto();
        restoreEnv = useMotoEnv(moto);
        // The worker reads its event settings from process.env (runWorkerInProcess passes only its config).
        Object.assign(process.env, WORKER_EVENT_ENV);
        aws = new Aws(moto);
        events = new EventBridgeClient(motoClientConfig(moto.endpoint));
        const q = await aws.queue("user-job-events");
        rulesQueue = q.url;
        await events.send(new PutRuleCommand({ Name: "user-rule", EventPattern: JSON.stringify(jobEventPattern(SOURCE)) }));
        await events.send(new PutTargetsCommand({ Rule: "user-rule", Targets: [{ Id: "q", Arn: q.arn }] }));
    });
    after(async () => {
        for (const k of Object.keys(WORKER_EVENT_ENV)) delete process.env[k];
        restoreEnv?.();
        await moto?.stop();
    });

    /** The events that reached the user's queue since the last call. */
    async function received(): Promise<any[]> {
        return (await aws.drain(rulesQueue)).map((m) => JSON.parse(m.Body!));
    }

    async function setup(maxReceiveCount = 3, visibility = 30) {
        const bucket = await aws.bucket(`events-${++n}`);
        const { queueUrl, dlqUrl } = await aws.queues(`events-${n}`, maxReceiveCount, visibility);
        const env = (extra: Record<string, string> = {}) =>
            workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl, ...WORKER_EVENT_ENV, ...extra });
        return { bucket, queueUrl, dlqUrl, env };
    }

    it("GIVEN a job that renders THEN one Job Succeeded with its outputs, seconds and attempts", async () => {
        const { bucket, queueUrl, env } = await setup();
        await aws.put(bucket, "in/ok.zip", await tinyJobZip("ok"));
        await aws.send(queueUrl, s3Event(bucket, ["in/ok.zip"]));
        expect((await runWorkerInProcess(env())).code).to.equal(0);
        const [e, ...more] = await received();
        expect(more).to.have.length(0);
        expect(e).to.include({ source: SOURCE, "detail-type": "Job Succeeded" });
        expect(e.detail).to.include({ worker: "render", bucket, key: "in/ok.zip", attempts: 1 });
        expect([...e.detail.outputs].sort()).to.deep.equal(["in/ok.log", "in/ok.png"]);
        expect(e.detail.seconds).to.be.a("number").and.above(0);
        expect(e.detail).not.to.have.property("reason");
    });

    it("GIVEN a zip without a scene THEN one Job Failed, permanent, with the reason and the error report as its output", async () => {
        const { bucket, queueUrl, env } = await setup();
        await aws.put(bucket, "in/empty.zip", await makeZip([{ name: "readme.txt", data: "no scene" }]));
        await aws.send(queueUrl, s3Event(bucket, ["in/empty.zip"]));
        expect((await runWorkerInProcess(env())).code).to.equal(0);
        const [e, ...more] = await received();
        expect(more).to.have.length(0);
        expect(e).to.include({ source: SOURCE, "detail-type": "Job Failed" });
        expect(e.detail).to.include({ worker: "render", bucket, key: "in/empty.zip", attempts: 1, failureClass: "permanent" });
        expect(e.detail.reason).to.match(/no scene/);
        expect(e.detail.outputs).to.deep.equal(["in/empty.error.json"]);
    });

    it("GIVEN a job that times out on every delivery THEN no event for the retried attempt, one Job Failed when it is dead-lettered", async () => {
        const { bucket, queueUrl, env } = await setup(2, 30);
        await aws.put(bucket, "slow/forever.zip", await makeZip([{ name: "forever.pov", data: scene("forever.pov") }]));
        await aws.send(queueUrl, s3Event(bucket, ["slow/forever.zip"]));
        expect((await runWorkerInProcess(env({ JOB_TIMEOUT_SECONDS: "1", WORKER_MAX_RECEIVE_COUNT: "2" }))).code).to.equal(0);
        const [e, ...more] = await received();
        expect(more).to.have.length(0);
        expect(e["detail-type"]).to.equal("Job Failed");
        expect(e.detail).to.include({ key: "slow/forever.zip", attempts: 2, failureClass: "timeout" });
        expect(e.detail.reason).to.match(/timed out/);
    });

    /** The launcher's handler from the component's environment contract, its clients on moto (AWS_ENDPOINT_URL). */
    function launcher(extra: Record<string, string>) {
        return createHandler(
            parseLauncherSettings({
                LAUNCH_MODE: "per-job",
                DLQ_URL: "unused",
                CLUSTER: "arn:aws:ecs:us-east-1:123456789012:cluster/c",
                TASK_DEFINITION: "td",
                CONTAINER_NAME: "worker",
                SUBNETS: "subnet-1",
                STARTED_BY: "lew-render",
                EVENT_BUS_NAME: "default",
                EVENT_SOURCE: SOURCE,
                WORKER_NAME: "render",
                ...extra,
            }),
            undefined,
            // The per-job package's part, as perJobLauncherFactory serializes it (its routed ECS events among it).
            { log: () => undefined, baseDelayMs: 1, maxDelayMs: 2, step: launchStep("per-job") },
        );
    }

    it("GIVEN ECS's TaskFailedToStart of a per-job task routed to the launcher THEN one Job Failed, not-started, with ECS's reason", async () => {
        const event = {
            version: "0",
            source: "aws.ecs",
            "detail-type": "ECS Task State Change",
            detail: {
                clusterArn: "arn:aws:ecs:us-east-1:123456789012:cluster/c",
                taskArn: "arn:aws:ecs:us-east-1:123456789012:task/c/abc",
                startedBy: "lew-render",
                lastStatus: "STOPPED",
                stopCode: "TaskFailedToStart",
                stoppedReason: "CannotPullContainerError: pull access denied",
                overrides: { containerOverrides: [{ name: "worker", environment: [{ name: "JOB_BUCKET", value: "b" }, { name: "JOB_KEY", value: "in/x.zip" }] }] },
            },
        };
        await launcher({})(event);
        const [e, ...more] = await received();
        expect(more).to.have.length(0);
        expect(e).to.include({ source: SOURCE, "detail-type": "Job Failed" });
        expect(e.detail).to.include({ worker: "render", bucket: "b", key: "in/x.zip", attempts: 1, failureClass: "not-started" });
        expect(e.detail.reason).to.match(/CannotPullContainerError: pull access denied/);
    });

    it("GIVEN Lambda's failure event of a dead-lettered launcher invocation THEN one Job Failed per job of it, class launcher", async () => {
        const s3 = JSON.parse(s3Event("b", ["in/one.zip", "in/two two.zip"]));
        const record = onFailureRecord(s3, "2 message(s) not sent", 3, "arn:aws:lambda:us-east-1:123456789012:function:render-launcher:$LATEST");
        await launcher({})({ version: "0", source: "lambda", "detail-type": "Lambda Function Invocation Result - Failure", detail: record });
        const got = await received();
        expect(got.map((e) => [e["detail-type"], e.detail.key, e.detail.failureClass, e.detail.attempts]).sort()).to.deep.equal([
            ["Job Failed", "in/one.zip", "launcher", 3],
            ["Job Failed", "in/two two.zip", "launcher", 3],
        ]);
        for (const e of got) expect(e.detail.reason).to.match(/2 message\(s\) not sent/);
    });
});
