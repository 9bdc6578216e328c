/**
 * `npm run local`'s issue #11 pieces alone: service mode's task starts (the launcher's wake at once, the CloudWatch
 * path only after its delay) and the job-event feed's parsing and lines. No emulator.
 */
import { expect } from "chai";

import { describeJobEvent, jobEventPattern, jobEventsNote, JobEventFeed, parseJobEvent } from "../cli/local/job-events";
import { serviceTasksToStart, TaskFleet } from "../cli/local/tasks";

describe("local service mode: wake and CloudWatch path", () => {
    const base = { maxTasks: "4", visible: 3, inFlight: 0, running: 0, waitingMs: 0, alarmDelayMs: 60000 };

    it("GIVEN the launcher raised desiredCount THEN the missing tasks start at once (never above maxTasks, 10 per RunTask)", () => {
        expect(serviceTasksToStart({ ...base, desired: 2 })).to.deep.equal({ count: 2, by: "wake" });
        expect(serviceTasksToStart({ ...base, desired: 9 })).to.deep.equal({ count: 4, by: "wake" });
        expect(serviceTasksToStart({ ...base, desired: 2, running: 2 })).to.deep.equal({ count: 1, by: "alarm" });
    });

    it("GIVEN no wake THEN jobs wait for the alarm's delay before a first task, then the queue-depth scaling applies", () => {
        expect(serviceTasksToStart({ ...base, desired: 0, waitingMs: 59999 })).to.deep.equal({ count: 0, by: "none" });
        expect(serviceTasksToStart({ ...base, waitingMs: 60000 })).to.deep.equal({ count: 3, by: "alarm" });
        expect(serviceTasksToStart({ ...base, visible: 0, inFlight: 2, running: 1 })).to.deep.equal({ count: 0, by: "none" });
    });

    it("GIVEN a service in the emulator THEN the fleet reads its desiredCount and records the first request as the wake's", async () => {
        const sent: any[] = [];
        let now = 1000;
        const ecs = {
            send: async (cmd: any) => {
                sent.push(cmd);
                if (cmd.constructor.name === "DescribeServicesCommand") return { services: [{ desiredCount: 1 }] };
                return {};
            },
        };
        const fleet = new TaskFleet({
            ecs: ecs as any,
            clusterArn: "cluster-arn",
            runner: {} as any,
            container: {},
            containerEnv: {},
            fixedEnv: {},
            logsDir: "/tmp",
            log: () => undefined,
            tasks: new Map(),
            stopping: () => false,
            serviceAlarmDelayMs: 60000,
            now: () => now,
        });
        const s = { taskDefinitionArn: "td", subnets: ["s"], securityGroups: ["g"], maxTasks: "4", serviceName: "render-service" };
        await fleet.scaleService(s, 2, 0);
        now = 1500;
        const run = sent.find((c) => c.constructor.name === "RunTaskCommand");
        expect(sent[0].input).to.deep.equal({ cluster: "cluster-arn", services: ["render-service"] });
        expect(run.input).to.include({ count: 1, startedBy: "ecs-svc/local" });
        expect(fleet.firstServiceTask).to.deep.equal({ at: 1000, by: "wake" });
        expect(fleet.firstWaitingAt).to.equal(1000);
    });
});

describe("local job-event feed", () => {
    const ok = { "detail-type": "Job Succeeded", source: "lambda-ecs-worker.render", detail: { key: "in/a.zip", outputs: ["in/a.png", "in/a.log"], seconds: 3.2, attempts: 1 } };
    const bad = { "detail-type": "Job Failed", source: "lambda-ecs-worker.render", detail: { key: "in/b.zip", seconds: 0.1, attempts: 3, failureClass: "permanent", reason: "no scene" } };

    it("matches this worker's source and the two detail-types only", () => {
        expect(jobEventPattern("lambda-ecs-worker.render")).to.deep.equal({ source: ["lambda-ecs-worker.render"], "detail-type": ["Job Succeeded", "Job Failed"] });
    });

    it("prints one line per event: outputs on success, class and reason on failure", () => {
        expect(describeJobEvent(parseJobEvent(JSON.stringify(ok))!)).to.equal("event Job Succeeded in/a.zip (3.2 s, attempt 1) → in/a.png, in/a.log");
        expect(describeJobEvent(parseJobEvent(JSON.stringify(bad))!)).to.equal("event Job Failed in/b.zip (0.1 s, attempt 3): permanent: no scene");
        expect(parseJobEvent("not json")).to.equal(undefined);
        expect(parseJobEvent(JSON.stringify({ hello: 1 }))).to.equal(undefined);
    });

    it("counts events per job: exactly one, none, several", async () => {
        const messages = [ok, bad, bad].map((b, i) => ({ Body: JSON.stringify(b), ReceiptHandle: `r${i}` }));
        const sqs = { send: async (cmd: any) => (cmd.constructor.name === "ReceiveMessageCommand" ? { Messages: messages.splice(0) } : { QueueUrl: "q", Attributes: { QueueArn: "arn" } }) };
        const lines: string[] = [];
        const feed = new JobEventFeed({ sqs: sqs as any, events: { send: async () => ({}) } as any }, { busName: "default", source: "s", name: "n", log: (l) => lines.push(l) });
        await feed.start();
        await feed.poll();
        expect(lines).to.have.length(3);
        expect(jobEventsNote(feed.countsByKey(), ["in/a.zip", "in/b.zip", "in/c.zip"])).to.equal(
            "job events: 1 of 3 job(s) ended in exactly one event; none for in/c.zip; several for in/b.zip",
        );
    });

    it("GIVEN a burst's events waiting (more than one receive holds) WHEN it polls once THEN it reads them all", async () => {
        const queue = Array.from({ length: 25 }, (_, i) => ({ Body: JSON.stringify({ ...ok, detail: { ...ok.detail, key: `in/${i}.zip` } }), ReceiptHandle: `r${i}` }));
        let receives = 0;
        const sqs = {
            send: async (cmd: any) => {
                if (cmd.constructor.name !== "ReceiveMessageCommand") return { QueueUrl: "q", Attributes: { QueueArn: "arn" } };
                receives++;
                return { Messages: queue.splice(0, Math.min(10, cmd.input.MaxNumberOfMessages)) };
            },
        };
        const feed = new JobEventFeed({ sqs: sqs as any, events: { send: async () => ({}) } as any }, { busName: "default", source: "s", name: "n", log: () => undefined });
        await feed.start();
        expect(await feed.poll()).to.have.length(25);
        expect(feed.countsByKey().size).to.equal(25);
        expect(receives, "10 + 10 + 5, then one that finds nothing").to.equal(4);
    });
});
