/**
 * Issue #11's worker parts alone: EMF metric lines (metrics.ts) against CloudWatch's documented shape, job events
 * (events.ts) with EventBridge mocked by aws-sdk-client-mock, the settle → "job ended" mapping, and task scale-in
 * protection (protection.ts) against a local HTTP server standing in for the ECS agent's endpoint, with the answers
 * the ECS developer guide documents (protection, failure TASK_NOT_VALID, error AccessDeniedException/ThrottlingException).
 */
import { expect } from "chai";
import * as http from "http";
import { AddressInfo } from "net";

import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { mockClient } from "aws-sdk-client-mock";

import { DETAIL_TYPE, FinishedJob, JobReporter, eventSettingsFromEnv, finishedJobs, jobEventEntry } from "../worker-image/src/events";
import { jobId } from "../worker-image/src/binding";
import { Outcome } from "../worker-image/src/job";
import { DEFAULT_METRICS_NAMESPACE, emfRecord, jobMetricsRecord } from "../worker-image/src/metrics";
import { TaskProtection, parseProtectionAnswer, protectionFromEnv, protectionMinutes } from "../worker-image/src/protection";
import { recorder } from "./helpers/log-recorder";

const REGION = { region: "us-east-1", credentials: { accessKeyId: "test", secretAccessKey: "test" } };

/** Checks a record against the EMF specification's rules (root members for every dimension and metric). */
function assertEmf(rec: any): void {
    expect(rec._aws).to.be.an("object");
    expect(rec._aws.Timestamp).to.be.a("number");
    expect(Number.isInteger(rec._aws.Timestamp)).to.equal(true);
    expect(rec._aws.CloudWatchMetrics).to.be.an("array").that.is.not.empty;
    for (const d of rec._aws.CloudWatchMetrics) {
        expect(d.Namespace).to.be.a("string").that.is.not.empty;
        expect(d.Dimensions).to.be.an("array");
        for (const set of d.Dimensions) {
            expect(set.length).to.be.within(1, 30);
            for (const name of set) expect(rec[name], `dimension ${name}`).to.be.a("string");
        }
        for (const m of d.Metrics) {
            expect(Object.keys(m).sort()).to.deep.equal(["Name", "Unit"]);
            expect(rec[m.Name], `metric ${m.Name}`).to.be.a("number");
        }
    }
}

describe("worker metrics: CloudWatch Embedded Metric Format", function () {
    it("a succeeded job: one directive on [Worker], JobSeconds/JobsSucceeded/BytesIn/BytesOut, Timestamp in ms", function () {
        const rec = jobMetricsRecord("NS", { worker: "render", succeeded: true, seconds: 1.5, bytesIn: 10, bytesOut: 20 }, 1700000000123.7) as any;
        assertEmf(rec);
        expect(rec).to.deep.equal({
            _aws: {
                Timestamp: 1700000000123,
                CloudWatchMetrics: [
                    {
                        Namespace: "NS",
                        Dimensions: [["Worker"]],
                        Metrics: [
                            { Name: "JobSeconds", Unit: "Seconds" },
                            { Name: "JobsSucceeded", Unit: "Count" },
                            { Name: "BytesIn", Unit: "Bytes" },
                            { Name: "BytesOut", Unit: "Bytes" },
                        ],
                    },
                ],
            },
            Worker: "render",
            JobSeconds: 1.5,
            JobsSucceeded: 1,
            BytesIn: 10,
            BytesOut: 20,
        });
    });

    it("a failed job: JobsFailed on [Worker] and on [Worker, FailureClass]", function () {
        const rec = jobMetricsRecord("NS", { worker: "w", succeeded: false, failureClass: "timeout", seconds: 3, bytesIn: 1, bytesOut: 0 }) as any;
        assertEmf(rec);
        expect(rec._aws.CloudWatchMetrics.map((d: any) => d.Dimensions)).to.deep.equal([[["Worker"]], [["Worker", "FailureClass"]]]);
        expect(rec._aws.CloudWatchMetrics[1].Metrics).to.deep.equal([{ Name: "JobsFailed", Unit: "Count" }]);
        expect(rec.FailureClass).to.equal("timeout");
        expect(rec.JobsFailed).to.equal(1);
        expect(rec).not.to.have.property("JobsSucceeded");
    });

    it("extra properties stay root members that are not metrics", function () {
        const rec = emfRecord("NS", { Worker: "w" }, [{ dimensions: [["Worker"]], metrics: [{ name: "X", unit: "Count", value: 2 }] }], 5, { key: "a/b.zip" }) as any;
        assertEmf(rec);
        expect(rec.key).to.equal("a/b.zip");
        expect(rec._aws.CloudWatchMetrics[0].Metrics.map((m: any) => m.Name)).to.deep.equal(["X"]);
    });
});

describe("worker job events", function () {
    const settings = { busName: "jobs-bus", source: "lambda-ecs-worker.render", worker: "render", namespace: "NS" };
    const ok: FinishedJob = { job: { bucket: "b", key: "in/a.zip" }, attempts: 1, stats: { seconds: 2.0004, bytesIn: 5, bytesOut: 7, outputs: ["in/a.png", "in/a.log"] } };
    const failed: FinishedJob = {
        job: { bucket: "b", key: "in/a.zip", jobId: "abc" },
        attempts: 3,
        stats: { seconds: 1 },
        failure: { failureClass: "permanent", reason: "bad scene", errorReport: true },
    };

    it("settings from the environment: no bus → no events; source defaults from WORKER_NAME; a bad source is named", function () {
        expect(eventSettingsFromEnv({}, "povray")).to.deep.equal({ busName: undefined, source: "lambda-ecs-worker.povray", worker: "povray", namespace: DEFAULT_METRICS_NAMESPACE });
        expect(eventSettingsFromEnv({ EVENT_BUS_NAME: "default", WORKER_NAME: "render", METRICS_NAMESPACE: "X" }, "povray")).to.deep.equal({
            busName: "default",
            source: "lambda-ecs-worker.render",
            worker: "render",
            namespace: "X",
        });
        expect(() => eventSettingsFromEnv({ EVENT_SOURCE: "aws.s3" }, "p")).to.throw(/EVENT_SOURCE/);
    });

    it("detail: Job Succeeded with outputs and seconds; Job Failed with reason, class, the error report and jobId", function () {
        const r = new JobReporter(settings, { log: () => undefined, keys: { inputPrefix: "in/", outputPrefix: "out/" } });
        expect(r.detail(ok)).to.deep.equal({ worker: "render", bucket: "b", key: "in/a.zip", outputs: ["in/a.png", "in/a.log"], seconds: 2, attempts: 1 });
        expect(r.detail(failed)).to.deep.equal({
            worker: "render",
            bucket: "b",
            key: "in/a.zip",
            outputs: ["out/a.error.json"],
            seconds: 1,
            attempts: 3,
            reason: "bad scene",
            failureClass: "permanent",
            jobId: "abc",
        });
        const entry = jobEventEntry(settings, r.detail(failed));
        expect(entry).to.include({ EventBusName: "jobs-bus", Source: "lambda-ecs-worker.render", DetailType: DETAIL_TYPE.failed });
        expect(jobEventEntry(settings, r.detail(ok)).DetailType).to.equal("Job Succeeded");
    });

    it("publishes one PutEvents entry per finished job and writes one EMF line each", async function () {
        const eb = mockClient(EventBridgeClient);
        eb.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: "e1" }] });
        const { log, lines } = recorder();
        const r = new JobReporter(settings, { log, eventBridge: new EventBridgeClient(REGION) });
        await r.finished([ok, failed]);
        const calls = eb.commandCalls(PutEventsCommand).map((c) => c.args[0].input.Entries!);
        expect(calls.map((e) => e.length)).to.deep.equal([1, 1]);
        expect(calls.map((e) => e[0].DetailType).sort()).to.deep.equal(["Job Failed", "Job Succeeded"]);
        expect(JSON.parse(calls.find((e) => e[0].DetailType === "Job Failed")![0].Detail!).reason).to.equal("bad scene");
        const metrics = lines.filter((l) => l.event === "job_metrics");
        expect(metrics).to.have.length(2);
        for (const m of metrics) assertEmf(m);
        expect(lines.filter((l) => l.event === "job_event_published")).to.have.length(2);
        eb.restore();
    });

    it("retries a failed entry and a thrown error, then logs job_event_failed and never throws", async function () {
        const eb = mockClient(EventBridgeClient);
        eb.on(PutEventsCommand)
            .resolvesOnce({ FailedEntryCount: 1, Entries: [{ ErrorCode: "ThrottlingException", ErrorMessage: "slow down" }] })
            .rejectsOnce(Object.assign(new Error("boom"), { name: "InternalException" }))
            .rejects(Object.assign(new Error("still down"), { name: "InternalException" }));
        const { log, lines } = recorder();
        const r = new JobReporter(settings, { log, eventBridge: new EventBridgeClient(REGION), attempts: 3, baseDelayMs: 1 });
        await r.finished([ok]);
        expect(eb.commandCalls(PutEventsCommand)).to.have.length(3);
        const fail = lines.find((l) => l.event === "job_event_failed")!;
        expect(fail).to.include({ detailType: "Job Succeeded", key: "in/a.zip", attempts: 3 });
        expect(String(fail.reason)).to.match(/still down/);
        expect(lines.filter((l) => l.event === "job_metrics")).to.have.length(1);
        eb.restore();
    });

    it("a retried entry that then succeeds is published once", async function () {
        const eb = mockClient(EventBridgeClient);
        eb.on(PutEventsCommand)
            .resolvesOnce({ FailedEntryCount: 1, Entries: [{ ErrorCode: "InternalFailure" }] })
            .resolves({ FailedEntryCount: 0, Entries: [{ EventId: "e2" }] });
        const { log, lines } = recorder();
        await new JobReporter(settings, { log, eventBridge: new EventBridgeClient(REGION), baseDelayMs: 1 }).finished([ok]);
        expect(eb.commandCalls(PutEventsCommand)).to.have.length(2);
        expect(lines.filter((l) => l.event === "job_event_published")).to.have.length(1);
        expect(lines.filter((l) => l.event === "job_event_failed")).to.have.length(0);
        eb.restore();
    });

    it("without a bus: metrics only, no PutEvents", async function () {
        const eb = mockClient(EventBridgeClient);
        const { log, lines } = recorder();
        await new JobReporter({ ...settings, busName: undefined }, { log, eventBridge: new EventBridgeClient(REGION) }).finished([ok]);
        expect(eb.commandCalls(PutEventsCommand)).to.have.length(0);
        expect(lines.map((l) => l.event)).to.deep.equal(["job_metrics"]);
        eb.restore();
    });

    it("finishedJobs: ok and failures end; aborted and stale do not; error reports only where the settler writes them", function () {
        const jobs = [
            { bucket: "b", key: "1" },
            { bucket: "b", key: "2" },
            { bucket: "b", key: "3" },
            { bucket: "b", key: "4" },
        ];
        const outcomes = [
            { status: "ok" },
            { status: "transient", job: jobs[1], reason: "503" },
            { status: "stale", job: jobs[2], reason: "changed" },
            { status: "timeout", job: jobs[3], reason: "too long" },
        ] as Outcome[];
        const out = finishedJobs(jobs, outcomes, 3, (s) => s !== "transient");
        expect(out.map((f) => [f.job.key, f.failure?.failureClass, f.failure?.errorReport])).to.deep.equal([
            ["1", undefined, undefined],
            ["2", "transient", false],
            ["4", "timeout", true],
        ]);
        expect(finishedJobs(jobs.slice(0, 1), [{ status: "aborted" }], 1, () => true)).to.deep.equal([]);
    });

    it("finishedJobs: a direct job (no ETag in its message) ends with the job as bound, so its event's jobId is the downloaded version's", function () {
        const bound = { bucket: "b", key: "direct.zip", etag: "0123abcd" };
        const [f] = finishedJobs([{ bucket: "b", key: "direct.zip" }], [{ status: "ok", job: bound } as Outcome], 1, () => true);
        expect(f.job).to.deep.equal(bound);
        expect(new JobReporter({ busName: "default", source: "lambda-ecs-worker.w", worker: "w", namespace: "N" } as any, { log: () => {}, jobIdOf: jobId } as any).detail(f).jobId)
            .to.equal(jobId(bound));
    });
});

/** A stand-in for the ECS agent's task protection endpoint: answers each PUT with the next scripted reply. */
async function fakeAgent(replies: Array<{ status: number; body: unknown } | "hang">) {
    const requests: Array<{ method: string; url: string; body: any; contentType?: string }> = [];
    let i = 0;
    const server = http.createServer((req, res) => {
        let data = "";
        req.on("data", (d) => (data += d));
        req.on("end", () => {
            requests.push({ method: req.method!, url: req.url!, body: data ? JSON.parse(data) : undefined, contentType: req.headers["content-type"] });
            const reply = replies[Math.min(i++, replies.length - 1)];
            if (reply === "hang") return;
            res.writeHead(reply.status, { "Content-Type": "application/json" });
            res.end(typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body));
        });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/task-id`;
    return { uri, requests, close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))) };
}

const TASK = "arn:aws:ecs:us-east-1:123456789012:task/c/0123456789abcdef";
const protectedReply = (enabled: boolean, at = "2030-01-01T00:00:00Z") => ({ status: 200, body: { protection: { ExpirationDate: enabled ? at : null, ProtectionEnabled: enabled, TaskArn: TASK } } });

describe("worker task scale-in protection (ECS agent endpoint stand-in)", function () {
    it("settings: only with TASK_PROTECTION=on; expiry = job timeout + margin, in the agent's 1..2880 minutes", function () {
        const { log, lines } = recorder();
        expect(protectionFromEnv({ ECS_AGENT_URI: "http://x" }, 3600, log)).to.equal(undefined);
        expect(protectionFromEnv({ TASK_PROTECTION: "off", ECS_AGENT_URI: "http://x" }, 3600, log)).to.equal(undefined);
        expect(protectionFromEnv({ TASK_PROTECTION: "on", ECS_AGENT_URI: "http://x/" }, 3600, log)).to.deep.equal({ agentUri: "http://x", expiresInMinutes: 70 });
        expect(protectionFromEnv({ TASK_PROTECTION: "on" }, 3600, log)).to.equal(undefined);
        expect(lines.map((l) => l.event)).to.deep.equal(["task_protection_unavailable"]);
        expect(() => protectionFromEnv({ TASK_PROTECTION: "maybe" }, 60, log)).to.throw(/TASK_PROTECTION must be on or off/);
        expect([protectionMinutes(1), protectionMinutes(61), protectionMinutes(43200 * 10)]).to.deep.equal([11, 12, 2880]);
    });

    it("reads the documented answers: protection, failure (TASK_NOT_VALID), error (Code/Message), non-JSON", function () {
        expect(parseProtectionAnswer(200, JSON.stringify(protectedReply(true).body))).to.deep.equal({ ok: true, enabled: true, expiresAt: Date.parse("2030-01-01T00:00:00Z") });
        expect(parseProtectionAnswer(200, JSON.stringify({ failure: { Arn: TASK, Detail: null, Reason: "TASK_NOT_VALID" } }))).to.deep.equal({ ok: false, reason: "failure TASK_NOT_VALID" });
        expect(parseProtectionAnswer(400, JSON.stringify({ requestID: "r", error: { Arn: TASK, Code: "AccessDeniedException", Message: "not authorized" } }))).to.deep.equal({
            ok: false,
            reason: "error AccessDeniedException: not authorized",
        });
        expect(parseProtectionAnswer(502, "Bad Gateway")).to.deep.equal({ ok: false, reason: "HTTP 502: Bad Gateway" });
    });

    it("PUTs protection when it goes busy and clears it when idle; overlapping messages make no extra call", async function () {
        const agent = await fakeAgent([protectedReply(true), protectedReply(false)]);
        const { log, lines } = recorder();
        const p = new TaskProtection({ agentUri: agent.uri, expiresInMinutes: 70 }, { log });
        await p.busy();
        await p.busy(); // a second message while the first one finishes in the background
        await p.idle();
        await p.idle();
        await agent.close();
        expect(agent.requests).to.deep.equal([
            { method: "PUT", url: "/api/task-id/task-protection/v1/state", body: { ProtectionEnabled: true, ExpiresInMinutes: 70 }, contentType: "application/json" },
            { method: "PUT", url: "/api/task-id/task-protection/v1/state", body: { ProtectionEnabled: false }, contentType: "application/json" },
        ]);
        expect(lines.map((l) => [l.event, l.protectionEnabled])).to.deep.equal([
            ["task_protection", true],
            ["task_protection", false],
        ]);
    });

    it("while busy, extends the protection only when it would expire before a job started now could finish", async function () {
        let now = Date.parse("2030-01-01T00:00:00Z");
        const agent = await fakeAgent([{ status: 200, body: { protection: { ExpirationDate: "2030-01-01T01:10:00Z", ProtectionEnabled: true, TaskArn: TASK } } }]);
        const p = new TaskProtection({ agentUri: agent.uri, expiresInMinutes: 70 }, { log: () => undefined, now: () => now });
        await p.busy();
        now += 4 * 60000;
        await p.busy(); // 66 min left ≥ 65 needed
        now += 2 * 60000;
        await p.busy(); // 64 min left < 65: extend
        await agent.close();
        expect(agent.requests.map((r) => r.body)).to.deep.equal([
            { ProtectionEnabled: true, ExpiresInMinutes: 70 },
            { ProtectionEnabled: true, ExpiresInMinutes: 70 },
        ]);
    });

    for (const [title, reply, reason] of [
        ["failure TASK_NOT_VALID (a standalone task)", { status: 200, body: { failure: { Arn: TASK, Detail: null, Reason: "TASK_NOT_VALID" } } }, /TASK_NOT_VALID/],
        ["error AccessDeniedException", { status: 400, body: { requestID: "r", error: { Arn: TASK, Code: "AccessDeniedException", Message: "no ecs:UpdateTaskProtection" } } }, /AccessDeniedException/],
        ["error ThrottlingException", { status: 429, body: { requestID: "r", error: { Arn: TASK, Code: "ThrottlingException", Message: "Rate exceeded" } } }, /ThrottlingException/],
        ["error RequestCanceled (agent cannot reach ECS)", { status: 500, body: { error: { Arn: TASK, Code: "RequestCanceled", Message: "Timed out calling Amazon ECS Task Protection API" } } }, /RequestCanceled/],
        ["a non-JSON 503", { status: 503, body: "Service Unavailable" }, /HTTP 503/],
    ] as const) {
        it(`logs ${title}, goes on, and tries again at the next job`, async function () {
            const agent = await fakeAgent([reply, protectedReply(true)]);
            const { log, lines } = recorder();
            const p = new TaskProtection({ agentUri: agent.uri, expiresInMinutes: 70 }, { log });
            await p.busy(); // fails: never throws
            await p.busy(); // next job while still busy: tried again
            await agent.close();
            expect(agent.requests).to.have.length(2);
            const failed = lines.find((l) => l.event === "task_protection_failed")!;
            expect(failed.protectionEnabled).to.equal(true);
            expect(String(failed.reason)).to.match(reason);
            expect(lines.map((l) => l.event)).to.deep.equal(["task_protection_failed", "task_protection"]);
        });
    }

    it("an agent that does not answer times out (logged); an unreachable agent is logged; neither throws", async function () {
        const agent = await fakeAgent(["hang"]);
        const { log, lines } = recorder();
        await new TaskProtection({ agentUri: agent.uri, expiresInMinutes: 70 }, { log, timeoutMs: 200 }).busy();
        await agent.close();
        await new TaskProtection({ agentUri: agent.uri, expiresInMinutes: 70 }, { log }).busy();
        expect(lines.map((l) => l.event)).to.deep.equal(["task_protection_failed", "task_protection_failed"]);
    });

    it("never clears a protection it never set", async function () {
        const agent = await fakeAgent([{ status: 200, body: { failure: { Arn: TASK, Detail: null, Reason: "TASK_NOT_VALID" } } }]);
        const p = new TaskProtection({ agentUri: agent.uri, expiresInMinutes: 70 }, { log: () => undefined });
        await p.busy();
        await p.idle();
        await agent.close();
        expect(agent.requests).to.have.length(1);
    });
});
