/**
 * Builds LambdaEcsWorker stacks under the Pulumi mocks and waits until every child is registered.
 * Import "./mocks" (or this file) before the code under test.
 */
import { launcherArchive, recorded, RecordedResource, registrationsSettled, resetRecorded, valueOf } from "./mocks";

export { launcherArchive, registrationsSettled };

import * as pulumi from "@pulumi/pulumi";

import { LambdaEcsWorker, LambdaEcsWorkerArgs } from "../components";

export interface BuiltWorker {
    worker: LambdaEcsWorker;
    resources: RecordedResource[];
}

/** Build one worker on a fresh recorder and return it with every resource it registered. */
export async function buildWorker(name: string, args: LambdaEcsWorkerArgs): Promise<BuiltWorker> {
    resetRecorded();
    const worker = new LambdaEcsWorker(name, args);
    await valueOf(
        pulumi.all([worker.urn, worker.bucketName, worker.queueUrl, worker.launcherFunctionName, worker.taskDefinitionArn]),
    );
    await registrationsSettled();
    return { worker, resources: [...recorded] };
}

/** The one resource of a type and name; throws when there is none or more than one. */
export function one(resources: RecordedResource[], type: string, name: string): RecordedResource {
    const found = resources.filter((r) => r.type === type && r.name === name);
    if (found.length !== 1) {
        throw new Error(`expected one ${type} named ${name}, found ${found.length}: ${resources.map((r) => r.name).join(", ")}`);
    }
    return found[0];
}
