import { expect } from "chai";

import { Aws, LogLine } from "../../harness/worker-env";

/**
 * A job whose input was deleted or replaced ended as it must: no failure, no job metrics, nothing written next to the
 * input (`<base>.png`, `<base>.error.json`), its message deleted, and nothing left in the work queue or the DLQ.
 */
export async function expectEndedQuietly(aws: Aws, logs: LogLine[], o: { bucket: string; base: string; queueUrl: string; dlqUrl: string }): Promise<void> {
    const events = (event: string) => logs.filter((l) => l.event === event);
    expect(events("failed"), "failed").to.deep.equal([]);
    expect(events("job_metrics"), "job metrics").to.deep.equal([]);
    expect(events("deleted"), "message deleted").to.have.length(1);
    for (const suffix of [".png", ".error.json"]) expect(await aws.get(o.bucket, o.base + suffix), o.base + suffix).to.equal(undefined);
    expect(await aws.depth(o.dlqUrl), "dead-letter queue").to.equal(0);
    expect(await aws.depth(o.queueUrl), "work queue").to.equal(0);
}
