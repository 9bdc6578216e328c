/** Pure parts of `npm run local`. */
import { expect } from "chai";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import { applyDeclared, emulatorRule, SCHEDULE_ONLY_PATTERN } from "../cli/local/appliers";
import { Cleanup } from "../cli/local/cleanup";
import { EventDelivery, onFailureRecord, scheduledEvent, Schedules } from "../cli/local/events";
import { handledIds, IntakeMapping } from "../cli/local/intake";
import { displayPath, jobCounts, JobBook, notAJobReason, planJobs } from "../cli/local/jobs";
import { InvokeResult } from "../cli/local/launcher";
import { Runner, RunningTask, TaskSpec } from "../cli/local/runners";
import { checkInputs, runNotes, stackOverrides } from "../cli/local/setup";
import { buildSummary } from "../cli/local/summary";
import { errorLine, exitKind, LineTail, StartFailures, startFailureVerdict, TookJobWatch, WorkerExit } from "../cli/local/start-failures";
import { containerEnvironment, serviceTasksWanted, TaskExit, TaskFleet, taskEnvironment, taskIdOf } from "../cli/local/tasks";
import { deadLetteredJobs, jobOutcome, JobWatcher, OUTPUT_DOWNLOADS } from "../cli/local/watch";
import { taskStoppedDetail, taskStoppedEntry } from "../cli/local/ecs-events";

describe("npm run local: reading the dead-letter queue (deadLetteredJobs)", () => {
    const s3Event = (...keys: string[]) => ({
        Records: keys.map((key) => ({ eventSource: "aws:s3", eventName: "ObjectCreated:Put", s3: { bucket: { name: "b" }, object: { key } } })),
    });
    const cases: [string, string, string | undefined, { keys: string[]; reason: string }][] = [
        [
            "a job a worker dead-lettered, with its reason",
            JSON.stringify({ bucket: "b", key: "in/a b.zip", reason: "no scene" }),
            "no scene",
            { keys: ["in/a b.zip"], reason: "no scene" },
        ],
        [
            "Lambda's on-failure record of a launcher invocation: keys from requestPayload, reason from responsePayload",
            JSON.stringify({
                version: "1.0",
                requestContext: { condition: "RetriesExhausted", approximateInvokeCount: 3 },
                requestPayload: s3Event("in/x+y.zip", "in/caf%C3%A9.zip"),
                responsePayload: { errorType: "Error", errorMessage: "1 of 2 message(s) not sent" },
            }),
            undefined,
            { keys: ["in/x y.zip", "in/café.zip"], reason: "launcher failed: 1 of 2 message(s) not sent" },
        ],
        [
            "an S3 event SQS redrove after maxReceiveCount (no reason anywhere)",
            JSON.stringify(s3Event("in/%ZZ.zip", "in/ok.zip")),
            undefined,
            { keys: ["in/ok.zip"], reason: "dead-lettered (maxReceiveCount reached)" },
        ],
        ["a body that is not JSON, with a reason attribute", "not json", "unreadable", { keys: [], reason: "unreadable" }],
    ];
    for (const [title, body, attribute, expected] of cases) {
        it(title, () => {
            expect(deadLetteredJobs(body, attribute)).to.deep.equal(expected);
        });
    }
});

describe("npm run local: the jobs (planJobs, notAJobReason, JobBook)", () => {
    it("names each job after its file, de-duplicated case-insensitively, with the worker's output keys", () => {
        const jobs = planJobs(["a/spheres.zip", "b/Spheres.zip", "c/spheres.zip", "d/x.y.zip"], { inputPrefix: "in/", outputPrefix: "out/" });
        expect(jobs.map((j) => [j.name, j.key, j.png, j.error])).to.deep.equal([
            ["spheres", "in/spheres.zip", "out/spheres.png", "out/spheres.error.json"],
            ["Spheres-2", "in/Spheres-2.zip", "out/Spheres-2.png", "out/Spheres-2.error.json"],
            ["spheres-3", "in/spheres-3.zip", "out/spheres-3.png", "out/spheres-3.error.json"],
            ["x.y", "in/x.y.zip", "out/x.y.png", "out/x.y.error.json"],
        ]);
        expect(jobs.every((j) => j.uploadedAt === 0 && j.result === undefined)).to.equal(true);
    });

    it("without an output prefix, writes the outputs next to the input", () => {
        const [j] = planJobs(["/tmp/scene.zip"], { inputPrefix: "", outputPrefix: "" });
        expect([j.key, j.png, j.error]).to.deep.equal(["scene.zip", "scene.png", "scene.error.json"]);
    });

    it("fails a key the bucket notification's suffix filters would not pass, naming the suffixes", () => {
        expect(notAJobReason("in/a.zip", [".zip", ".pov"])).to.equal(undefined);
        expect(notAJobReason("in/a.tar", [".zip", ".pov"])).to.equal("not a job: the bucket notification only fires for keys ending in .zip, .pov");
        expect(notAJobReason("in/anything", [""])).to.equal(undefined);
    });

    it("settles a job once, timed from its upload, logging each settlement; failPending fails only the rest", () => {
        const lines: string[] = [];
        let now = 10_000;
        const book = new JobBook(planJobs(["a.zip", "b.zip", "c.zip", "d.zip"], { inputPrefix: "", outputPrefix: "" }), (l) => lines.push(l), () => now);
        const [a, b, c, d] = book.jobs;
        for (const j of book.jobs) j.uploadedAt = 8_000;
        book.reject(d, "not a job");
        book.finish(a, "done", "out/a.png");
        now = 12_500;
        book.finish(a, "failed", undefined, "late"); // ignored: already done
        book.finish(b, "failed", "out/b.error.json", "no scene");
        expect(book.settled()).to.equal(false);
        expect(book.pending()).to.deep.equal([c]);
        book.failPending("timed out");
        expect(book.settled()).to.equal(true);
        expect(book.byKey.get("c.zip")).to.equal(c);
        expect(book.results()).to.deep.equal([
            { job: "a", input: "a.zip", status: "done", output: "out/a.png", reason: undefined, seconds: 2 },
            { job: "b", input: "b.zip", status: "failed", output: "out/b.error.json", reason: "no scene", seconds: 4.5 },
            { job: "c", input: "c.zip", status: "failed", output: undefined, reason: "timed out", seconds: 4.5 },
            { job: "d", input: "d.zip", status: "failed", reason: "not a job", seconds: 0 },
        ]);
        expect(lines).to.deep.equal(["failed  d: not a job", "done    a → out/a.png", "failed  b: no scene", "failed  c: timed out"]);
    });

    it("counts pending jobs as running while the queue has messages in flight, the rest as queued", () => {
        const jobs = planJobs(["a.zip", "b.zip", "c.zip", "d.zip"], { inputPrefix: "", outputPrefix: "" });
        jobs[0].result = { job: "a", input: "a.zip", status: "done", seconds: 1 };
        jobs[1].result = { job: "b", input: "b.zip", status: "failed", seconds: 1 };
        expect(jobCounts(jobs, 0)).to.deep.equal({ total: 4, done: 1, failed: 1, running: 0, queued: 2 });
        expect(jobCounts(jobs, 1)).to.deep.equal({ total: 4, done: 1, failed: 1, running: 1, queued: 1 });
        // More in flight than pending (a message not yet deleted after its output): never more running than pending.
        expect(jobCounts(jobs, 5)).to.deep.equal({ total: 4, done: 1, failed: 1, running: 2, queued: 0 });
    });

    it("shows a path below the working directory relative to it, any other absolutely", () => {
        expect(displayPath("/w/out/a.png", "/w")).to.equal("out/a.png");
        expect(displayPath("/elsewhere/a.png", "/w")).to.equal("/elsewhere/a.png");
        expect(displayPath("/w", "/w")).to.equal("/w");
    });
});

describe("npm run local: what settles a job (jobOutcome, JobWatcher)", () => {
    const [job] = planJobs(["a.zip"], { inputPrefix: "in/", outputPrefix: "" });
    const cases: [string, string[], [string, string][], ReturnType<typeof jobOutcome>][] = [
        ["nothing yet", ["in/a.zip"], [], undefined],
        ["its PNG, even with an error report and a DLQ reason", ["in/a.png", "in/a.error.json"], [["in/a.zip", "r"]], { kind: "png" }],
        ["its error report before a DLQ reason", ["in/a.error.json"], [["in/a.zip", "r"]], { kind: "error" }],
        ["a DLQ reason naming its key", [], [["in/a.zip", "no scene"]], { kind: "dlq", reason: "no scene" }],
        ["not another job's DLQ reason", [], [["in/b.zip", "no scene"]], undefined],
    ];
    for (const [title, keys, reasons, expected] of cases) {
        it(title, () => {
            expect(jobOutcome(job, new Set(keys), new Map(reasons))).to.deep.equal(expected);
        });
    }

    it("GIVEN a burst's outputs all there WHEN it polls THEN it downloads them OUTPUT_DOWNLOADS jobs at a time, each job settled once", async () => {
        const out = fs.mkdtempSync(path.join(os.tmpdir(), "watch-"));
        try {
            const names = Array.from({ length: 30 }, (_, i) => `j${i}.zip`);
            const book = new JobBook(planJobs(names, { inputPrefix: "", outputPrefix: "" }), () => undefined);
            let inFlight = 0;
            let most = 0;
            const gets: string[] = [];
            const s3 = {
                send: async (cmd: any) => {
                    if (cmd.constructor.name === "ListObjectsV2Command") return { Contents: book.jobs.map((j) => ({ Key: j.png })) };
                    gets.push(cmd.input.Key);
                    most = Math.max(most, ++inFlight);
                    await new Promise((r) => setTimeout(r, 5));
                    inFlight--;
                    return { Body: { transformToByteArray: async () => new Uint8Array([1]) } };
                },
            };
            const watcher = new JobWatcher({ s3: s3 as any, sqs: {} as any, bucket: "b", queueUrl: "q", dlqUrl: "d", outDir: out }, book);
            await watcher.pollOutputs();
            expect(book.settled()).to.equal(true);
            expect(most).to.equal(OUTPUT_DOWNLOADS);
            expect(gets.sort()).to.deep.equal(book.jobs.map((j) => j.png).sort());
            expect(fs.readdirSync(out)).to.have.length(30);
        } finally {
            fs.rmSync(out, { recursive: true, force: true });
        }
    });
});

describe("npm run local: the intake's event source mapping, emulated (IntakeMapping)", () => {
    /** A queue in memory: ReceiveMessage hands out visible messages (hiding them), DeleteMessageBatch removes them. */
    function fakeQueue(bodies: string[]) {
        const messages = bodies.map((Body, i) => ({ MessageId: `m${i}`, ReceiptHandle: `r${i}`, Body, receives: 0, hidden: false }));
        const deleted: string[] = [];
        const sqs = {
            send: async (cmd: any) => {
                if (cmd.input.MaxNumberOfMessages !== undefined) {
                    const got = messages.filter((m) => !m.hidden).slice(0, cmd.input.MaxNumberOfMessages);
                    for (const m of got) (m.hidden = true), m.receives++;
                    if (got.length === 0) await new Promise((r) => setTimeout(r, 5));
                    return { Messages: got.map((m) => ({ MessageId: m.MessageId, ReceiptHandle: m.ReceiptHandle, Body: m.Body, Attributes: { ApproximateReceiveCount: String(m.receives) } })) };
                }
                for (const e of cmd.input.Entries) {
                    const i = messages.findIndex((m) => m.ReceiptHandle === e.ReceiptHandle);
                    deleted.push(messages[i].MessageId);
                    messages.splice(i, 1);
                }
                return {};
            },
        };
        return { sqs, messages, deleted };
    }

    it("GIVEN 25 records, batches of 10, a 0 s window and 2 pollers THEN batches of ≤ 10 in Lambda's SQS event shape, at most 2 invocations at once, every record deleted", async () => {
        const q = fakeQueue(Array.from({ length: 25 }, (_, i) => `{"n":${i}}`));
        const events: any[] = [];
        let inFlight = 0;
        let peak = 0;
        const instance = {
            invoke: async (e: any) => {
                events.push(e);
                peak = Math.max(peak, ++inFlight);
                await new Promise((r) => setTimeout(r, 10));
                inFlight--;
                return { ok: true, result: { batchItemFailures: [] } };
            },
        };
        const m = new IntakeMapping({
            sqs: q.sqs as any,
            queueUrl: "intake-url",
            queueArn: "arn:aws:sqs:us-east-1:123456789012:render-intake",
            region: "us-east-1",
            config: { batchSize: 10, windowSeconds: 0, maxConcurrency: 2, reportBatchItemFailures: true },
            instances: [instance, instance, instance],
            log: () => undefined,
            stopped: () => false,
        });
        await m.run(() => q.deleted.length < 25);
        expect(events.every((e) => e.Records.length <= 10)).to.equal(true);
        expect(events.flatMap((e) => e.Records).map((r: any) => JSON.parse(r.body).n).sort((a: number, b: number) => a - b)).to.deep.equal(Array.from({ length: 25 }, (_, i) => i));
        expect(events[0].Records[0]).to.deep.include({ eventSource: "aws:sqs", eventSourceARN: "arn:aws:sqs:us-east-1:123456789012:render-intake", awsRegion: "us-east-1", attributes: { ApproximateReceiveCount: "1" } });
        expect(peak).to.be.within(1, 2);
        expect(m.peakConcurrency).to.equal(peak);
        expect(q.deleted).to.have.length(25);
    });

    it("handledIds: all but the reported batchItemFailures; none when the invocation failed; all when the mapping does not report failures", () => {
        const batch = [{ messageId: "a" }, { messageId: "b" }, { messageId: "c" }];
        expect(handledIds(batch, { ok: true, result: { batchItemFailures: [{ itemIdentifier: "b" }] } }, true)).to.deep.equal(["a", "c"]);
        expect(handledIds(batch, { ok: true, result: {} }, true)).to.deep.equal(["a", "b", "c"]);
        expect(handledIds(batch, { ok: false, error: "boom" }, true)).to.deep.equal([]);
        expect(handledIds(batch, { ok: true, result: { batchItemFailures: [{ itemIdentifier: "b" }] } }, false)).to.deep.equal(["a", "b", "c"]);
    });
});

describe("npm run local: events to the launcher (EventDelivery, Schedules)", () => {
    function delivery(results: InvokeResult[], stopped = () => false) {
        const invoked: unknown[] = [];
        const sent: any[] = [];
        const lines: string[] = [];
        const d = new EventDelivery({
            launcher: { invoke: async (e) => (invoked.push(e), results.shift() ?? { ok: true }) },
            sqs: { send: async (cmd: any) => (sent.push(cmd.input), {}) } as any,
            dlqUrl: "dlq-url",
            functionName: "render-launcher",
            maximumRetryAttempts: 2,
            log: (l) => lines.push(l),
            stopped,
        });
        return { d, invoked, sent, lines };
    }

    it("GIVEN an invocation that succeeds THEN one invocation and nothing dead-lettered", async () => {
        const { d, invoked, sent } = delivery([{ ok: true }]);
        await d.handle(JSON.stringify({ Records: [1] }));
        expect([d.invocations, invoked, sent]).to.deep.equal([1, [{ Records: [1] }], []]);
    });

    it("GIVEN a failure then a success THEN it retries once, logging the failed attempt", async () => {
        const { d, sent, lines } = delivery([{ ok: false, error: "boom" }, { ok: true }]);
        await d.handle("{}");
        expect(d.invocations).to.equal(2);
        expect(sent).to.deep.equal([]);
        expect(lines).to.deep.equal(["launcher invocation failed (attempt 1 of 3): boom"]);
    });

    it("GIVEN every attempt fails THEN 1 + maximumRetryAttempts invocations, then Lambda's on-failure record in the DLQ", async () => {
        const fail = { ok: false, error: "1 of 2 message(s) not sent" };
        const { d, sent } = delivery([fail, fail, fail]);
        const event = { Records: [{ s3: { object: { key: "in/a.zip" } } }] };
        await d.handle(JSON.stringify(event));
        expect(d.invocations).to.equal(3);
        expect(sent).to.have.length(1);
        expect(sent[0].QueueUrl).to.equal("dlq-url");
        const record = JSON.parse(sent[0].MessageBody);
        expect(record.requestPayload).to.deep.equal(event);
        expect(record.requestContext).to.include({ functionArn: "render-launcher", condition: "RetriesExhausted", approximateInvokeCount: 3 });
        expect(record.responsePayload).to.deep.equal({ errorType: "Error", errorMessage: fail.error });
        // What the DLQ reader makes of it: the job and the launcher's error.
        expect(deadLetteredJobs(sent[0].MessageBody)).to.deep.equal({ keys: ["in/a.zip"], reason: "launcher failed: 1 of 2 message(s) not sent" });
    });

    it("GIVEN the run is stopping THEN no invocation and no retry", async () => {
        let stop = false;
        const { d, sent } = delivery([{ ok: false, error: "x" }], () => stop);
        const p = d.handle("{}");
        stop = true;
        await p;
        expect(d.invocations).to.equal(1);
        expect(sent).to.deep.equal([]);
        await d.handle("{}");
        expect(d.invocations).to.equal(1);
    });

    it("GIVEN a body that is not JSON THEN it is dropped without an invocation", async () => {
        const { d } = delivery([]);
        await d.handle("not json");
        expect(d.invocations).to.equal(0);
    });

    it("builds EventBridge's Scheduled Event for a rule, time to the second", () => {
        expect(scheduledEvent("render-reconcile-0000000", "us-east-1", new Date("2026-01-02T03:04:05.678Z"), "id-1")).to.deep.equal({
            version: "0",
            id: "id-1",
            "detail-type": "Scheduled Event",
            source: "aws.events",
            account: "123456789012",
            time: "2026-01-02T03:04:05Z",
            region: "us-east-1",
            resources: ["arn:aws:events:us-east-1:123456789012:rule/render-reconcile-0000000"],
            detail: {},
        });
    });

    it("builds Lambda's on-failure record", () => {
        expect(onFailureRecord({ a: 1 }, "boom", 3, "fn", new Date("2026-01-02T03:04:05.678Z"), "req-1")).to.deep.equal({
            version: "1.0",
            timestamp: "2026-01-02T03:04:05.678Z",
            requestContext: { requestId: "req-1", functionArn: "fn", condition: "RetriesExhausted", approximateInvokeCount: 3 },
            requestPayload: { a: 1 },
            responseContext: { statusCode: 200, executedVersion: "$LATEST", functionError: "Unhandled" },
            responsePayload: { errorType: "Error", errorMessage: "boom" },
        });
    });

    it("fires every schedule once per interval, the first a full interval after the start; none without schedules", () => {
        const s = new Schedules(["r1", "r2"], 5000, 1000);
        expect(s.due(5999)).to.deep.equal([]);
        expect(s.due(6000)).to.deep.equal(["r1", "r2"]);
        expect(s.due(10999)).to.deep.equal([]);
        expect(s.due(11000)).to.deep.equal(["r1", "r2"]);
        expect(s.ticks).to.equal(4);
        const none = new Schedules([], 5000, 0);
        expect(none.due(1e9)).to.deep.equal([]);
        expect(none.ticks).to.equal(0);
    });
});

describe("npm run local: ECS tasks → workers (TaskFleet)", () => {
    const container = { name: "render", environment: [{ name: "QUEUE_URL", value: "fake-q" }, { name: "MODE", value: "drain" }] };

    it("takes the container's environment with the emulator's values; RunTask overrides and fixed values win in that order", () => {
        const base = containerEnvironment(container, [["fake-q", "http://moto/q"]]);
        expect(base).to.deep.equal({ QUEUE_URL: "http://moto/q", MODE: "drain" });
        const overrides = {
            containerOverrides: [
                { name: "other", environment: [{ name: "MODE", value: "nope" }] },
                { name: "render", environment: [{ name: "MODE", value: "per-job" }, { name: "JOB_KEY", value: "in/a.zip" }, { name: "AWS_REGION", value: "x" }] },
            ],
        };
        expect(taskEnvironment(base, overrides, "render", { AWS_REGION: "us-east-1" })).to.deep.equal({
            QUEUE_URL: "http://moto/q",
            MODE: "per-job",
            JOB_KEY: "in/a.zip",
            AWS_REGION: "us-east-1",
        });
        expect(taskEnvironment(base, undefined, "render", {})).to.deep.equal(base);
        expect(taskIdOf("arn:aws:ecs:us-east-1:123456789012:task/cluster/abc123")).to.equal("abc123");
    });

    const wanted: [string | undefined, number, number, number, number][] = [
        // maxTasks, visible, inFlight, running → tasks to start
        ["3", 0, 5, 0, 0],
        ["3", 2, 0, 0, 2],
        ["3", 5, 1, 1, 2],
        ["3", 5, 0, 3, 0],
        [undefined, 4, 0, 0, 1],
        ["50", 40, 0, 0, 10],
    ];
    for (const [max, visible, inFlight, running, expected] of wanted) {
        it(`service mode: maxTasks ${max}, ${visible} waiting, ${inFlight} held, ${running} running → starts ${expected}`, () => {
            expect(serviceTasksWanted(max, visible, inFlight, running)).to.equal(expected);
        });
    }

    function fleet(taskArns: string[], stopping = () => false) {
        const sent: any[] = [];
        const started: { spec: TaskSpec; exit: (code: number) => void }[] = [];
        const tasks = new Map<string, RunningTask>();
        const lines: string[] = [];
        const ecs = {
            send: async (cmd: any) => {
                sent.push({ command: cmd.constructor.name, input: cmd.input });
                if (cmd.constructor.name === "ListTasksCommand") return { taskArns };
                if (cmd.constructor.name === "DescribeTasksCommand") {
                    return { tasks: cmd.input.tasks.map((taskArn: string) => ({ taskArn, overrides: { containerOverrides: [{ name: "render", environment: [{ name: "JOB_KEY", value: taskArn }] }] } })) };
                }
                return {};
            },
        };
        const runner: Runner = {
            kind: "process",
            describe: "fake",
            start(spec) {
                let exit!: (code: number) => void;
                const exited = new Promise<number>((r) => (exit = r));
                started.push({ spec, exit });
                return { spec, pid: 42, exited, stop: async () => 0, killNow: () => undefined };
            },
        };
        const f = new TaskFleet({
            ecs: ecs as any,
            clusterArn: "cluster-arn",
            runner,
            container,
            containerEnv: { MODE: "drain" },
            fixedEnv: { WORKER_WAIT_SECONDS: "1" },
            logsDir: "/logs",
            log: (l) => lines.push(l),
            tasks,
            stopping,
        });
        return { f, sent, started, tasks, lines };
    }

    it("starts one worker per new RUNNING task, once, with its overrides; on its exit stops the task and reports the exit", async () => {
        const { f, sent, started, tasks, lines } = fleet(["arn:task/c/t1", "arn:task/c/t2"]);
        const exits: TaskExit[] = [];
        f.onExit((e) => exits.push(e));
        await f.poll();
        await f.poll();
        expect(started.map((s) => [s.spec.id, s.spec.env])).to.deep.equal([
            ["t1", { MODE: "drain", JOB_KEY: "arn:task/c/t1", WORKER_WAIT_SECONDS: "1" }],
            ["t2", { MODE: "drain", JOB_KEY: "arn:task/c/t2", WORKER_WAIT_SECONDS: "1" }],
        ]);
        expect([f.started, f.running, [...tasks.keys()]]).to.deep.equal([2, 2, ["arn:task/c/t1", "arn:task/c/t2"]]);
        expect(sent.filter((s) => s.command === "DescribeTasksCommand")).to.have.length(1);

        started[0].exit(3);
        await new Promise((r) => setTimeout(r, 10));
        expect(exits).to.deep.equal([{ arn: "arn:task/c/t1", id: "t1", code: 3, stopping: false, tookJob: true, stderr: [] }]);
        expect(f.running).to.equal(1);
        expect(sent.at(-1)).to.deep.equal({ command: "StopTaskCommand", input: { cluster: "cluster-arn", task: "arn:task/c/t1", reason: "worker exited with 3" } });
        expect(lines).to.deep.equal(["task t1 started (process pid 42)", "task t2 started (process pid 42)", "task t1 exited with 3"]);
    });

    it("GIVEN the run is stopping THEN no worker starts and exits are reported as asked for, not logged", async () => {
        let stop = false;
        const { f, started, lines } = fleet(["arn:task/c/t1"], () => stop);
        const exits: TaskExit[] = [];
        f.onExit((e) => exits.push(e));
        await f.poll();
        stop = true;
        started[0].exit(143);
        await new Promise((r) => setTimeout(r, 10));
        expect(exits).to.deep.equal([{ arn: "arn:task/c/t1", id: "t1", code: 143, stopping: true, tookJob: true, stderr: [] }]);
        expect(lines).to.deep.equal(["task t1 started (process pid 42)"]);

        const later = fleet(["arn:task/c/t9"], () => true);
        await later.f.poll();
        expect(later.started).to.deep.equal([]);
    });

    it("service mode: RunTask for the wanted count on the stack's network, startedBy ecs-svc/local", async () => {
        const { f, sent } = fleet([]);
        await f.scaleService({ taskDefinitionArn: "td-arn", subnets: ["s1"], securityGroups: ["g1"], maxTasks: "4" }, 3, 0);
        await f.scaleService({ taskDefinitionArn: "td-arn", subnets: ["s1"], securityGroups: ["g1"], maxTasks: "4" }, 0, 3);
        expect(sent).to.deep.equal([
            {
                command: "RunTaskCommand",
                input: {
                    cluster: "cluster-arn",
                    taskDefinition: "td-arn",
                    count: 3,
                    launchType: "FARGATE",
                    startedBy: "ecs-svc/local",
                    networkConfiguration: { awsvpcConfiguration: { subnets: ["s1"], securityGroups: ["g1"], assignPublicIp: "ENABLED" } },
                },
            },
        ]);
    });
});

describe("npm run local: setup and summary (pure parts)", () => {
    it("evaluates the stack with --config pairs and --max-tasks as maxTasks", () => {
        expect(stackOverrides({ config: { inputPrefix: "in/", maxTasks: "2" } })).to.deep.equal({ inputPrefix: "in/", maxTasks: "2" });
        expect(stackOverrides({ config: { maxTasks: "2" }, maxTasks: 5 })).to.deep.equal({ maxTasks: "5" });
    });

    it("rejects an input that is not a file, naming it", () => {
        expect(() => checkInputs([__filename])).not.to.throw();
        expect(() => checkInputs([__filename, "/no/such.zip"])).to.throw("no such file: /no/such.zip");
        expect(() => checkInputs([__dirname])).to.throw(`no such file: ${__dirname}`);
    });

    it("notes where the run departs from the stack: schedules, service mode, stale image, scratch dirs", () => {
        const em = {
            p: { notes: ["emulator note"], launcherEnv: { LAUNCH_MODE: "service" } },
            declared: { schedules: [{ rule: "r-0", scheduleExpression: "rate(1 minute)", intervalSeconds: 60 }] },
        } as any;
        expect(runNotes({ workerWaitSeconds: 1, reconcileSeconds: 5 }, em, "process", "image is stale")).to.deep.equal([
            "emulator note",
            "WORKER_WAIT_SECONDS=1 for quick drain-and-exit",
            "schedule r-0 (rate(1 minute)) invokes the launcher every 5 s",
            "launchMode service: the local runner stands in for the ECS service's queue-depth scaling",
            "image is stale",
            "WORKER_SCRATCH_DIR: a temp dir per task (local processes)",
        ]);
        const drain = { p: { notes: [], launcherEnv: { LAUNCH_MODE: "drain" } }, declared: { schedules: [] } } as any;
        expect(runNotes({ workerWaitSeconds: 2, reconcileSeconds: 5 }, drain, "podman")).to.deep.equal(["WORKER_WAIT_SECONDS=2 for quick drain-and-exit"]);
    });

    it("sums up: ok iff every job is done; phases from the timeline", () => {
        const facts = {
            runId: "r",
            endpoint: "http://127.0.0.1:1",
            runner: "process",
            outDir: "/o",
            logsDir: "/o/.logs/r",
            tasksStarted: 2,
            launcherInvocations: 3,
            scheduledInvocations: 1,
            jobs: [{ job: "a", input: "a.zip", status: "done" as const, seconds: 1 }],
            startFailures: [],
            notes: [],
        };
        const s = buildSummary(facts, { started: 1000, setUp: 3000, settled: 8000, ended: 8500 });
        expect(s).to.deep.include({ ok: true, seconds: 7.5, phases: { setupSeconds: 2, jobsSeconds: 5, shutdownSeconds: 0.5 }, tasksStarted: 2 });
        const failed = buildSummary({ ...facts, jobs: [...facts.jobs, { job: "b", input: "b.zip", status: "failed", seconds: 1 }] }, { started: 0, setUp: 0, settled: 0, ended: 0 });
        expect(failed.ok).to.equal(false);
    });
});

describe("npm run local: cleanup (Cleanup)", () => {
    it("stops tasks, then the launcher, then the emulator, once however often it is called, and removes the run's dirs", async () => {
        const order: string[] = [];
        const c = new Cleanup();
        const stoppable = (name: string) => ({ stop: async () => void order.push(name), killNow: () => void order.push(`kill ${name}`) });
        c.tasks.set("t", {
            spec: { id: "t", env: {}, container: {} },
            exited: Promise.resolve(0),
            stop: async () => (order.push("task"), 0),
            killNow: () => void order.push("kill task"),
        });
        c.launcher = stoppable("launcher");
        c.moto = stoppable("moto");
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cleanup-unit-"));
        c.dirs.push(dir);
        await Promise.all([c.run(), c.run()]);
        await c.run();
        expect(order).to.deep.equal(["task", "launcher", "moto"]);
        expect(fs.existsSync(dir)).to.equal(false);
        c.killNow();
        expect(order.slice(3)).to.deep.equal(["kill task", "kill launcher", "kill moto"]);
    });
});

describe("npm run local: fail fast when workers cannot start (start-failures.ts)", () => {
    const exit = (id: string, code: number, tookJob: boolean, stderr: string[] = [], stopping = false): WorkerExit => ({ id, code, tookJob, stderr, stopping });
    const CATATONIT = "Error: container-init binary not found on the host: stat /usr/libexec/podman/catatonit: no such file or directory";

    for (const [title, e, kind] of [
        ["exit 0 after draining", exit("t", 0, true), "drained"],
        ["exit 0 without a job (queue already empty)", exit("t", 0, false), "drained"],
        ["non-zero after taking a job (redelivered, reconcile starts another)", exit("t", 1, true), "crashed"],
        ["podman's 125 before any job", exit("t", 125, false), "start-failure"],
        ["spawn's ENOENT (127) before any job", exit("t", 127, false), "start-failure"],
        ["any exit while the run stops", exit("t", 143, false, [], true), "stopped"],
    ] as const) {
        it(`reads ${title} as ${kind}`, () => expect(exitKind(e)).to.equal(kind));
    }

    it("GIVEN every task so far failed to start and jobs wait THEN the run's error names the task, its exit code and podman's error", () => {
        const exits = [exit("t1", 125, false, ["time=x level=warning msg=\"cgroup\"", CATATONIT]), exit("t2", 125, false, [CATATONIT])];
        expect(startFailureVerdict(exits, 2, 2)).to.equal(`no worker could start: ${CATATONIT} (task t2 exited with 125 before taking a job; 2 tasks tried)`);
        expect(startFailureVerdict(exits.slice(0, 1), 1, 1)).to.equal(`no worker could start: ${CATATONIT} (task t1 exited with 125 before taking a job; 1 task tried)`);
        expect(startFailureVerdict([exit("t3", 1, false)], 1, 1)).to.equal("no worker could start: nothing on stderr (task t3 exited with 1 before taking a job; 1 task tried)");
    });

    for (const [title, exits, started, waiting] of [
        ["a task still runs (it may take the jobs)", [exit("t1", 125, false)], 2, 2],
        ["no job waits", [exit("t1", 125, false)], 1, 0],
        ["a task took a job before crashing", [exit("t1", 1, true), exit("t2", 125, false)], 2, 1],
        ["a task drained", [exit("t1", 0, false), exit("t2", 125, false)], 2, 1],
        ["no task exited yet", [], 1, 1],
        ["the failures came while stopping", [exit("t1", 143, false, [], true)], 1, 1],
    ] as const) {
        it(`GIVEN ${title} THEN the run goes on`, () => expect(startFailureVerdict([...exits], started, waiting)).to.equal(undefined));
    }

    it("picks the stderr line that names the error, else the last non-empty one", () => {
        expect(errorLine(["Trying to pull...", CATATONIT, ""])).to.equal(CATATONIT);
        expect(errorLine(["/app/main.js:3", "Error: boom", "    at main (/app/main.js:3:9)", "", "Node.js v22.20.0"])).to.equal("Error: boom");
        expect(errorLine(["something odd", "  "])).to.equal("something odd");
        expect(errorLine([])).to.equal(undefined);
    });

    it("reports a start failure at once with its stderr tail; the run's error is set when the last running task fails too", () => {
        const lines: string[] = [];
        const f = new StartFailures((l) => lines.push(l));
        f.record(exit("t1", 0, true), 3, 2);
        f.record(exit("t2", 125, false, ["warning: x", CATATONIT]), 3, 2);
        expect(f.error).to.equal(undefined);
        expect(lines).to.deep.equal([
            `task t2 exited with 125 before taking a job: ${CATATONIT}`,
            "  last stderr lines of task t2:",
            "    warning: x",
            `    ${CATATONIT}`,
        ]);
        expect(f.failures).to.deep.equal([{ task: "t2", code: 125, stderr: ["warning: x", CATATONIT] }]);

        const g = new StartFailures(() => undefined);
        g.record(exit("t1", 127, false, ["spawn podman ENOENT"]), 2, 1);
        expect(g.error).to.equal(undefined);
        g.record(exit("t2", 127, false, ["spawn podman ENOENT"]), 2, 1);
        expect(g.error).to.equal("no worker could start: spawn podman ENOENT (task t2 exited with 127 before taking a job; 2 tasks tried)");
    });

    it("keeps the last 20 stderr lines across chunks, an unterminated last line included", () => {
        const t = new LineTail(20);
        t.push(Array.from({ length: 30 }, (_, i) => `line ${i}`).join("\n").slice(0, -1));
        t.push("9\r\nlast, no newline");
        expect(t.get()).to.deep.equal([...Array.from({ length: 19 }, (_, i) => `line ${i + 11}`), "last, no newline"]);
    });

    it("sees a job taken at the worker's first \"received\" event, split across chunks; other events and text do not count", () => {
        const w = new TookJobWatch();
        w.push('{"time":"t","event":"started","queueUrl":"q"}\nnot json "event"\n{"event":"receive_failed"}\n');
        expect(w.tookJob).to.equal(false);
        w.push('{"time":"t","event":"rece');
        expect(w.tookJob).to.equal(false);
        w.push('ived","messageId":"m"}\n');
        expect(w.tookJob).to.equal(true);
    });
});

describe("npm run local: the applier table (appliers.ts)", () => {
    it("GIVEN a declared resource type with no applier THEN the run fails naming the type and the resource", async () => {
        const err = await applyDeclared([{ type: "aws:sns/topic:Topic", name: "alerts", id: "alerts-id", inputs: {} }], {
            c: {} as any, endpoint: "http://127.0.0.1:1", region: "us-east-1", replacements: [], vpcId: "vpc-1", subnets: [], notes: [],
        }).then(() => undefined, (e: Error) => e);
        expect(err?.message).to.match(/declares aws:sns\/topic:Topic alerts, which npm run local cannot apply/);
    });
    it("GIVEN a schedule rule THEN the emulator gets it with a pattern no event has (moto matches every event to a rule without one; AWS none)", () => {
        expect(emulatorRule("render-reconcile", { scheduleExpression: "rate(1 minute)", description: "d" })).to.deep.equal({
            Name: "render-reconcile",
            EventBusName: undefined,
            Description: "d",
            EventPattern: SCHEDULE_ONLY_PATTERN,
            ScheduleExpression: "rate(1 minute)",
            State: undefined,
        });
        expect(JSON.parse(SCHEDULE_ONLY_PATTERN)).to.deep.equal({ source: ["lambda-ecs-worker.local.schedule-only"] });
        // A rule with a pattern keeps it.
        expect(emulatorRule("r", { eventPattern: '{"source":["aws.ecs"]}', isEnabled: false })).to.include({ EventPattern: '{"source":["aws.ecs"]}', State: "DISABLED" });
    });
    it("GIVEN a component resource and types provision() applies THEN they are recorded as applied without a call", async () => {
        const out = await applyDeclared(
            [
                { type: "lambda-ecs-worker:index:LambdaEcsWorker", name: "render", id: "render-id", inputs: {} },
                { type: "aws:sqs/queue:Queue", name: "render-queue", id: "render-queue-id", inputs: {} },
            ],
            { c: {} as any, endpoint: "http://127.0.0.1:1", region: "us-east-1", replacements: [], vpcId: "vpc-1", subnets: [], notes: [] },
        );
        expect(out.map((r) => [r.name, r.status])).to.deep.equal([["render", "applied"], ["render-queue", "applied"]]);
    });
});

describe("npm run local: ECS's task state change events (ecs-events.ts)", () => {
    const task = {
        taskArn: "arn:aws:ecs:us-east-1:123456789012:task/c/t1",
        clusterArn: "arn:aws:ecs:us-east-1:123456789012:cluster/c",
        taskDefinitionArn: "arn:aws:ecs:us-east-1:123456789012:task-definition/f:1",
        startedBy: "lew-render",
        lastStatus: "RUNNING",
        desiredStatus: "RUNNING",
        createdAt: new Date("2026-01-01T00:00:00Z"),
        version: 2,
        containers: [{ name: "worker", containerArn: "arn:c", lastStatus: "RUNNING", exitCode: 0, environment: [{ name: "QUEUE_URL", value: "q" }], command: ["x"] }],
        overrides: { containerOverrides: [{ name: "worker", environment: [{ name: "JOB_BUCKET", value: "b" }, { name: "JOB_KEY", value: "k.zip" }] }] },
    } as any;

    it("GIVEN a task whose worker exited THEN the event is ECS's: source aws.ecs, the task ARN as resource, the task STOPPED with EssentialContainerExited and the worker's exit code, its overrides kept", () => {
        const now = new Date("2026-01-01T00:05:00Z");
        const entry = taskStoppedEntry(task, "worker", 137, now);
        expect(entry).to.deep.include({ Source: "aws.ecs", DetailType: "ECS Task State Change", Resources: [task.taskArn], Time: now });
        const detail = JSON.parse(entry.Detail);
        expect(detail).to.deep.include({
            taskArn: task.taskArn,
            clusterArn: task.clusterArn,
            startedBy: "lew-render",
            lastStatus: "STOPPED",
            desiredStatus: "STOPPED",
            stopCode: "EssentialContainerExited",
            stoppedReason: "Essential container in task exited",
            createdAt: "2026-01-01T00:00:00.000Z",
            stoppedAt: "2026-01-01T00:05:00.000Z",
            overrides: task.overrides,
            version: 5,
        });
        // An event's containers carry no environment or command; the worker's has its exit code.
        expect(detail.containers).to.deep.equal([{ name: "worker", containerArn: "arn:c", lastStatus: "STOPPED", exitCode: 137 }]);
    });

    it("GIVEN no described container of that name THEN the worker's container is added with its exit code", () => {
        const detail = taskStoppedDetail({ ...task, containers: [] }, "worker", 1);
        expect(detail.containers).to.deep.equal([{ name: "worker", taskArn: task.taskArn, lastStatus: "STOPPED", exitCode: 1 }]);
    });
});
