/**
 * Issue #19, "done when": a burst of several hundred uploads delivered to the launcher the way AWS delivers the stack's
 * trigger (harness/burst.ts: the POV-Ray stack applied to moto_server, the serialized launcher `__index.js` in its own
 * Node processes, every request of it counted by the AWS stand-in): every upload is exactly one queued job, the tasks
 * never exceed maxTasks, and the ECS control-plane calls stay a small constant for the burst (bounded by its duration:
 * at most one task-start decision per second, each a constant number of calls, whatever the uploads).
 * Runs in a child process: the stack's program is evaluated once per process.
 */
import { expect } from "chai";
import { spawnSync } from "child_process";
import * as path from "path";

import type { BurstOptions, BurstResult } from "../harness/burst";

const ROOT = path.resolve(__dirname, "..");

function burst(o: BurstOptions): BurstResult {
    const r = spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "harness/burst.ts", JSON.stringify(o)], {
        cwd: ROOT,
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
        timeout: 400000,
    });
    if (r.status !== 0) throw new Error(`harness/burst.ts failed (${r.status ?? r.signal}): ${r.stderr.slice(-4000)}`);
    return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

describe("issue #19: a burst of uploads through the stack's own trigger, against moto_server", function () {
    this.timeout(600000);
    const UPLOADS = 300;
    const MAX_TASKS = 10;
    let b: BurstResult;
    before(() => {
        b = burst({ uploads: UPLOADS, maxTasks: MAX_TASKS });
    });

    it("delivered as AWS would: the declared mapping's batches, at most its maximum concurrency of launcher invocations at once", () => {
        expect(b.delivery).to.match(/intake queue → the emulated event source mapping/);
        expect(b.mapping).to.deep.equal({ batchSize: 10, windowSeconds: 1, maxConcurrency: 5, reportBatchItemFailures: true });
        expect(b.peakConcurrency).to.be.within(2, b.mapping.maxConcurrency);
        // 300 uploads + S3's test event, in batches of ≤ 10.
        expect(b.delivered).to.equal(UPLOADS + 1);
        expect(b.invocations).to.be.within(Math.ceil((UPLOADS + 1) / 10), UPLOADS / 2);
    });

    it(`every one of ${UPLOADS} uploads is exactly one queued job`, () => {
        expect(b.invocationErrors).to.deep.equal([]);
        expect(b.queuedKeys).to.have.length(UPLOADS);
        expect(new Set(b.queuedKeys).size).to.equal(UPLOADS);
    });

    it(`never more than maxTasks (${MAX_TASKS}) tasks, and at least one`, () => {
        expect(b.tasks).to.be.within(1, MAX_TASKS);
    });

    it("ECS control-plane calls stay a small constant for the burst: at most one decision per second, each a constant number of calls", () => {
        const seconds = Math.ceil(b.seconds) + 1;
        const describe = b.calls["ecs:DescribeClusters"] ?? 0;
        const runTask = b.calls["ecs:RunTask"] ?? 0;
        const detail = `${b.ecsCalls} ECS calls in ${b.seconds.toFixed(1)} s for ${UPLOADS} uploads: ${JSON.stringify(b.calls)}`;
        expect(describe, detail).to.be.at.least(1).and.at.most(seconds);
        expect(runTask, detail).to.be.at.most(Math.ceil(MAX_TASKS / 10) + 2);
        expect(b.ecsCalls, detail).to.be.at.most(2 * seconds + Math.ceil(MAX_TASKS / 10) + 2);
        expect(b.ecsCalls / UPLOADS, detail).to.be.below(0.2);
    });
});
