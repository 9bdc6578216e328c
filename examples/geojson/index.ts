/**
 * The GeoJSON worker stack: upload `<name>.geojson` to the bucket, get `<name>.gpkg` (GeoPackage, EPSG:3857),
 * `<name>.summary.json` and `<name>.log` next to it — or `<name>.error.json` and a dead-letter message with GDAL's
 * reason. One `LambdaEcsWorker`, in service mode (an ECS service scaled on queue depth, down to zero); the worker is
 * ./Dockerfile: the runtime base image plus GDAL and one command. Run it offline with
 * `npm run local -- --stack examples/geojson examples/geojson/samples/*.geojson`.
 */
import * as pulumi from "@pulumi/pulumi";

import { LambdaEcsWorker } from "../../components";

const config = new pulumi.Config();

const geojson = new LambdaEcsWorker("geojson", {
    // Built from this folder: its Dockerfile starts FROM ${RUNTIME_IMAGE}, the runtime base image the component builds first.
    image: { context: __dirname },
    inputSuffixes: [".geojson"],
    outputSuffixes: [".gpkg", ".summary.json", ".log"],
    launchMode: "service",
    maxTasks: config.getNumber("maxTasks"),
    cpu: config.getNumber("cpu"),
    memory: config.getNumber("memory"),
    jobTimeoutSeconds: config.getNumber("jobTimeoutSeconds"),
    tags: { project: pulumi.getProject(), stack: pulumi.getStack(), worker: "geojson" },
});

export const bucketName = geojson.bucketName;
export const queueUrl = geojson.queueUrl;
export const deadLetterQueueUrl = geojson.deadLetterQueueUrl;
export const clusterArn = geojson.clusterArn;
export const taskDefinitionArn = geojson.taskDefinitionArn;
export const launcherFunctionName = geojson.launcherFunctionName;
export const logGroupName = geojson.logGroupName;
export const imageUri = geojson.imageUri;
