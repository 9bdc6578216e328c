/**
 * The POV-Ray render stack: upload a scene `.zip` to the bucket, get `<scene>.png` next to it.
 * Every setting comes from Pulumi config (declared with types and defaults in Pulumi.yaml).
 */
import * as pulumi from "@pulumi/pulumi";

import { LambdaEcsWorker } from "./components";
import { renderWorkerArgs } from "./stack-config";

const render = new LambdaEcsWorker("render", renderWorkerArgs(new pulumi.Config()));

export const bucketName = render.bucketName;
export const queueUrl = render.queueUrl;
export const deadLetterQueueUrl = render.deadLetterQueueUrl;
export const clusterArn = render.clusterArn;
export const taskDefinitionArn = render.taskDefinitionArn;
export const launcherFunctionName = render.launcherFunctionName;
export const logGroupName = render.logGroupName;
export const imageUri = render.imageUri;
export const dashboardName = render.dashboardName;
export const eventSource = render.eventSource;
