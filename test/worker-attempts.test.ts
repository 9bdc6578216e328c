/**
 * Issue #17, item 2, on moto with the component's own queue settings (the stack built under the Pulumi mocks: the
 * work queue's visibility timeout and redrive policy, the worker container's environment): interruptions (SIGTERM)
 * are not failures, crashes (SIGKILL) are, and a job whose attempts are used up is dead-lettered by the worker, with
 * its reason, its `.error.json` and one `Job Failed`, never by SQS's redrive alone.
 */
import "../harness/mocks";

import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { expect } from "chai";

import { LambdaEcsWorkerArgs } from "../components";
import { IMAGE_URI } from "../harness/launcher-package";
import { Moto, motoClientConfig } from "../harness/moto";
import { buildWorker, one } from "../harness/stack";
import { Aws, LogLine, makeZip, pngSize, runWorkerInProcess, scene, startChildWorker, useWorkerMoto, workerEnv } from "../harness/worker-env";

/** What the component sets up for a worker's queue: the work queue's attributes and the worker container's environment. */
interface ComponentQueue {
    visibilityTimeout: number;
    redriveMaxReceiveCount: number;
    containerEnv: Record<string, string>;
}

async function componentQueue(name: string, args: Partial<LambdaEcsWorkerArgs> = {}): Promise<ComponentQueue> {
    const { resources } = await buildWorker(name, { image: { imageUri: IMAGE_URI }, ...args } as LambdaEcsWorkerArgs);
    const queue = one(resources, "aws:sqs/queue:Queue", `${name}-queue`).inputs;
    const [container] = JSON.parse(one(resources, "aws:ecs/taskDefinition:TaskDefinition", `${name}-task`).inputs.containerDefinitions);
    const containerEnv: Record<string, string> = {};
    for (const e of container.environment) containerEnv[e.name] = String(e.value);
    return { visibilityTimeout: Number(queue.visibilityTimeoutSeconds), redriveMaxReceiveCount: JSON.parse(queue.redrivePolicy).maxReceiveCount, containerEnv };
}

describe("worker attempts on the component's queue settings (moto + povray): interruptions are not failures, crashes are", function () {
    this.timeout(240000);
    let moto: Moto;
    let aws: Aws;
    let eventBridge: EventBridgeClient;
    const setup = useWorkerMoto("attempts", (m, a) => {
        moto = m;
        aws = a;
        eventBridge = new EventBridgeClient(motoClientConfig(m.endpoint));
    });

    /** A bucket, the DLQ and the work queue with the component's attributes, and the worker's environment on them. */
    async function world(c: ComponentQueue) {
        const { bucket, queueUrl, dlqUrl } = await setup(c.redriveMaxReceiveCount, c.visibilityTimeout);
        const env = (extra: Record<string, string> = {}) =>
            workerEnv(moto, { ...c.containerEnv, QUEUE_URL: queueUrl, DLQ_URL: dlqUrl, AWS_REGION: "us-east-1", ...extra });
        await aws.put(bucket, "jobs/slow.zip", await makeZip([{ name: "slow.pov", data: scene("slow.pov") }]));
        await aws.send(queueUrl, { bucket, key: "jobs/slow.zip" });
        return { bucket, queueUrl, dlqUrl, env };
    }

    const events = (logs: LogLine[], event: string) => logs.filter((l) => l.event === event);
    const published = (logs: LogLine[]) => events(logs, "job_event_published").map((l) => l.detailType);

    /** One in-process worker that the test stops (SIGTERM's path: worker.stop) once it renders. */
    async function interrupted(env: Record<string, string>): Promise<LogLine[]> {
        const { code, logs } = await runWorkerInProcess(env, {
            eventBridge,
            onLog: (l, worker) => {
                if (l.event === "scene") worker.stop("SIGTERM");
            },
        });
        expect(code).to.equal(0);
        expect(events(logs, "scene"), "it rendered when stopped").to.have.length(1);
        return logs;
    }

    it("GIVEN the component's defaults (3 attempts, redrive after 4 receives) WHEN a healthy job is interrupted 5 times in a row THEN the 6th receive renders it: no receive counted, no DLQ, one Job Succeeded", async function () {
        const c = await componentQueue("attdefault");
        expect([c.redriveMaxReceiveCount, c.containerEnv.WORKER_MAX_RECEIVE_COUNT]).to.deep.equal([4, "3"]);
        const { bucket, queueUrl, dlqUrl, env } = await world(c);
        const all: LogLine[] = [];
        for (let i = 1; i <= 5; i++) {
            const logs = await interrupted(env());
            expect(events(logs, "received").map((l) => [l.receiveCount, l.interruptions]), `interruption ${i}`).to.deep.equal([[1, i === 1 ? undefined : i - 1]]);
            expect(events(logs, "requeued").map((l) => l.interruptions)).to.deep.equal([i]);
            all.push(...logs);
        }
        const { code, logs } = await runWorkerInProcess(env(), { eventBridge });
        expect(code).to.equal(0);
        expect(events(logs, "received").map((l) => [l.receiveCount, l.interruptions])).to.deep.equal([[1, 5]]);
        expect(events(logs, "deleted")).to.have.length(1);
        expect(pngSize((await aws.get(bucket, "jobs/slow.png"))!).width).to.be.greaterThan(0);
        expect(await aws.depth(dlqUrl)).to.equal(0);
        expect(await aws.depth(queueUrl)).to.equal(0);
        expect([...published(all), ...published(logs)]).to.deep.equal(["Job Succeeded"]);
    });

    it("GIVEN the component's defaults WHEN a job is interrupted a 6th time in a row THEN the worker dead-letters it saying so: .error.json, one DLQ entry, one Job Failed (interrupted)", async function () {
        const c = await componentQueue("attsix");
        const { bucket, queueUrl, dlqUrl, env } = await world(c);
        const all: LogLine[] = [];
        for (let i = 1; i <= 6; i++) all.push(...(await interrupted(env())));
        expect(events(all, "requeued")).to.have.length(5);
        const reason = "interrupted 6 times in a row: the task running it was stopped (SIGTERM: Spot reclaim, scale-in, deploy) before it finished each time";
        const dlq = await aws.drain(dlqUrl);
        expect(dlq).to.have.length(1);
        expect(JSON.parse(dlq[0].Body!)).to.include({ bucket, key: "jobs/slow.zip", reason: `jobs/slow.zip: ${reason}` });
        expect(JSON.parse((await aws.get(bucket, "jobs/slow.error.json"))!.toString()).reason).to.equal(reason);
        expect(await aws.get(bucket, "jobs/slow.png")).to.equal(undefined);
        expect(await aws.depth(queueUrl)).to.equal(0);
        expect(published(all)).to.deep.equal(["Job Failed"]);
    });

    it("GIVEN the component's queue with maxReceiveCount 2 (redrive after 3 receives) WHEN its worker is SIGKILLed twice mid-render THEN the next receive is dead-lettered by the worker with the crash reason, .error.json and one Job Failed (task-stopped)", async function () {
        // The shortest visibility timeout the component allows (30 s): a killed worker's message reappears after it.
        const c = await componentQueue("attkill", { visibilityTimeoutSeconds: 30, maxReceiveCount: 2 });
        expect([c.visibilityTimeout, c.redriveMaxReceiveCount, c.containerEnv.WORKER_MAX_RECEIVE_COUNT]).to.deep.equal([30, 3, "2"]);
        const { bucket, queueUrl, dlqUrl, env } = await world(c);
        // Each waits up to 60 empty receives of 1 s for the killed one's message to become visible again.
        const patient = () => env({ WORKER_IDLE_EXIT: "60" });
        for (let i = 1; i <= 2; i++) {
            const w = startChildWorker(patient());
            try {
                const received = await w.waitFor((l) => l.event === "received", 90000);
                expect(received.receiveCount, `crash ${i}`).to.equal(i);
                await w.waitFor((l) => l.event === "scene");
                w.proc.kill("SIGKILL");
                expect((await w.exited).signal).to.equal("SIGKILL");
            } finally {
                w.proc.kill("SIGKILL");
            }
        }
        const { code, logs } = await runWorkerInProcess(patient(), {
            eventBridge,
            onLog: (l, worker) => {
                if (l.event === "deleted") worker.stop("test done");
            },
        });
        expect(code).to.equal(0);
        expect(events(logs, "received").map((l) => l.receiveCount)).to.deep.equal([3]);
        expect(events(logs, "scene"), "not run a third time").to.deep.equal([]);
        const reason =
            "the task running it stopped 2 times without finishing: its worker was killed (SIGKILL, out of memory) or crashed before it could settle the job";
        const dlq = await aws.drain(dlqUrl);
        expect(dlq).to.have.length(1);
        expect(JSON.parse(dlq[0].Body!)).to.include({ bucket, key: "jobs/slow.zip", reason: `jobs/slow.zip: ${reason}`, attempts: 2 });
        expect(dlq[0].MessageAttributes!.reason.StringValue).to.equal(`jobs/slow.zip: ${reason}`);
        const report = JSON.parse((await aws.get(bucket, "jobs/slow.error.json"))!.toString());
        expect(report).to.include({ reason, attempts: 2 });
        expect(published(logs)).to.deep.equal(["Job Failed"]);
        expect(events(logs, "job_metrics").map((l) => l.FailureClass)).to.deep.equal(["task-stopped"]);
        expect(await aws.depth(queueUrl)).to.equal(0);
    });
});
