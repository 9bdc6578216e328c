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
import { onFailureRecord, scheduledEvent } from "../scripts/local/events";

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
