/**
 * Builds LambdaEcsWorker stacks under the Pulumi mocks and waits until every child is registered.
 * Import "./mocks" (or this file) before the code under test.
 */
import { recorded, RecordedResource, resetRecorded, valueOf } from "./mocks";

import * as pulumi from "@pulumi/pulumi";

import { LambdaEcsWorker, LambdaEcsWorkerArgs } from "../components";

/** Wait until every resource registration started so far has reached the mocks (Pulumi's outstanding RPCs). */
export async function registrationsSettled(): Promise<void> {
    // waitForRPCs is what pulumi.runtime.disconnect() awaits at the end of a program: every registration in flight.
    const settings = require("@pulumi/pulumi/runtime/settings");
    await settings.waitForRPCs();
    if (recorded.some((r) => r.urn === "")) throw new Error("a registered resource got no URN");
}

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

/**
 * The launcher function's code archive: the serialized module (`__index.js`), every path in the archive, and the
 * bytes of all its entries (each must be a string asset).
 */
export async function launcherArchive(resources: RecordedResource[]): Promise<{ indexJs: string; paths: string[]; bytes: number }> {
    const fn = resources.find((r) => r.type === "aws:lambda/function:Function" && r.name.endsWith("-launcher"));
    if (!fn) throw new Error("no launcher function was registered");
    const assets: Record<string, any> = await fn.inputs.code.assets;
    const paths = Object.keys(assets).sort();
    let bytes = 0;
    for (const p of paths) {
        const text = await assets[p].text;
        if (typeof text !== "string") throw new Error(`archive entry ${p} is not a string asset`);
        bytes += Buffer.byteLength(text, "utf8");
    }
    const indexJs = await assets["__index.js"].text;
    return { indexJs, paths, bytes };
}
