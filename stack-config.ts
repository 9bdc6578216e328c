/**
 * The POV-Ray stack's settings: Pulumi config (declared with types and defaults in Pulumi.yaml) → LambdaEcsWorker
 * arguments. Kept out of index.ts, whose exports are the stack's outputs.
 */
import * as pulumi from "@pulumi/pulumi";

import { LambdaEcsWorkerArgs, LambdaEcsWorkerCapacity } from "./components";

/** Parses the `capacity` config: "FARGATE", "FARGATE_SPOT", or "FARGATE:1,FARGATE_SPOT:3" (weights). */
export function parseCapacity(value: string): LambdaEcsWorkerCapacity {
    if (value === "FARGATE" || value === "FARGATE_SPOT") return { kind: value };
    const weights: Record<string, number> = {};
    for (const part of value.split(",")) {
        const m = /^\s*(FARGATE|FARGATE_SPOT):(\d+)\s*$/.exec(part);
        if (!m) {
            throw new Error(
                `config capacity: expected "FARGATE", "FARGATE_SPOT" or "FARGATE:<weight>,FARGATE_SPOT:<weight>", got "${value}"`,
            );
        }
        weights[m[1]] = Number(m[2]);
    }
    return { kind: "MIXED", fargateWeight: weights.FARGATE ?? 0, spotWeight: weights.FARGATE_SPOT ?? 0 };
}

/** The worker's arguments from this stack's config. */
export function renderWorkerArgs(config: pulumi.Config): LambdaEcsWorkerArgs {
    const imageUri = config.get("imageUri") ?? "";
    const bucketName = config.get("bucketName") ?? "";
    return {
        image: imageUri !== "" ? { imageUri } : { context: "./worker-image" },
        ...(bucketName !== "" ? { bucketName } : {}),
        cpu: config.getNumber("cpu"),
        memory: config.getNumber("memory"),
        maxTasks: config.getNumber("maxTasks"),
        launcherConcurrency: config.getNumber("launcherConcurrency"),
        intakeConcurrency: config.getNumber("intakeConcurrency"),
        launchMode: config.get("launchMode") as LambdaEcsWorkerArgs["launchMode"],
        capacity: parseCapacity(config.get("capacity") ?? "FARGATE"),
        inputPrefix: config.get("inputPrefix"),
        outputPrefix: config.get("outputPrefix"),
        jobTimeoutSeconds: config.getNumber("renderTimeoutSeconds"),
        environment: { WORKER_CONCURRENCY: String(config.getNumber("workerConcurrency") ?? 1) },
        visibilityTimeoutSeconds: config.getNumber("visibilityTimeoutSeconds"),
        maxReceiveCount: config.getNumber("maxReceiveCount"),
        logRetentionDays: config.getNumber("logRetentionDays"),
        tags: { project: pulumi.getProject(), stack: pulumi.getStack(), worker: "povray" },
    };
}
