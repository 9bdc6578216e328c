/**
 * The launcher Lambda's logic: pure parts table-driven, SDK calls against aws-sdk-client-mock.
 * The serialized package is exercised against moto in launcher-serialized.test.ts.
 */
import { expect } from "chai";

import { DescribeClustersCommand, ECSClient, RunTaskCommand, RunTaskCommandInput } from "@aws-sdk/client-ecs";
import { GetQueueAttributesCommand, SendMessageBatchCommand, SendMessageBatchCommandInput, SQSClient } from "@aws-sdk/client-sqs";
import { AwsClientStub, mockClient } from "aws-sdk-client-mock";

import {
    backoffDelayMs,
    buildRunTaskInput,
    chunk,
    createHandler,
    decodeS3Key,
    extractJobs,
    isRetryableError,
    isRetryableFailureReason,
    keyRejection,
    KeyFilter,
    launcherFactory,
    LauncherSettings,
    launchStep,
    parseLauncherSettings,
    tasksToStart,
} from "../functions/launcher";
import { LAUNCHER_ENV } from "../functions/launcher-settings";
import { s3Event, s3Record } from "./helpers/launcher-events";

const BASE_ENV: Record<string, string> = {
    QUEUE_URL: "https://queue.example/123456789012/work",
    DLQ_URL: "https://queue.example/123456789012/dlq",
    CLUSTER: "arn:aws:ecs:us-east-1:123456789012:cluster/render",
    TASK_DEFINITION: "arn:aws:ecs:us-east-1:123456789012:task-definition/render:3",
    CONTAINER_NAME: "worker",
    SUBNETS: "subnet-a, subnet-b",
    SECURITY_GROUPS: "sg-1",
    ASSIGN_PUBLIC_IP: "ENABLED",
    CAPACITY_PROVIDER_STRATEGY: "[]",
    MAX_TASKS: "10",
    LAUNCH_MODE: "drain",
    INPUT_PREFIX: "inbox/",
    INPUT_SUFFIXES: '[".zip", ".POV"]',
    OUTPUT_PREFIX: "",
    OUTPUT_SUFFIXES: JSON.stringify([".gpkg", ".LOG", ".error.json"]),
    STARTED_BY: "lew-render",
    // Issue #11 (job events, metrics, service wake, Spot fallback); no bus: the handler tests publish nothing by default.
    EVENT_BUS_NAME: "",
    EVENT_SOURCE: "lambda-ecs-worker.render",
    WORKER_NAME: "render",
    METRICS_NAMESPACE: "LambdaEcsWorker",
    SERVICE_NAME: "",
    BACKLOG_PER_TASK: "1",
    SPOT_FALLBACK: "true",
    // Issue #19: no coordination table here (every invocation decides); the intake's settings; one job per task.
    STATE_TABLE: "",
    WORKER_CONCURRENCY: "1",
    INTAKE_MAX_RECEIVE_COUNT: "10",
    INTAKE_CONCURRENCY: "1",
};

function settings(overrides: Record<string, string> = {}): LauncherSettings {
    return parseLauncherSettings({ ...BASE_ENV, ...overrides });
}

function awsError(name: string, message: string, status = 400): Error {
    return Object.assign(new Error(message), { name, $fault: status >= 500 ? "server" : "client", $metadata: { httpStatusCode: status } });
}

const CAPACITY = "Capacity is unavailable at this time. Please try again later or in a different availability zone";

describe("launcher: pure logic", () => {
    describe("LAUNCHER_ENV contract", () => {
        it("uses the variable names of launcher-settings.ts", () => {
            // BASE_ENV is keyed by the contract's names: a renamed variable would make every other test meaningless.
            expect(Object.values(LAUNCHER_ENV).sort()).to.deep.equal(Object.keys(BASE_ENV).sort());
        });
    });

    describe("decodeS3Key", () => {
        const cases: [string, string][] = [
            ["inbox/plain.zip", "inbox/plain.zip"],
            ["inbox/my+scene.zip", "inbox/my scene.zip"],
            ["inbox/a%2Bb.zip", "inbox/a+b.zip"],
            ["inbox/a+%2B+b.zip", "inbox/a + b.zip"],
            ["inbox/caf%C3%A9.zip", "inbox/café.zip"],
            ["inbox/%E6%97%A5%E6%9C%AC.zip", "inbox/日本.zip"],
            ["inbox/%F0%9F%8E%A8.zip", "inbox/🎨.zip"],
            ["inbox/100%25.zip", "inbox/100%.zip"],
            ["inbox/a%2Fb.zip", "inbox/a/b.zip"],
        ];
        for (const [raw, decoded] of cases) {
            it(`${raw} → ${decoded}`, () => expect(decodeS3Key(raw)).to.equal(decoded));
        }
        for (const bad of ["inbox/50%.zip", "inbox/%zz.zip", "inbox/%E6%97.zip", "inbox/%C3"]) {
            it(`throws on malformed ${bad}`, () => expect(() => decodeS3Key(bad)).to.throw(URIError));
        }
    });

    describe("keyRejection", () => {
        const filter = { inputPrefix: "inbox/", inputSuffixes: [".zip", ".pov"], outputPrefix: "" };
        const cases: [string, string | undefined, Partial<KeyFilter>?][] = [
            ["inbox/scene.zip", undefined],
            ["inbox/deep/scene.ZIP", undefined],
            ["inbox/Scene.Pov", undefined],
            ["inbox/scene.txt", "suffix not accepted"],
            ["inbox/scene.zip.bak", "suffix not accepted"],
            ["other/scene.zip", "outside the input prefix"],
            ["scene.zip", "outside the input prefix"],
            ["inbox/scene.png", "worker output"],
            ["inbox/scene.PNG", "worker output"],
            ["inbox/scene.log", "worker output"],
            ["inbox/scene.error.json", "worker output", { inputSuffixes: [".json"] }],
            ["inbox/scene.json", undefined, { inputSuffixes: [".json"] }],
            ["inbox/", "not an object key"],
            ["inbox/sub/", "not an object key"],
            ["renders/scene.zip", "under the output prefix", { inputPrefix: "", outputPrefix: "renders/" }],
            ["inbox/scene.zip", undefined, { inputPrefix: "", outputPrefix: "renders/" }],
            ["anything.bin", undefined, { inputPrefix: "", inputSuffixes: [] }],
            ["anything.png", "worker output", { inputPrefix: "", inputSuffixes: [] }],
            // A worker with other outputs (OUTPUT_SUFFIXES): those are ignored, POV-Ray's are not outputs of it.
            ["inbox/map.gpkg", "worker output", { outputSuffixes: [".gpkg", ".summary.json", ".error.json"], inputSuffixes: [] }],
            ["inbox/map.SUMMARY.JSON", "worker output", { outputSuffixes: [".gpkg", ".summary.json", ".error.json"], inputSuffixes: [] }],
            ["inbox/map.error.json", "worker output", { outputSuffixes: [".gpkg", ".error.json"], inputSuffixes: [] }],
            ["inbox/map.png", undefined, { outputSuffixes: [".gpkg", ".error.json"], inputSuffixes: [] }],
        ];
        for (const [key, reason, over] of cases) {
            it(`${key} ${over ? JSON.stringify(over) : ""} → ${reason ?? "accepted"}`, () => {
                expect(keyRejection(key, { ...filter, ...over })).to.equal(reason);
            });
        }
    });

    describe("extractJobs", () => {
        const filter = { inputPrefix: "inbox/", inputSuffixes: [".zip"], outputPrefix: "" };

        it("accepts every matching record with decoded keys, size, etag and eventTime", () => {
            const event = s3Event([
                s3Record("inbox/my+scene.zip", { size: 12, eTag: "e1", eventTime: "2026-01-01T00:00:00.000Z" }),
                s3Record("inbox/caf%C3%A9.ZIP", { size: 7, eTag: "e2" }),
                s3Record("inbox/a%2Bb.zip"),
            ]);
            const { jobs, ignored } = extractJobs(event, filter);
            expect(ignored).to.deep.equal([]);
            expect(jobs).to.deep.equal([
                { bucket: "bucket", key: "inbox/my scene.zip", size: 12, etag: "e1", eventTime: "2026-01-01T00:00:00.000Z" },
                { bucket: "bucket", key: "inbox/café.ZIP", size: 7, etag: "e2", eventTime: "2026-01-01T00:00:00.000Z" },
                { bucket: "bucket", key: "inbox/a+b.zip", size: 1, etag: "etag", eventTime: "2026-01-01T00:00:00.000Z" },
            ]);
        });

        it("ignores the s3:TestEvent", () => {
            const event = { Service: "Amazon S3", Event: "s3:TestEvent", Time: "2026-01-01T00:00:00.000Z", Bucket: "bucket" };
            expect(extractJobs(event, filter)).to.deep.equal({ jobs: [], ignored: [{ index: -1, reason: "s3:TestEvent" }] });
        });

        for (const bad of [undefined, null, 42, "text", {}, { Records: "x" }]) {
            it(`ignores a non-notification event ${JSON.stringify(bad)}`, () => {
                const { jobs, ignored } = extractJobs(bad, filter);
                expect(jobs).to.deep.equal([]);
                expect(ignored).to.have.length(1);
                expect(ignored[0].index).to.equal(-1);
            });
        }

        it("skips non-ObjectCreated, foreign, malformed and filtered records without failing the others", () => {
            const event = s3Event([
                s3Record("inbox/ok1.zip"),
                s3Record("inbox/gone.zip", { eventName: "ObjectRemoved:Delete" }),
                null,
                { eventSource: "aws:s3", eventName: "ObjectCreated:Put" },
                { eventSource: "aws:s3", eventName: "ObjectCreated:Put", s3: { bucket: { name: "bucket" }, object: { key: 5 } } },
                s3Record("inbox/bad%zz.zip"),
                { ...s3Record("inbox/sqs.zip"), eventSource: "aws:sqs" },
                s3Record("inbox/out.png"),
                s3Record("inbox/notes.txt"),
                s3Record("elsewhere/x.zip"),
                s3Record("inbox/ok2.zip", { eventName: "ObjectCreated:CompleteMultipartUpload" }),
                s3Record("inbox/ok3.zip", { eventName: "s3:ObjectCreated:Copy" }),
                "garbage",
            ]);
            const { jobs, ignored } = extractJobs(event, filter);
            expect(jobs.map((j) => j.key)).to.deep.equal(["inbox/ok1.zip", "inbox/ok2.zip", "inbox/ok3.zip"]);
            expect(ignored.map((i) => [i.index, i.reason])).to.deep.equal([
                [1, "not an ObjectCreated event"],
                [2, "not an ObjectCreated event"],
                [3, "malformed record"],
                [4, "malformed record"],
                [5, "malformed key encoding"],
                [6, "not an S3 record"],
                [7, "worker output"],
                [8, "suffix not accepted"],
                [9, "outside the input prefix"],
                [12, "not an ObjectCreated event"],
            ]);
            expect(ignored[4].key).to.equal("inbox/bad%zz.zip");
            expect(ignored[6].key).to.equal("inbox/out.png");
        });

        it("leaves size/etag/eventTime out when the record lacks them", () => {
            const rec = { eventSource: "aws:s3", eventName: "ObjectCreated:Put", s3: { bucket: { name: "b" }, object: { key: "inbox/x.zip" } } };
            expect(extractJobs({ Records: [rec] }, filter).jobs).to.deep.equal([{ bucket: "b", key: "inbox/x.zip" }]);
        });
    });

    describe("tasksToStart", () => {
        // [maxTasks, running (pending included), pending, backlog, expected]
        const cases: [number, number, number, number, number][] = [
            [10, 0, 0, 0, 0],
            [10, 0, 0, 1, 1],
            [10, 0, 0, 3, 3],
            [10, 0, 0, 100, 10],
            [10, 10, 0, 100, 0],
            [10, 4, 0, 100, 6],
            [10, 2, 0, 2, 2], // two busy tasks, two more jobs waiting: two more tasks
            [10, 2, 2, 2, 0], // two tasks still starting will take the two waiting jobs
            [10, 3, 1, 5, 4],
            [10, 2, 0, 5, 5],
            [10, 12, 0, 100, 0],
            [1, 0, 0, 100, 1],
            [1, 1, 0, 100, 0],
            [10, 0, 0, 2.5, 3],
            [10, 0, 0, NaN, 0],
            [10, 0, 0, -3, 0],
            [10, 5, 7, 3, 0],
        ];
        for (const [max, running, pending, backlog, expected] of cases) {
            it(`max ${max}, running ${running} (pending ${pending}), backlog ${backlog} → ${expected}`, () => {
                expect(tasksToStart(max, running, pending, backlog)).to.equal(expected);
            });
        }
        // [maxTasks, running, pending, backlog, slots (WORKER_CONCURRENCY), expected] (issue #17: a task takes `slots` jobs)
        const slotCases: [number, number, number, number, number, number][] = [
            [10, 0, 0, 8, 4, 2],
            [10, 0, 0, 9, 4, 3],
            [10, 1, 1, 8, 4, 1], // the pending task takes 4 of the 8
            [10, 2, 2, 8, 4, 0],
            [3, 0, 0, 100, 4, 3],
            [10, 0, 0, 1, 64, 1],
            [10, 0, 0, 0, 4, 0],
        ];
        for (const [max, running, pending, backlog, slots, expected] of slotCases) {
            it(`max ${max}, running ${running} (pending ${pending}), backlog ${backlog}, ${slots} slots per task → ${expected}`, () => {
                expect(tasksToStart(max, running, pending, backlog, slots)).to.equal(expected);
            });
        }
        it("never exceeds maxTasks − running, and starts one when none runs and there is work", () => {
            for (let max = 1; max <= 12; max++) {
                for (let running = 0; running <= 14; running++) {
                    for (let pending = 0; pending <= running; pending++) {
                        for (let backlog = 0; backlog <= 30; backlog++) {
                            const n = tasksToStart(max, running, pending, backlog);
                            expect(n).to.be.at.least(0);
                            expect(n + running).to.be.at.most(Math.max(max, running));
                            if (running === 0 && backlog > 0) expect(n).to.be.at.least(1);
                        }
                    }
                }
            }
        });
    });

    describe("chunk", () => {
        const cases: [number, number[]][] = [
            [0, []],
            [1, [1]],
            [10, [10]],
            [11, [10, 1]],
            [25, [10, 10, 5]],
            [100, [10, 10, 10, 10, 10, 10, 10, 10, 10, 10]],
        ];
        for (const [n, sizes] of cases) {
            it(`${n} items → ${JSON.stringify(sizes)}`, () => {
                const items = Array.from({ length: n }, (_, i) => i);
                const chunks = chunk(items, 10);
                expect(chunks.map((c) => c.length)).to.deep.equal(sizes);
                expect(chunks.flat()).to.deep.equal(items);
            });
        }
    });

    describe("parseLauncherSettings", () => {
        it("parses a complete environment", () => {
            const s = settings({ CAPACITY_PROVIDER_STRATEGY: '[{"capacityProvider":"FARGATE_SPOT","weight":3,"base":1}]' });
            expect(s).to.deep.equal({
                mode: "drain",
                queueUrl: BASE_ENV.QUEUE_URL,
                deadLetterQueueUrl: BASE_ENV.DLQ_URL,
                cluster: BASE_ENV.CLUSTER,
                taskDefinition: BASE_ENV.TASK_DEFINITION,
                containerName: "worker",
                subnets: ["subnet-a", "subnet-b"],
                securityGroups: ["sg-1"],
                assignPublicIp: "ENABLED",
                capacityProviderStrategy: [{ capacityProvider: "FARGATE_SPOT", weight: 3, base: 1 }],
                maxTasks: 10,
                inputPrefix: "inbox/",
                inputSuffixes: [".zip", ".pov"],
                outputPrefix: "",
                outputSuffixes: [".gpkg", ".log", ".error.json"],
                startedBy: "lew-render",
                eventBusName: "",
                eventSource: "lambda-ecs-worker.render",
                workerName: "render",
                metricsNamespace: "LambdaEcsWorker",
                serviceName: "",
                backlogPerTask: 1,
                spotFallback: true,
                stateTable: "",
                workerConcurrency: 1,
                intakeMaxReceives: 10,
                intakeConcurrency: 1,
            });
        });

        it("applies the defaults", () => {
            const s = parseLauncherSettings({ QUEUE_URL: "q", CLUSTER: "c", TASK_DEFINITION: "t", SUBNETS: "subnet-a", STARTED_BY: "x" });
            expect(s).to.include({ mode: "drain", maxTasks: 1, assignPublicIp: "DISABLED", inputPrefix: "", outputPrefix: "" });
            expect(s.inputSuffixes).to.deep.equal([]);
            // POV-Ray's outputs when OUTPUT_SUFFIXES is unset.
            expect(s.outputSuffixes).to.deep.equal([".png", ".log", ".error.json"]);
            expect(s.capacityProviderStrategy).to.deep.equal([]);
            expect(s.securityGroups).to.deep.equal([]);
        });

        it("needs only the queue in service mode", () => {
            const s = parseLauncherSettings({ LAUNCH_MODE: "service", QUEUE_URL: "q" });
            expect(s.mode).to.equal("service");
        });

        const errors: [string, Record<string, string | undefined>, RegExp][] = [
            ["missing QUEUE_URL", { QUEUE_URL: undefined }, /QUEUE_URL is required in drain mode/],
            ["missing CLUSTER", { CLUSTER: "" }, /CLUSTER is required/],
            ["missing TASK_DEFINITION", { TASK_DEFINITION: " " }, /TASK_DEFINITION is required/],
            ["missing SUBNETS", { SUBNETS: " , " }, /SUBNETS must be comma-separated subnet ids/],
            ["missing STARTED_BY", { STARTED_BY: undefined }, /STARTED_BY is required/],
            ["STARTED_BY too long", { STARTED_BY: "x".repeat(37) }, /STARTED_BY must be 1-36/],
            ["STARTED_BY with a space", { STARTED_BY: "a b" }, /STARTED_BY must be/],
            ["bad LAUNCH_MODE", { LAUNCH_MODE: "burst" }, /LAUNCH_MODE must be drain \| per-job \| service \(got "burst"\)/],
            ["MAX_TASKS 0", { MAX_TASKS: "0" }, /MAX_TASKS must be an integer >= 1 \(got "0"\)/],
            ["MAX_TASKS text", { MAX_TASKS: "ten" }, /MAX_TASKS must be an integer/],
            ["MAX_TASKS fraction", { MAX_TASKS: "1.5" }, /MAX_TASKS must be an integer/],
            ["bad ASSIGN_PUBLIC_IP", { ASSIGN_PUBLIC_IP: "yes" }, /ASSIGN_PUBLIC_IP must be ENABLED or DISABLED/],
            ["INPUT_SUFFIXES not JSON", { INPUT_SUFFIXES: ".zip" }, /INPUT_SUFFIXES must be a JSON array/],
            ["INPUT_SUFFIXES not an array", { INPUT_SUFFIXES: '".zip"' }, /INPUT_SUFFIXES must be a JSON array/],
            ["INPUT_SUFFIXES with a number", { INPUT_SUFFIXES: "[1]" }, /INPUT_SUFFIXES must be a JSON array of non-empty strings/],
            ["OUTPUT_SUFFIXES not JSON", { OUTPUT_SUFFIXES: ".gpkg" }, /OUTPUT_SUFFIXES must be a JSON array/],
            ["OUTPUT_SUFFIXES with an empty one", { OUTPUT_SUFFIXES: '[""]' }, /OUTPUT_SUFFIXES must be a JSON array of non-empty strings/],
            ["CAPACITY_PROVIDER_STRATEGY not JSON", { CAPACITY_PROVIDER_STRATEGY: "FARGATE" }, /CAPACITY_PROVIDER_STRATEGY must be a JSON array/],
            ["strategy item without provider", { CAPACITY_PROVIDER_STRATEGY: '[{"weight":1}]' }, /CAPACITY_PROVIDER_STRATEGY must be a JSON array of \{ capacityProvider/],
            ["strategy weight too big", { CAPACITY_PROVIDER_STRATEGY: '[{"capacityProvider":"FARGATE","weight":1001}]' }, /CAPACITY_PROVIDER_STRATEGY/],
            ["per-job without DLQ_URL", { LAUNCH_MODE: "per-job", DLQ_URL: "" }, /DLQ_URL is required in per-job mode/],
            ["per-job without CONTAINER_NAME", { LAUNCH_MODE: "per-job", CONTAINER_NAME: "" }, /CONTAINER_NAME is required in per-job mode/],
        ];
        for (const [title, over, message] of errors) {
            it(`rejects ${title}`, () => {
                expect(() => parseLauncherSettings({ ...BASE_ENV, ...over })).to.throw(Error, message);
            });
        }

        it("lists every problem at once", () => {
            expect(() => parseLauncherSettings({ ...BASE_ENV, QUEUE_URL: "", MAX_TASKS: "-1", INPUT_SUFFIXES: "{" }))
                .to.throw(Error)
                .with.property("message")
                .that.matches(/QUEUE_URL/)
                .and.matches(/MAX_TASKS/)
                .and.matches(/INPUT_SUFFIXES/);
        });
    });

    describe("buildRunTaskInput", () => {
        it("uses launchType FARGATE when there is no capacity provider strategy", () => {
            expect(buildRunTaskInput(settings(), 4)).to.deep.equal({
                cluster: BASE_ENV.CLUSTER,
                taskDefinition: BASE_ENV.TASK_DEFINITION,
                count: 4,
                startedBy: "lew-render",
                propagateTags: "TASK_DEFINITION",
                networkConfiguration: {
                    awsvpcConfiguration: { subnets: ["subnet-a", "subnet-b"], securityGroups: ["sg-1"], assignPublicIp: "ENABLED" },
                },
                launchType: "FARGATE",
            });
        });

        it("replaces launchType with a non-empty capacity provider strategy", () => {
            const strategy = [
                { capacityProvider: "FARGATE", weight: 1, base: 1 },
                { capacityProvider: "FARGATE_SPOT", weight: 4 },
            ];
            const input = buildRunTaskInput(settings({ CAPACITY_PROVIDER_STRATEGY: JSON.stringify(strategy) }), 1);
            expect(input.capacityProviderStrategy).to.deep.equal(strategy);
            expect(input).not.to.have.property("launchType");
        });

        it("puts the job in the container environment (per-job)", () => {
            const input = buildRunTaskInput(settings({ LAUNCH_MODE: "per-job" }), 1, { bucket: "b", key: "inbox/a b.zip", size: 3 });
            expect(input.count).to.equal(1);
            expect(input.overrides).to.deep.equal({
                containerOverrides: [
                    {
                        name: "worker",
                        environment: [
                            { name: "JOB_BUCKET", value: "b" },
                            { name: "JOB_KEY", value: "inbox/a b.zip" },
                        ],
                    },
                ],
            });
        });

        it("passes the S3 event's ETag as JOB_ETAG after JOB_BUCKET and JOB_KEY, so that the worker binds to that version (per-job)", () => {
            const input = buildRunTaskInput(settings({ LAUNCH_MODE: "per-job" }), 1, { bucket: "b", key: "k.zip", etag: "0123abcd" });
            expect(input.overrides?.containerOverrides?.[0].environment).to.deep.equal([
                { name: "JOB_BUCKET", value: "b" },
                { name: "JOB_KEY", value: "k.zip" },
                { name: "JOB_ETAG", value: "0123abcd" },
            ]);
        });

        it("omits securityGroups when none is configured", () => {
            const input = buildRunTaskInput(settings({ SECURITY_GROUPS: "" }), 1);
            expect(input.networkConfiguration?.awsvpcConfiguration).to.deep.equal({ subnets: ["subnet-a", "subnet-b"], assignPublicIp: "ENABLED" });
            expect(input).not.to.have.property("overrides");
        });
    });

    describe("retry classification and backoff", () => {
        const errors: [string, unknown, boolean][] = [
            ["ThrottlingException", awsError("ThrottlingException", "Rate exceeded"), true],
            ["TooManyRequestsException", awsError("TooManyRequestsException", "slow down"), true],
            ["ServerException", awsError("ServerException", "oops", 500), true],
            ["a 503", awsError("Unknown", "unavailable", 503), true],
            ["a capacity message", awsError("InvalidParameterException", CAPACITY), true],
            ["$retryable", Object.assign(new Error("x"), { $retryable: {} }), true],
            ["ECONNRESET", Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }), true],
            ["AccessDeniedException", awsError("AccessDeniedException", "not authorized"), false],
            ["InvalidParameterException", awsError("InvalidParameterException", "No Fargate configuration exists"), false],
            ["ClusterNotFoundException", awsError("ClusterNotFoundException", "Cluster not found."), false],
            ["a string", "boom", false],
            ["null", null, false],
        ];
        for (const [title, err, retryable] of errors) {
            it(`${title} is ${retryable ? "" : "not "}retryable`, () => expect(isRetryableError(err)).to.equal(retryable));
        }
        const reasons: [string | undefined, boolean][] = [
            [CAPACITY, true],
            ["RESOURCE:MEMORY", true],
            ["AGENT", true],
            ["Rate exceeded", true],
            ["MISSING", false],
            ["ATTRIBUTE", false],
            [undefined, false],
        ];
        for (const [reason, retryable] of reasons) {
            it(`failure reason ${reason} is ${retryable ? "" : "not "}retryable`, () => {
                expect(isRetryableFailureReason(reason)).to.equal(retryable);
            });
        }
        it("backs off exponentially with full jitter, capped", () => {
            expect(backoffDelayMs(1, 0, 200, 5000)).to.equal(0);
            expect(backoffDelayMs(1, 0.5, 200, 5000)).to.equal(100);
            expect(backoffDelayMs(3, 0.5, 200, 5000)).to.equal(400);
            expect(backoffDelayMs(20, 0.5, 200, 5000)).to.equal(2500);
            expect(backoffDelayMs(20, 0.999, 200, 5000)).to.be.below(5000);
        });
    });
});

describe("launcher: handler against mocked SDK clients", () => {
    // Installed for this block only: mockClient() stubs the client classes' prototype, for every instance.
    let sqsMock: AwsClientStub<SQSClient>;
    let ecsMock: AwsClientStub<ECSClient>;
    let calls: string[];
    let logs: Record<string, any>[];
    let sleeps: number[];

    before(() => {
        sqsMock = mockClient(SQSClient);
        ecsMock = mockClient(ECSClient);
    });
    beforeEach(() => {
        sqsMock.reset();
        ecsMock.reset();
        calls = [];
        logs = [];
        sleeps = [];
        sqsMock.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => {
            calls.push(`send:${input.QueueUrl}:${input.Entries!.length}`);
            return { Successful: input.Entries!.map((e) => ({ Id: e.Id, MessageId: `id-${e.Id}`, MD5OfMessageBody: "x" })), Failed: [] };
        });
        sqsMock.on(GetQueueAttributesCommand).callsFake(() => {
            calls.push("backlog");
            return { Attributes: { ApproximateNumberOfMessages: "0" } };
        });
        ecsMock.on(DescribeClustersCommand).callsFake(() => {
            calls.push("count");
            return { clusters: [{ clusterArn: BASE_ENV.CLUSTER, runningTasksCount: 0, pendingTasksCount: 0 }], failures: [] };
        });
        ecsMock.on(RunTaskCommand).callsFake((input: RunTaskCommandInput) => {
            calls.push(`run:${input.count}`);
            return { tasks: started(input.count ?? 1), failures: [] };
        });
    });
    after(() => {
        sqsMock.restore();
        ecsMock.restore();
    });

    function started(n: number) {
        return Array.from({ length: n }, (_, i) => ({ taskArn: `arn:aws:ecs:us-east-1:123456789012:task/render/t${i}` }));
    }

    function handler(env: Record<string, string> = {}, opts: { maxAttempts?: number } = {}) {
        const s = settings(env);
        return createHandler(
            s,
            { sqs: new SQSClient({ region: "us-east-1" }), ecs: new ECSClient({ region: "us-east-1" }) },
            {
                sleep: async (ms) => {
                    sleeps.push(ms);
                },
                random: () => 0.5,
                log: (e) => logs.push(e),
                step: launchStep(s.mode),
                ...opts,
            },
        );
    }

    function keys(n: number, prefix = "inbox/scene-"): string[] {
        return Array.from({ length: n }, (_, i) => `${prefix}${i}.zip`);
    }

    function sentBodies(queueUrl = BASE_ENV.QUEUE_URL): any[] {
        return sqsMock
            .commandCalls(SendMessageBatchCommand)
            .filter((c) => c.args[0].input.QueueUrl === queueUrl)
            .flatMap((c) => c.args[0].input.Entries!.map((e) => JSON.parse(e.MessageBody!)));
    }

    it("drain: queues every job before counting and starting tasks", async () => {
        sqsMock.on(GetQueueAttributesCommand).callsFake(() => {
            calls.push("backlog");
            return { Attributes: { ApproximateNumberOfMessages: "3" } };
        });
        const event = s3Event([s3Record("inbox/a+b.zip", { size: 5, eTag: "tag" }), s3Record("inbox/c%2Bd.zip"), s3Record("inbox/x.png"), s3Record("inbox/e.ZIP")]);
        const summary = await handler()(event);

        expect(calls).to.deep.equal([`send:${BASE_ENV.QUEUE_URL}:3`, "count", "backlog", "run:3"]);
        expect(sentBodies()).to.deep.equal([
            { bucket: "bucket", key: "inbox/a b.zip", size: 5, etag: "tag", eventTime: "2026-01-01T00:00:00.000Z" },
            { bucket: "bucket", key: "inbox/c+d.zip", size: 1, etag: "etag", eventTime: "2026-01-01T00:00:00.000Z" },
            { bucket: "bucket", key: "inbox/e.ZIP", size: 1, etag: "etag", eventTime: "2026-01-01T00:00:00.000Z" },
        ]);
        // The worker's own cluster: one DescribeClusters gives its running and pending task counts, whatever their number.
        expect(ecsMock.commandCalls(DescribeClustersCommand).map((c) => c.args[0].input)).to.deep.equal([{ clusters: [BASE_ENV.CLUSTER] }]);
        const run = ecsMock.commandCalls(RunTaskCommand)[0].args[0].input;
        // One token per drain decision: "d" + 32 hex, then the answer serial (see runTaskToken).
        expect(run.clientToken).to.match(/^d[0-9a-f]{32}-0$/);
        expect(run).to.deep.equal(buildRunTaskInput(settings(), 3, undefined, run.clientToken));
        expect(summary).to.deep.equal({ mode: "drain", accepted: 3, ignored: 1, queued: 3, tasksStarted: 3, failures: 0, notStarted: 0, deadLettered: 0 });
        expect(logs.find((l) => l.msg === "drain decision")).to.deep.include({ running: 0, backlog: 3, toStart: 3 });
        expect(logs.filter((l) => l.msg === "ignored").map((l) => l.key)).to.deep.equal(["inbox/x.png"]);
    });

    it("drain: batches messages by 10, counts running tasks in one call whatever their number, starts only what is missing", async () => {
        ecsMock.on(DescribeClustersCommand).callsFake(() => {
            calls.push("count");
            return { clusters: [{ runningTasksCount: 4, pendingTasksCount: 0 }] };
        });
        sqsMock.on(GetQueueAttributesCommand).callsFake(() => {
            calls.push("backlog");
            return { Attributes: { ApproximateNumberOfMessages: "40" } };
        });
        const summary = await handler()(s3Event(keys(25).map((k) => s3Record(k))));

        const q = BASE_ENV.QUEUE_URL;
        expect(calls).to.deep.equal([`send:${q}:10`, `send:${q}:10`, `send:${q}:5`, "count", "backlog", "run:6"]);
        expect(sentBodies().map((b) => b.key)).to.deep.equal(keys(25));
        for (const c of sqsMock.commandCalls(SendMessageBatchCommand)) {
            const ids = c.args[0].input.Entries!.map((e) => e.Id);
            expect(new Set(ids).size).to.equal(ids.length);
        }
        expect(summary).to.include({ queued: 25, tasksStarted: 6 });
    });

    it("drain: a burst of 100 records with MAX_TASKS 10 starts 10 tasks in calls of ≤ 10, then none while they run", async () => {
        let running = 0;
        ecsMock.on(DescribeClustersCommand).callsFake(() => ({ clusters: [{ runningTasksCount: running, pendingTasksCount: 0 }] }));
        ecsMock.on(RunTaskCommand).callsFake((input: RunTaskCommandInput) => {
            expect(input.count).to.be.at.most(10);
            running += input.count!;
            return { tasks: started(input.count!), failures: [] };
        });
        let backlog = 0;
        sqsMock.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => {
            backlog += input.Entries!.length;
            return { Successful: input.Entries!.map((e) => ({ Id: e.Id })), Failed: [] };
        });
        sqsMock.on(GetQueueAttributesCommand).callsFake(() => ({ Attributes: { ApproximateNumberOfMessages: String(backlog) } }));

        const h = handler();
        const first = await h(s3Event(keys(100).map((k) => s3Record(k))));
        expect(first).to.include({ queued: 100, tasksStarted: 10 });
        const second = await h(s3Event(keys(50, "inbox/more-").map((k) => s3Record(k))));
        expect(second).to.include({ queued: 50, tasksStarted: 0 });
        expect(running).to.equal(10);
    });

    it("drain: tasks still starting (PENDING) will take waiting jobs; busy running tasks won't", async () => {
        ecsMock.on(DescribeClustersCommand).resolves({ clusters: [{ runningTasksCount: 2, pendingTasksCount: 1 }] });
        sqsMock.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: "4" } });
        const summary = await handler()(s3Event([s3Record("inbox/a.zip")]));
        expect(summary.tasksStarted).to.equal(3);
        expect(logs.find((l) => l.msg === "drain decision")).to.deep.include({ running: 3, pending: 1, backlog: 4, toStart: 3 });
    });

    it("drain (issue #17): a task counts as WORKER_CONCURRENCY slots, a pending one takes that many waiting jobs", async () => {
        ecsMock.on(DescribeClustersCommand).resolves({ clusters: [{ runningTasksCount: 1, pendingTasksCount: 1 }] });
        sqsMock.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: "10" } });
        const summary = await handler({ WORKER_CONCURRENCY: "4" })(s3Event([s3Record("inbox/a.zip")]));
        // 10 waiting jobs = 3 tasks of 4 slots; the pending task takes 4 of them: 2 more.
        expect(summary.tasksStarted).to.equal(2);
        expect(logs.find((l) => l.msg === "drain decision")).to.deep.include({ running: 2, pending: 1, backlog: 10, slots: 4, toStart: 2 });
    });

    it("reconcile: a scheduled event starts tasks for jobs left waiting, queuing nothing", async () => {
        sqsMock.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: "2" } });
        const summary = await handler()({ "detail-type": "Scheduled Event", source: "aws.events", detail: {} });
        expect(calls).to.deep.equal(["count", "run:2"]);
        expect(summary).to.deep.equal({ mode: "drain", accepted: 0, ignored: 0, queued: 0, tasksStarted: 2, failures: 0, notStarted: 0, deadLettered: 0 });
        expect(logs.some((l) => l.msg === "reconcile")).to.equal(true);
    });

    it("reconcile: nothing waiting, or a mode other than drain, starts nothing", async () => {
        const tick = { "detail-type": "Scheduled Event", source: "aws.events", detail: {} };
        expect((await handler()(tick)).tasksStarted).to.equal(0);
        for (const mode of ["service", "per-job"]) {
            calls = [];
            sqsMock.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: "5" } });
            expect((await handler({ LAUNCH_MODE: mode })(tick)).tasksStarted, mode).to.equal(0);
            expect(calls, mode).to.deep.equal([]);
        }
    });

    it("drain: counts at least the messages just queued when the backlog reads lower", async () => {
        const summary = await handler()(s3Event(keys(2).map((k) => s3Record(k))));
        expect(summary.tasksStarted).to.equal(2);
    });

    it("drain: a backlog read failure starts nothing (the jobs stay queued for the next decision or the reconcile)", async () => {
        sqsMock.on(GetQueueAttributesCommand).rejects(awsError("AccessDenied", "not allowed"));
        const summary = await handler()(s3Event([s3Record("inbox/a.zip")]));
        expect(summary).to.include({ queued: 1, tasksStarted: 0 });
        expect(logs.find((l) => l.msg === "tasks not counted")?.reason).to.match(/AccessDenied/);
    });

    it("RunTask failures: capacity failures are counted, logged and retried for the missing tasks", async () => {
        sqsMock.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: "3" } });
        ecsMock
            .on(RunTaskCommand)
            .resolvesOnce({ tasks: started(1), failures: [{ arn: "arn:az-a", reason: CAPACITY }, { arn: "arn:az-b", reason: CAPACITY }] })
            .resolvesOnce({ tasks: started(1), failures: [{ arn: "arn:az-a", reason: CAPACITY }] })
            .resolves({ tasks: started(1), failures: [] });
        const summary = await handler()(s3Event(keys(3).map((k) => s3Record(k))));
        expect(ecsMock.commandCalls(RunTaskCommand).map((c) => c.args[0].input.count)).to.deep.equal([3, 2, 1]);
        expect(summary).to.include({ tasksStarted: 3, failures: 3, notStarted: 0 });
        expect(sleeps).to.have.length(2);
        expect(logs.filter((l) => l.msg === "RunTask failed")).to.have.length(2);
    });

    it("RunTask failures: a non-transient failure is not retried; the job stays queued and the invocation succeeds", async () => {
        // Failing the invocation would make Lambda's async retry queue the whole event again (duplicate renders);
        // the reconcile schedule starts the missing task later.
        ecsMock.on(RunTaskCommand).resolves({ tasks: [], failures: [{ arn: BASE_ENV.TASK_DEFINITION, reason: "MISSING" }] });
        const summary = await handler()(s3Event([s3Record("inbox/a.zip")]));
        expect(summary).to.include({ queued: 1, tasksStarted: 0, notStarted: 1, failures: 1 });
        expect(ecsMock.commandCalls(RunTaskCommand)).to.have.length(1);
        expect(sentBodies()).to.have.length(1);
        expect(logs.find((l) => l.msg === "summary")).to.include({ queued: 1, tasksStarted: 0, notStarted: 1, failures: 1 });
    });

    it("throttling then success: retried with backoff", async () => {
        ecsMock
            .on(RunTaskCommand)
            .rejectsOnce(awsError("ThrottlingException", "Rate exceeded"))
            .rejectsOnce(awsError("ThrottlingException", "Rate exceeded"))
            .resolves({ tasks: started(1), failures: [] });
        const summary = await handler()(s3Event([s3Record("inbox/a.zip")]));
        expect(ecsMock.commandCalls(RunTaskCommand)).to.have.length(3);
        expect(summary).to.include({ tasksStarted: 1, failures: 2 });
        expect(sleeps).to.deep.equal([100, 200]);
    });

    it("throttling forever: gives up after maxAttempts, logs it and leaves the queued job to the reconcile", async () => {
        ecsMock.on(RunTaskCommand).rejects(awsError("ThrottlingException", "Rate exceeded"));
        const h = handler({}, { maxAttempts: 4 });
        const summary = await h(s3Event([s3Record("inbox/a.zip")]));
        expect(summary).to.include({ queued: 1, tasksStarted: 0, notStarted: 1, failures: 4 });
        expect(logs.find((l) => l.msg === "giving up")).to.include({ what: "RunTask", reason: "ThrottlingException: Rate exceeded" });
        expect(ecsMock.commandCalls(RunTaskCommand)).to.have.length(4);
        expect(sleeps).to.have.length(3);
        expect(sentBodies().map((b) => b.key)).to.deep.equal(["inbox/a.zip"]);
    });

    it("a non-retryable RunTask error is not retried", async () => {
        ecsMock.on(RunTaskCommand).rejects(awsError("AccessDeniedException", "not authorized to perform ecs:RunTask"));
        const summary = await handler()(s3Event([s3Record("inbox/a.zip")]));
        expect(summary).to.include({ queued: 1, tasksStarted: 0, notStarted: 1 });
        expect(logs.find((l) => l.msg === "RunTask failed")?.reason).to.match(/AccessDeniedException/);
        expect(ecsMock.commandCalls(RunTaskCommand)).to.have.length(1);
        expect(sleeps).to.deep.equal([]);
    });

    it("stops retrying when the Lambda is about to time out", async () => {
        ecsMock.on(RunTaskCommand).rejects(awsError("ThrottlingException", "Rate exceeded"));
        const summary = await handler()(s3Event([s3Record("inbox/a.zip")]), { getRemainingTimeInMillis: () => 2000 });
        expect(summary.notStarted).to.equal(1);
        expect(ecsMock.commandCalls(RunTaskCommand)).to.have.length(1);
        expect(logs.some((l) => l.msg === "giving up" && l.what === "RunTask")).to.equal(true);
    });

    it("partial SendMessageBatch failure: only the failed entries are retried", async () => {
        sqsMock
            .on(SendMessageBatchCommand)
            .resolvesOnce({
                Successful: [{ Id: "m0", MessageId: "1", MD5OfMessageBody: "x" }, { Id: "m2", MessageId: "3", MD5OfMessageBody: "x" }],
                Failed: [{ Id: "m1", SenderFault: false, Code: "InternalError" }],
            })
            .resolves({ Successful: [{ Id: "m1", MessageId: "2", MD5OfMessageBody: "x" }], Failed: [] });
        const summary = await handler()(s3Event(keys(3).map((k) => s3Record(k))));
        const sends = sqsMock.commandCalls(SendMessageBatchCommand).map((c) => c.args[0].input.Entries!.map((e) => JSON.parse(e.MessageBody!).key));
        expect(sends).to.deep.equal([keys(3), ["inbox/scene-1.zip"]]);
        expect(summary).to.include({ queued: 3, tasksStarted: 3 });
        expect(sleeps).to.have.length(1);
    });

    it("a direct notification: a job that stays unsent after the retries is dead-lettered with the reason; the others start", async () => {
        sqsMock.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => ({
            Successful: input.Entries!.filter((e) => input.QueueUrl !== BASE_ENV.QUEUE_URL || JSON.parse(e.MessageBody!).key !== "inbox/scene-1.zip").map((e) => ({ Id: e.Id })),
            Failed: input.Entries!.filter((e) => input.QueueUrl === BASE_ENV.QUEUE_URL && JSON.parse(e.MessageBody!).key === "inbox/scene-1.zip").map((e) => ({ Id: e.Id, SenderFault: false, Code: "ServiceUnavailable" })),
        }));
        sqsMock.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: "2" } });
        const summary = await handler({}, { maxAttempts: 3 })(s3Event(keys(3).map((k) => s3Record(k))));
        expect(summary).to.include({ queued: 2, tasksStarted: 2, deadLettered: 1 });
        expect(sentBodies(BASE_ENV.QUEUE_URL).map((b) => b.key)).to.deep.equal([...keys(3), "inbox/scene-1.zip", "inbox/scene-1.zip"]);
        const [dead] = sentBodies(BASE_ENV.DLQ_URL);
        expect(dead).to.deep.include({ key: "inbox/scene-1.zip", reason: "not queued: m1: ServiceUnavailable" });
        expect(dead.jobId).to.match(/^[0-9a-f]{32}$/);
    });

    it("a throttled SendMessageBatch call is retried whole; a non-retryable one is not retried (the job is dead-lettered, nothing started)", async () => {
        sqsMock
            .on(SendMessageBatchCommand)
            .rejectsOnce(awsError("RequestThrottled", "Request is throttled."))
            .resolves({ Successful: [{ Id: "m0", MessageId: "1", MD5OfMessageBody: "x" }], Failed: [] });
        expect(await handler()(s3Event([s3Record("inbox/a.zip")]))).to.include({ queued: 1, tasksStarted: 1 });
        expect(sqsMock.commandCalls(SendMessageBatchCommand)).to.have.length(2);

        sqsMock.reset();
        ecsMock.resetHistory();
        sqsMock.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => {
            if (input.QueueUrl === BASE_ENV.QUEUE_URL) throw awsError("AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.");
            return { Successful: input.Entries!.map((e) => ({ Id: e.Id })), Failed: [] };
        });
        const summary = await handler()(s3Event([s3Record("inbox/a.zip")]));
        expect(summary).to.include({ queued: 0, tasksStarted: 0, deadLettered: 1 });
        expect(sqsMock.commandCalls(SendMessageBatchCommand).map((c) => c.args[0].input.QueueUrl)).to.deep.equal([BASE_ENV.QUEUE_URL, BASE_ENV.DLQ_URL]);
        expect(sentBodies(BASE_ENV.DLQ_URL)[0].reason).to.match(/^not queued: AWS.SimpleQueueService.NonExistentQueue/);
        expect(ecsMock.commandCalls(RunTaskCommand)).to.have.length(0);
    });

    it("a sender-fault entry is not retried; when its dead-letter fails too, the invocation fails naming the job", async () => {
        // The work queue refuses the second message, the DLQ the first (and only) one it is sent.
        sqsMock.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => {
            const bad = input.QueueUrl === BASE_ENV.QUEUE_URL ? "m1" : "m0";
            return {
                Successful: input.Entries!.filter((e) => e.Id !== bad).map((e) => ({ Id: e.Id })),
                Failed: [{ Id: bad, SenderFault: true, Code: "InvalidParameterValue", Message: "too big" }],
            };
        });
        let error: Error | undefined;
        await handler()(s3Event(keys(2).map((k) => s3Record(k)))).catch((e) => (error = e));
        expect(error?.message).to.match(/^1 job\(s\) neither started nor dead-lettered: inbox\/scene-1.zip: not queued: InvalidParameterValue too big; InvalidParameterValue too big/);
        // Once to the work queue, once to the DLQ; no retry of a sender fault.
        expect(sqsMock.commandCalls(SendMessageBatchCommand)).to.have.length(2);
    });

    it("service mode: queues the jobs and starts nothing", async () => {
        const summary = await handler({ LAUNCH_MODE: "service" })(s3Event(keys(12).map((k) => s3Record(k))));
        expect(calls).to.deep.equal([`send:${BASE_ENV.QUEUE_URL}:10`, `send:${BASE_ENV.QUEUE_URL}:2`]);
        expect(summary).to.include({ mode: "service", queued: 12, tasksStarted: 0 });
        expect(ecsMock.calls()).to.have.length(0);
    });

    it("per-job: one task per job with the job in its environment, nothing queued", async () => {
        const strategy = [{ capacityProvider: "FARGATE_SPOT", weight: 1 }];
        const h = handler({ LAUNCH_MODE: "per-job", CAPACITY_PROVIDER_STRATEGY: JSON.stringify(strategy) });
        const summary = await h(s3Event([s3Record("inbox/a+b.zip"), s3Record("inbox/%F0%9F%8E%A8.zip"), s3Record("inbox/skip.png")]));
        expect(sqsMock.commandCalls(SendMessageBatchCommand)).to.have.length(0);
        expect(ecsMock.commandCalls(DescribeClustersCommand)).to.have.length(0);
        const inputs = ecsMock.commandCalls(RunTaskCommand).map((c) => c.args[0].input);
        expect(inputs.map((i) => i.overrides?.containerOverrides?.[0].environment)).to.have.deep.members([
            [
                { name: "JOB_BUCKET", value: "bucket" },
                { name: "JOB_KEY", value: "inbox/a b.zip" },
                { name: "JOB_ETAG", value: "etag" },
            ],
            [
                { name: "JOB_BUCKET", value: "bucket" },
                { name: "JOB_KEY", value: "inbox/🎨.zip" },
                { name: "JOB_ETAG", value: "etag" },
            ],
        ]);
        for (const i of inputs) {
            expect(i).to.deep.include({ count: 1, startedBy: "lew-render", capacityProviderStrategy: strategy, propagateTags: "TASK_DEFINITION" });
            expect(i).not.to.have.property("launchType");
            expect(i.overrides?.containerOverrides?.[0].name).to.equal("worker");
        }
        expect(summary).to.include({ mode: "per-job", accepted: 2, ignored: 1, queued: 0, tasksStarted: 2 });
    });

    it("per-job: a job whose task cannot start goes to the DLQ with the reason; the others start; nothing is retried", async () => {
        ecsMock.on(RunTaskCommand).callsFake((input: RunTaskCommandInput) => {
            const key = input.overrides!.containerOverrides![0].environment!.find((e) => e.name === "JOB_KEY")!.value;
            if (key === "inbox/bad.zip") return { tasks: [], failures: [{ reason: CAPACITY }] };
            return { tasks: started(1), failures: [] };
        });
        const h = handler({ LAUNCH_MODE: "per-job" }, { maxAttempts: 3 });
        const summary = await h(s3Event([s3Record("inbox/good.zip"), s3Record("inbox/bad.zip", { size: 9 })]));
        expect(summary).to.include({ tasksStarted: 1, notStarted: 1, deadLettered: 1 });
        expect(ecsMock.commandCalls(RunTaskCommand)).to.have.length(1 + 3);
        expect(sentBodies(BASE_ENV.QUEUE_URL)).to.deep.equal([]);
        const dlq = sentBodies(BASE_ENV.DLQ_URL);
        expect(dlq).to.have.length(1);
        expect(dlq[0]).to.deep.include({ bucket: "bucket", key: "inbox/bad.zip", size: 9, etag: "etag" });
        expect(dlq[0].reason).to.match(/Capacity is unavailable/);
        expect(logs.find((l) => l.msg === "summary")).to.include({ tasksStarted: 1, notStarted: 1, deadLettered: 1 });
    });

    it("per-job: a job neither started nor dead-lettered fails the invocation, so Lambda retries it", async () => {
        ecsMock.on(RunTaskCommand).resolves({ tasks: [], failures: [{ reason: "MISSING" }] });
        sqsMock.on(SendMessageBatchCommand).rejects(awsError("AccessDenied", "no"));
        let error: Error | undefined;
        await handler({ LAUNCH_MODE: "per-job" })(s3Event([s3Record("inbox/a.zip")])).catch((e) => (error = e));
        expect(error?.message).to.match(/^1 job\(s\) neither started nor dead-lettered: inbox\/a.zip: task could not be started: MISSING; AccessDenied/);
    });

    it("drain: a task count that fails leaves the queued jobs to the reconcile and starts nothing", async () => {
        ecsMock.on(DescribeClustersCommand).rejects(awsError("AccessDeniedException", "not authorized to perform ecs:DescribeClusters"));
        const summary = await handler()(s3Event([s3Record("inbox/a.zip")]));
        expect(summary).to.include({ queued: 1, tasksStarted: 0 });
        expect(ecsMock.commandCalls(RunTaskCommand)).to.have.length(0);
        expect(logs.find((l) => l.msg === "tasks not counted")?.reason).to.match(/AccessDeniedException/);
    });

    it("an event without jobs makes no AWS call", async () => {
        const summary = await handler()({ Service: "Amazon S3", Event: "s3:TestEvent", Bucket: "bucket" });
        expect(sqsMock.calls()).to.have.length(0);
        expect(ecsMock.calls()).to.have.length(0);
        expect(summary).to.deep.equal({ mode: "drain", accepted: 0, ignored: 1, queued: 0, tasksStarted: 0, failures: 0, notStarted: 0, deadLettered: 0 });
    });

    it("launcherFactory: reads process.env once, creates its own clients and logs JSON lines", async () => {
        const saved = { ...process.env };
        const lines: string[] = [];
        const consoleLog = console.log;
        try {
            Object.assign(process.env, BASE_ENV, { MAX_TASKS: "2", AWS_REGION: "us-east-1" });
            const h = launcherFactory();
            process.env.MAX_TASKS = "7"; // read once, at factory time
            console.log = (line: string) => lines.push(line);
            const summary = await h(s3Event(keys(5).map((k) => s3Record(k))));
            console.log = consoleLog;
            expect(summary).to.include({ queued: 5, tasksStarted: 2 });
            expect(ecsMock.commandCalls(RunTaskCommand)[0].args[0].input).to.deep.include({ cluster: BASE_ENV.CLUSTER, count: 2 });
            const parsed = lines.map((l) => JSON.parse(l));
            expect(parsed.map((p) => p.msg)).to.include.members(["accepted", "queued", "drain decision", "summary"]);
        } finally {
            console.log = consoleLog;
            process.env = saved;
        }
    });

    it("launcherFactory: fails fast on invalid settings, naming the variable", () => {
        const saved = { ...process.env };
        try {
            Object.assign(process.env, BASE_ENV, { MAX_TASKS: "lots" });
            expect(() => launcherFactory()).to.throw(/MAX_TASKS/);
        } finally {
            process.env = saved;
        }
    });
});
