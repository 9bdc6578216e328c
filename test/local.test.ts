/**
 * `npm run local` end to end: scene zips through the emulator, the launcher's code and real workers, as a child
 * process with `--json`; then no emulator, worker, launcher or container of the run may be left behind.
 */
import { expect } from "chai";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import * as yazl from "yazl";
import { requirePrerequisite } from "./helpers/prerequisite";

const ROOT = path.resolve(__dirname, "..");
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const TINY_POV = `#include "colors.inc"
camera { location <0, 1, -3> look_at 0 }
light_source { <2, 4, -3> color White }
sphere { 0, 1 pigment { color rgb <0.2, 0.5, 1> } }
plane { y, -1 pigment { checker color White color Gray50 } }
`;

function zip(entries: Record<string, string>, file: string): Promise<void> {
    const z = new yazl.ZipFile();
    for (const [name, text] of Object.entries(entries)) z.addBuffer(Buffer.from(text), name);
    z.end();
    return new Promise((resolve, reject) => {
        z.outputStream.pipe(fs.createWriteStream(file)).on("close", () => resolve()).on("error", reject);
    });
}

/** A 64x48 scene zip: `<name>.ini` + `scene.pov` at the top level. */
function tinySceneZip(dir: string, name: string): Promise<string> {
    const file = path.join(dir, `${name}.zip`);
    const ini = "Input_File_Name=scene.pov\nWidth=64\nHeight=48\nAntialias=Off\n";
    return zip({ [`${name}.ini`]: ini, "scene.pov": TINY_POV }, file).then(() => file);
}

interface Run {
    code: number | null;
    stdout: string;
    stderr: string;
}

/**
 * Runs `cli/main.ts local` as a child process (`env` added to ours); `onStdout` sees the stdout so far after each chunk,
 * `onStderr` the stderr so far (where the progress goes with --json).
 */
function runLocal(
    args: string[],
    onStdout?: (stdout: string, child: ReturnType<typeof spawn>) => void,
    env: Record<string, string> = {},
    onStderr?: (stderr: string, child: ReturnType<typeof spawn>) => void,
): Promise<Run> {
    return new Promise((resolve) => {
        const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", "cli/main.ts", "local", ...args], {
            cwd: ROOT,
            env: { ...process.env, TS_NODE_TRANSPILE_ONLY: "true", ...env },
            stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => {
            stdout += d;
            onStdout?.(stdout, child);
        });
        child.stderr.on("data", (d) => {
            stderr += d;
            onStderr?.(stderr, child);
        });
        child.on("exit", (code) => resolve({ code, stdout, stderr }));
    });
}

function listening(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const s = net.connect({ host: "127.0.0.1", port }, () => {
            s.destroy();
            resolve(true);
        });
        s.on("error", () => resolve(false));
    });
}

/** Processes whose command line contains `marker` (pgrep -f), this test's own processes excluded. */
function processesWith(marker: string): string[] {
    const r = spawnSync("pgrep", ["-af", marker], { encoding: "utf8" });
    return (r.stdout ?? "")
        .split("\n")
        .filter((l) => l.trim() !== "" && !l.includes("pgrep"));
}

function containersOf(runId: string): string[] {
    const r = spawnSync("podman", ["--runtime", "runc", "--cgroup-manager=cgroupfs", "ps", "-a", "-q", "--filter", `label=lew-local=${runId}`], {
        encoding: "utf8",
    });
    if (r.error) return []; // no podman on this machine: nothing can be left running in it
    return r.stdout.split("\n").filter((l) => l.trim() !== "");
}

async function expectNothingLeft(runId: string, endpoint: string): Promise<void> {
    const port = Number(new URL(endpoint).port);
    expect(await listening(port), `moto_server still listening on ${port}`).to.equal(false);
    expect(processesWith(`moto_server -H 127.0.0.1 -p ${port}`), "moto_server process").to.deep.equal([]);
    expect(processesWith(`--lew-local-run=${runId}`), "worker/launcher processes").to.deep.equal([]);
    expect(processesWith(`lew-local-${runId}-`), "povray of local workers (scratch dir of the run)").to.deep.equal([]);
    expect(containersOf(runId), "containers").to.deep.equal([]);
    expect(fs.readdirSync(os.tmpdir()).filter((d) => d.startsWith(`lew-local-${runId}-`)), "temp dir of the run").to.deep.equal([]);
}

describe("npm run local --plan: the emulator holds what the stack declares", function () {
    this.timeout(120000);

    it("GIVEN config overrides THEN queues, redrive, notification filters, task definition and launcher settings follow the component, with emulator ARNs/URLs", async () => {
        const run = await runLocal(["--plan", "--max-tasks", "3", "--config", "visibilityTimeoutSeconds=120", "--config", "maxReceiveCount=5", "--config", "inputPrefix=inbox/", "--config", "cpu=512", "--config", "memory=1024"]);
        expect(run.code, run.stderr).to.equal(0);
        const plan = JSON.parse(run.stdout);
        const endpoint: string = plan.endpoint;
        expect(plan.queue.url.startsWith(endpoint)).to.equal(true);
        expect(plan.queue.attributes.VisibilityTimeout).to.equal("120");
        // The worker dead-letters the 5th failed attempt itself; the redrive, one receive later, is the safety net.
        expect(JSON.parse(plan.queue.attributes.RedrivePolicy)).to.deep.equal({
            deadLetterTargetArn: plan.deadLetterQueue.attributes.QueueArn,
            maxReceiveCount: 6,
        });
        expect(plan.deadLetterQueue.attributes.MessageRetentionPeriod).to.equal("1209600");
        // drain mode: the launcher's reconcile schedule is emulated
        expect(plan.schedules.map((x: any) => x.scheduleExpression)).to.deep.equal(["rate(1 minute)"]);

        const [rule] = plan.notification.QueueConfigurations;
        expect(plan.notification.QueueConfigurations).to.have.length(1);
        // The notification goes to the intake queue as declared (moto delivers S3's notifications there), whose event
        // source mapping the run emulates with the declared batch size, window and maximum concurrency.
        expect(rule.QueueArn).to.equal(plan.intakeQueue.attributes.QueueArn);
        expect(plan.intakeQueue.attributes.VisibilityTimeout).to.equal("360");
        expect(JSON.parse(plan.intakeQueue.attributes.RedrivePolicy)).to.deep.equal({ deadLetterTargetArn: plan.deadLetterQueue.attributes.QueueArn, maxReceiveCount: 10 });
        expect(plan.mapping).to.deep.equal({ batchSize: 10, windowSeconds: 1, maxConcurrency: 5, reportBatchItemFailures: true });
        expect(rule.Events).to.deep.equal(["s3:ObjectCreated:*"]);
        expect(rule.Filter.Key.FilterRules).to.have.deep.members([
            { Name: "prefix", Value: "inbox/" },
            { Name: "suffix", Value: ".zip" },
        ]);

        const td = plan.taskDefinition;
        expect([td.cpu, td.memory, td.networkMode]).to.deep.equal(["512", "1024", "awsvpc"]);
        const [container] = td.containerDefinitions;
        expect(container.memory).to.equal(1024);
        const env = Object.fromEntries(container.environment.map((e: any) => [e.name, e.value]));
        expect(env.QUEUE_URL).to.equal(plan.queue.url);
        expect(env.DLQ_URL).to.equal(plan.deadLetterQueue.url);
        expect(env.INPUT_PREFIX).to.equal("inbox/");
        expect(env.WORKER_MAX_RECEIVE_COUNT).to.equal("5");

        const le = plan.launcher.environment;
        expect(le.MAX_TASKS).to.equal("3");
        expect(le.QUEUE_URL).to.equal(plan.queue.url);
        expect(le.CLUSTER).to.equal(plan.cluster.arn);
        expect(le.TASK_DEFINITION).to.equal(td.taskDefinitionArn);
        expect(le.SUBNETS.split(",").every((id: string) => plan.subnets.includes(id))).to.equal(true);
        expect(le.SECURITY_GROUPS).to.equal(plan.securityGroups.join(","));
        expect(le.INPUT_PREFIX).to.equal("inbox/");
        expect(le.STATE_TABLE).to.match(/^render-launcher-state-/);
        // No fake value of the mocks is left anywhere the launcher or the tasks read.
        expect(JSON.stringify([le, container.environment])).not.to.match(/amazonaws\.com|-sg-id/);

        const port = Number(new URL(endpoint).port);
        expect(await listening(port), "moto_server stopped after --plan").to.equal(false);
    });
});

/** What the stack declares in a launch mode (type token, name), evaluated under the mocks in a child process. */
function declaredResources(launchMode: string): string[] {
    const js = `require("./cli/local/stack").evaluateStack({ launchMode: ${JSON.stringify(launchMode)} }).then(
        (s) => { console.log(JSON.stringify(s.resources.map((r) => r.type + " " + r.name))); process.exit(0); },
        (e) => { console.error(e); process.exit(1); })`;
    const r = spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", js], { cwd: ROOT, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`evaluating the stack (${launchMode}) failed: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

describe("npm run local --plan: every declared resource is applied to the emulator (appliers.ts)", function () {
    this.timeout(180000);
    for (const mode of ["drain", "per-job", "service"]) {
        it(`GIVEN launchMode=${mode} THEN the set of applied resources equals the set the stack declares`, async () => {
            const declared = declaredResources(mode);
            const run = await runLocal(["--plan", "--config", `launchMode=${mode}`]);
            expect(run.code, run.stderr).to.equal(0);
            const plan = JSON.parse(run.stdout);
            expect(plan.resources.every((r: any) => r.status === "applied"), JSON.stringify(plan.resources)).to.equal(true);
            expect(plan.resources.map((r: any) => `${r.type} ${r.name}`).sort()).to.deep.equal([...declared].sort());
            // The mode's own resources are among them (not an empty-equals-empty pass).
            const types = new Set(plan.resources.map((r: any) => r.type));
            for (const t of ["aws:iam/rolePolicy:RolePolicy", "aws:cloudwatch/metricAlarm:MetricAlarm", "aws:cloudwatch/eventTarget:EventTarget", "aws:lambda/function:Function"]) {
                expect(types.has(t), t).to.equal(true);
            }
            expect(types.has("aws:ecs/service:Service"), "ECS service").to.equal(mode === "service");
            expect(types.has("aws:appautoscaling/policy:Policy"), "scaling policies").to.equal(mode === "service");
            // Lambda targets went to stand-in queues, and the run says so.
            expect(plan.notes.some((n: string) => /EventBridge target .* → stand-in SQS queue/.test(n)), JSON.stringify(plan.notes)).to.equal(true);
        });
    }
});

describe("npm run local (cli/main.ts local), end to end on moto_server", function () {
    this.timeout(240000);
    let dir: string;

    before(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "local-test-"));
    });
    after(() => {
        fs.rmSync(dir, { recursive: true, force: true });
    });

    it("GIVEN two good scenes and a zip without a scene THEN two PNGs, one failure with its reason, exit code 1, nothing left running", async () => {
        const a = await tinySceneZip(dir, "alpha");
        const b = await tinySceneZip(dir, "beta");
        const bad = path.join(dir, "empty.zip");
        await zip({ "README.txt": "no scene in here\n" }, bad);
        const out = path.join(dir, "out1");

        const run = await runLocal([a, b, bad, "--json", "--out", out, "--runner", "process", "--max-tasks", "2", "--timeout", "180"]);
        expect(run.code, run.stderr).to.equal(1);
        const summary = JSON.parse(run.stdout);
        expect(summary.ok).to.equal(false);
        expect(summary.runner).to.equal("process");
        expect(summary.tasksStarted).to.be.within(1, 2);

        const byJob = Object.fromEntries(summary.jobs.map((j: any) => [j.job, j]));
        expect(Object.keys(byJob).sort()).to.deep.equal(["alpha", "beta", "empty"]);
        for (const name of ["alpha", "beta"]) {
            expect(byJob[name].status, JSON.stringify(byJob[name])).to.equal("done");
            const png = fs.readFileSync(path.join(out, `${name}.png`));
            expect(png.subarray(0, 8).equals(PNG_SIGNATURE), `${name}.png signature`).to.equal(true);
            expect(png.readUInt32BE(16)).to.equal(64);
            expect(png.readUInt32BE(20)).to.equal(48);
        }
        expect(byJob.empty.status).to.equal("failed");
        expect(byJob.empty.reason).to.match(/no scene/);
        const report = JSON.parse(fs.readFileSync(path.join(out, "empty.error.json"), "utf8"));
        expect(report.reason).to.match(/no scene/);
        expect(fs.readdirSync(out).filter((f) => f.endsWith(".png")).sort()).to.deep.equal(["alpha.png", "beta.png"]);

        await expectNothingLeft(summary.runId, summary.endpoint);
    });

    it("GIVEN only good scenes THEN exit code 0 and every PNG, with the default runner (podman when the image is built)", async () => {
        const a = await tinySceneZip(dir, "gamma");
        const b = await tinySceneZip(dir, "delta");
        const out = path.join(dir, "out2");

        const run = await runLocal([a, b, "--json", "--out", out, "--timeout", "180"]);
        expect(run.code, run.stderr).to.equal(0);
        const summary = JSON.parse(run.stdout);
        expect(summary.ok).to.equal(true);
        expect(summary.jobs.map((j: any) => [j.job, j.status])).to.deep.equal([
            ["gamma", "done"],
            ["delta", "done"],
        ]);
        for (const name of ["gamma", "delta"]) {
            expect(fs.readFileSync(path.join(out, `${name}.png`)).subarray(0, 8).equals(PNG_SIGNATURE)).to.equal(true);
        }
        expect(summary.notes).to.include("job events: 2 of 2 job(s) ended in exactly one event");
        // The job events on the bus reach no rule of the stack's (moto matches every event to a schedule-only rule, whose
        // target is the launcher: it would be invoked with each job event).
        const asyncLog = path.join(summary.logsDir, "launcher.log");
        expect(fs.existsSync(asyncLog) ? fs.readFileSync(asyncLog, "utf8") : "").to.not.include('"msg":"ignored"');
        await expectNothingLeft(summary.runId, summary.endpoint);
    });

    for (const [signal, code] of [["SIGTERM", 143], ["SIGHUP", 129]] as const) {
        it(`GIVEN ${signal} while a worker renders THEN it stops the worker, the launcher and the emulator and exits ${code}`, async () => {
            const slow = path.join(dir, `slow-${signal}.zip`);
            // Parses for a long while: the worker is busy when the signal arrives.
            const pov = "#declare I = 0;\n#while (I < 100000000)\n  #declare I = I + 1;\n#end\ncamera { location <0,1,-3> look_at 0 }\nsphere { 0, 1 pigment { rgb 1 } }\n";
            await zip({ [`slow-${signal}.pov`]: pov }, slow);
            const out = path.join(dir, `out-${signal}`);
            let signalled = false;
            const run = await runLocal([slow, "--out", out, "--runner", "process", "--timeout", "180"], (stdout, child) => {
                if (!signalled && /task \S+ started/.test(stdout)) {
                    signalled = true;
                    setTimeout(() => child.kill(signal), 1500);
                }
            });
            expect(signalled, run.stdout + run.stderr).to.equal(true);
            expect(run.code, run.stderr).to.equal(code);
            const m = /emulator (http:\/\/127\.0\.0\.1:\d+) · run (\w+)/.exec(run.stdout);
            expect(m, run.stdout).to.not.equal(null);
            await expectNothingLeft(m![2], m![1]);
            expect(fs.existsSync(path.join(out, `slow-${signal}.png`))).to.equal(false);
        });
    }
});

describe("npm run local, launchMode per-job: a task that stops without settling its job (ECS's task state change, emulated)", function () {
    this.timeout(240000);
    let dir: string;

    before(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "local-perjob-test-"));
    });
    after(() => {
        fs.rmSync(dir, { recursive: true, force: true });
    });

    /** The launcher's "routed failure" log lines of a run (its launcher.log). */
    function routedLines(logsDir: string): any[] {
        return fs
            .readFileSync(path.join(logsDir, "launcher.log"), "utf8")
            .split("\n")
            .filter((l) => l.includes('"routed failure"'))
            .map((l) => JSON.parse(l));
    }

    it("GIVEN a worker SIGKILLed mid-render THEN the job ends in the DLQ with a reason naming exit code 137, one Job Failed, and the run reports it failed (not timed out)", async () => {
        const slow = path.join(dir, "killed.zip");
        // Parses for a long while: the worker is busy rendering when it is killed.
        const pov = "#declare I = 0;\n#while (I < 100000000)\n  #declare I = I + 1;\n#end\ncamera { location <0,1,-3> look_at 0 }\nsphere { 0, 1 pigment { rgb 1 } }\n";
        await zip({ "killed.pov": pov }, slow);
        const out = path.join(dir, "out-killed");
        let killed = false;
        let watching = false;
        let poll: NodeJS.Timeout | undefined;
        const run = await runLocal(["--json", slow, "--out", out, "--runner", "process", "--config", "launchMode=per-job", "--timeout", "180"], undefined, {}, (stderr) => {
            const run = /· run (\w+) ·/.exec(stderr);
            const task = /task (\S+) started \(process pid (\d+)\)/.exec(stderr);
            if (watching || !run || !task) return;
            watching = true;
            // SIGKILL once the worker renders (its log names the scene), as the kernel's OOM killer would.
            const log = path.join(out, ".logs", run[1], `task-${task[1]}.log`);
            poll = setInterval(() => {
                const text = fs.existsSync(log) ? fs.readFileSync(log, "utf8") : "";
                if (!text.includes('"event":"scene"')) return;
                clearInterval(poll);
                process.kill(Number(task[2]), "SIGKILL");
                killed = true;
            }, 100);
        });
        clearInterval(poll); // when the worker never rendered (then `killed` fails the test)
        expect(killed, run.stderr).to.equal(true);
        expect(run.code, run.stderr).to.equal(1);
        const summary = JSON.parse(run.stdout);
        expect(summary.jobs).to.have.length(1);
        const job = summary.jobs[0];
        expect(job.status).to.equal("failed");
        expect(job.reason).to.match(/^the task running it stopped without finishing: Essential container in task exited \(stop code EssentialContainerExited, exit code 137\)$/);
        expect(job.reason).not.to.match(/timed out/);
        expect(summary.notes).to.include("job events: 1 of 1 job(s) ended in exactly one event");
        expect(routedLines(summary.logsDir)).to.deep.include({ msg: "routed failure", source: "aws.ecs", detailType: "ECS Task State Change", jobs: 1 });
        expect(fs.existsSync(path.join(out, "killed.png"))).to.equal(false);
        await expectNothingLeft(summary.runId, summary.endpoint);
    });

    it("GIVEN a worker that settles its job (exit 0) THEN its task's stop reaches the launcher, which does nothing more: no dead-letter, one event", async () => {
        const a = await tinySceneZip(dir, "settled");
        const run = await runLocal([a, "--json", "--out", path.join(dir, "out-settled"), "--runner", "process", "--config", "launchMode=per-job", "--timeout", "180"]);
        expect(run.code, run.stderr).to.equal(0);
        const summary = JSON.parse(run.stdout);
        expect(summary.jobs.map((j: any) => [j.job, j.status])).to.deep.equal([["settled", "done"]]);
        expect(routedLines(summary.logsDir)).to.deep.equal([{ msg: "routed failure", source: "aws.ecs", detailType: "ECS Task State Change", jobs: 0 }]);
        expect(summary.notes).to.include("job events: 1 of 1 job(s) ended in exactly one event");
        expect(summary.notes.filter((n: string) => /dead-lettered after|duplicate dead-letter/.test(n))).to.deep.equal([]);
        await expectNothingLeft(summary.runId, summary.endpoint);
    });
});

describe("npm run local: a worker that cannot start fails the run at once (exit 1, the runner's error), not at the timeout", function () {
    // Each run gets --timeout 300; the run must end long before it (a behavioural bound, not a benchmark).
    this.timeout(60000);
    const BOUND_MS = 60000;
    let dir: string;

    before(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "local-fail-test-"));
    });
    after(() => {
        fs.rmSync(dir, { recursive: true, force: true });
    });

    it("GIVEN local worker processes whose command does not exist (spawn ENOENT) THEN exit 1, every job failed with that error, each task listed", async () => {
        const a = await tinySceneZip(dir, "nostart-a");
        const b = await tinySceneZip(dir, "nostart-b");
        const t0 = Date.now();
        const run = await runLocal([a, b, "--json", "--out", path.join(dir, "out-enoent"), "--runner", "process", "--max-tasks", "2", "--timeout", "300"], undefined, {
            LEW_LOCAL_WORKER_ARGV: JSON.stringify(["/nonexistent/lew-worker"]),
        });
        expect(Date.now() - t0).to.be.below(BOUND_MS);
        expect(run.code, run.stderr).to.equal(1);
        expect(run.stderr).to.match(/lambda-ecs-worker local: no worker could start: spawn \/nonexistent\/lew-worker ENOENT \(task \S+ exited with 127 before taking a job; [12] tasks? tried\)/);
        const summary = JSON.parse(run.stdout);
        expect(summary.ok).to.equal(false);
        expect(summary.error).to.match(/spawn \/nonexistent\/lew-worker ENOENT/);
        expect(summary.tasksStarted).to.be.within(1, 2);
        expect(summary.startFailures).to.have.length(summary.tasksStarted);
        for (const f of summary.startFailures) expect(f).to.deep.include({ code: 127, stderr: ["spawn /nonexistent/lew-worker ENOENT"] });
        expect(summary.jobs.map((j: any) => [j.job, j.status, j.reason])).to.deep.equal([
            ["nostart-a", "failed", summary.error],
            ["nostart-b", "failed", summary.error],
        ]);
        await expectNothingLeft(summary.runId, summary.endpoint);
    });

    it("GIVEN podman without the container-init binary (catatonit) THEN exit 1 with podman's own error, not a timeout", async function () {
        const image = spawnSync("podman", ["--runtime", "runc", "--cgroup-manager=cgroupfs", "image", "exists", "lambda-ecs-worker/povray:dev"]).status === 0;
        requirePrerequisite(this, image, "the worker image (npm run image)");
        // The fresh machine of issue #9: podman's init_path points at no binary (as when catatonit is not installed).
        const conf = path.join(dir, "containers.conf");
        fs.writeFileSync(conf, '[containers]\ninit_path = "/nonexistent/catatonit"\n');
        const a = await tinySceneZip(dir, "noinit");
        const t0 = Date.now();
        const run = await runLocal([a, "--json", "--out", path.join(dir, "out-noinit"), "--runner", "podman", "--timeout", "300"], undefined, { CONTAINERS_CONF: conf });
        expect(Date.now() - t0).to.be.below(BOUND_MS);
        expect(run.code, run.stderr).to.equal(1);
        expect(run.stderr).to.match(/no worker could start: Error: container-init binary not found on the host: stat \/nonexistent\/catatonit.* \(task \S+ exited with 125 before taking a job; 1 task tried\)/);
        const summary = JSON.parse(run.stdout);
        expect(summary.jobs).to.have.length(1);
        expect(summary.jobs[0].reason).to.match(/container-init binary not found/);
        expect(summary.startFailures[0].code).to.equal(125);
        await expectNothingLeft(summary.runId, summary.endpoint);
    });

    it("GIVEN --runner podman and an image that does not exist THEN exit 1 at once naming the image and how to build it", async () => {
        const a = await tinySceneZip(dir, "noimage");
        const t0 = Date.now();
        const run = await runLocal([a, "--runner", "podman", "--image", "localhost/lew-no-such-image:none", "--out", path.join(dir, "out-noimage"), "--timeout", "300"]);
        expect(Date.now() - t0).to.be.below(BOUND_MS);
        expect(run.code, run.stderr).to.equal(1);
        expect(run.stderr).to.match(/lambda-ecs-worker local: podman (image localhost\/lew-no-such-image:none not found: build it with `npm run image`|not found on PATH)/);
    });
});
