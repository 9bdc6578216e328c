/**
 * Step "task": the worker tasks' log group, the execution role (ECS pulls the image and writes logs), the task role
 * (the worker's code), and the task definition: one read-only, non-root container with a scratch volume.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

import { METRICS } from "../../functions/launcher-settings";
import { ChildOptions, eventSourceOf, ResolvedLambdaEcsWorkerArgs } from "./args";
import { ecrRepositoryArn } from "./aws-rules";
import { SCRATCH_DIR, WORKER_CONTAINER_NAME, WORKER_USER } from "./container";
import { ImageResources } from "./image";
import { assumeRolePolicy, executionRolePolicy, taskRolePolicy } from "./policies";
import { QueueResources } from "./queues";

export interface TaskResources {
    taskDefinition: aws.ecs.TaskDefinition;
    /** The task definition's family (the launcher may run any revision of it). */
    family: string;
    taskRole: aws.iam.Role;
    executionRole: aws.iam.Role;
}

/** The worker tasks' log group (created before the network and cluster, as it always was). */
export function createTaskLogGroup(name: string, r: ResolvedLambdaEcsWorkerArgs, { parent }: ChildOptions): aws.cloudwatch.LogGroup {
    return new aws.cloudwatch.LogGroup(`${name}-logs`, { retentionInDays: r.logRetentionDays, tags: r.tags }, { parent });
}

export function createTask(
    name: string,
    r: ResolvedLambdaEcsWorkerArgs,
    deps: {
        image: ImageResources;
        logGroup: aws.cloudwatch.LogGroup;
        queues: QueueResources;
        bucketArn: pulumi.Input<string>;
        region: pulumi.Input<string>;
        /** Job events' bus (ARN). */
        eventBusArn: pulumi.Input<string>;
        /** Service mode's task protection names the cluster. */
        cluster: aws.ecs.Cluster;
        partition: pulumi.Input<string>;
        account: pulumi.Input<string>;
    },
    { parent }: ChildOptions,
): TaskResources {
    const { queue, deadLetterQueue } = deps.queues;
    const executionRole = new aws.iam.Role(
        `${name}-execution-role`,
        { assumeRolePolicy: assumeRolePolicy("ecs-tasks.amazonaws.com"), tags: r.tags },
        { parent },
    );
    new aws.iam.RolePolicy(
        `${name}-execution-policy`,
        {
            role: executionRole.id,
            policy: deps.image.imageUri.apply((uri) =>
                pulumi.jsonStringify(executionRolePolicy({ repositoryArn: ecrRepositoryArn(uri), logGroupArn: deps.logGroup.arn })),
            ),
        },
        { parent },
    );
    const taskRole = new aws.iam.Role(
        `${name}-task-role`,
        { assumeRolePolicy: assumeRolePolicy("ecs-tasks.amazonaws.com"), tags: r.tags },
        { parent },
    );
    new aws.iam.RolePolicy(
        `${name}-task-policy`,
        {
            role: taskRole.id,
            policy: pulumi.jsonStringify(
                taskRolePolicy({
                    launchMode: r.launchMode,
                    bucketArn: deps.bucketArn,
                    inputPrefix: r.inputPrefix,
                    outputPrefix: r.outputPrefix,
                    outputSuffixes: r.outputSuffixes,
                    queueArn: queue.arn,
                    deadLetterQueueArn: deadLetterQueue.arn,
                    eventBusArn: deps.eventBusArn,
                    eventSource: eventSourceOf(name, r),
                    ...(r.launchMode === "service"
                        ? { clusterArn: deps.cluster.arn, clusterName: deps.cluster.name, partition: deps.partition, region: deps.region, account: deps.account }
                        : {}),
                    ...(r.bucketKmsKeyArn !== undefined ? { bucketKmsKeyArn: r.bucketKmsKeyArn, region: deps.region } : {}),
                }),
            ),
        },
        { parent },
    );

    const family = `${pulumi.getProject()}-${pulumi.getStack()}-${name}`.replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 255);
    const taskDefinition = new aws.ecs.TaskDefinition(
        `${name}-task`,
        {
            family,
            requiresCompatibilities: ["FARGATE"],
            networkMode: "awsvpc",
            cpu: String(r.cpu),
            memory: String(r.memory),
            runtimePlatform: { operatingSystemFamily: "LINUX", cpuArchitecture: deps.image.cpuArchitecture },
            executionRoleArn: executionRole.arn,
            taskRoleArn: taskRole.arn,
            ...(r.ephemeralStorageGiB > 21 ? { ephemeralStorage: { sizeInGib: r.ephemeralStorageGiB } } : {}),
            volumes: [{ name: "scratch" }, { name: "tmp" }],
            containerDefinitions: pulumi.jsonStringify([workerContainer(name, r, deps)]),
            tags: r.tags,
        },
        { parent },
    );
    return { taskDefinition, family, taskRole, executionRole };
}

/** The worker's container definition, with the environment the component sets (see `RESERVED_ENVIRONMENT`). */
function workerContainer(
    name: string,
    r: ResolvedLambdaEcsWorkerArgs,
    deps: { image: ImageResources; logGroup: aws.cloudwatch.LogGroup; queues: QueueResources; region: pulumi.Input<string> },
) {
    const environment = pulumi
        .all([deps.queues.queue.url, deps.queues.deadLetterQueue.url, deps.region, r.environment, r.eventBusName])
        .apply(([queueUrl, dlqUrl, regionName, extra, eventBusName]) =>
            Object.entries({
                QUEUE_URL: queueUrl,
                DLQ_URL: dlqUrl,
                AWS_REGION: regionName,
                INPUT_PREFIX: r.inputPrefix,
                OUTPUT_PREFIX: r.outputPrefix,
                OUTPUT_SUFFIXES: JSON.stringify(r.outputSuffixes),
                JOB_TIMEOUT_SECONDS: String(r.jobTimeoutSeconds),
                WORKER_IDLE_EXIT: r.launchMode === "service" ? "0" : "1",
                WORKER_MAX_RECEIVE_COUNT: String(r.maxReceiveCount),
                WORKER_VISIBILITY_TIMEOUT: String(r.visibilityTimeoutSeconds),
                WORKER_SCRATCH_DIR: SCRATCH_DIR,
                // The worker's deadlines after SIGTERM: finished renders upload until a few seconds before ECS's SIGKILL.
                WORKER_STOP_TIMEOUT_SECONDS: String(r.stopTimeout),
                EVENT_BUS_NAME: eventBusName,
                EVENT_SOURCE: eventSourceOf(name, r),
                WORKER_NAME: name,
                METRICS_NAMESPACE: METRICS.namespace,
                ...(r.launchMode === "service" ? { TASK_PROTECTION: "on" } : {}),
                ...extra,
            }).map(([k, v]) => ({ name: k, value: v })),
        );
    return {
        name: WORKER_CONTAINER_NAME,
        image: deps.image.imageUri,
        essential: true,
        cpu: r.cpu,
        memory: r.memory,
        ...(r.command !== undefined ? { command: r.command } : {}),
        user: WORKER_USER,
        readonlyRootFilesystem: true,
        stopTimeout: r.stopTimeout,
        linuxParameters: { initProcessEnabled: true },
        environment,
        mountPoints: [
            { sourceVolume: "scratch", containerPath: SCRATCH_DIR, readOnly: false },
            { sourceVolume: "tmp", containerPath: "/tmp", readOnly: false },
        ],
        logConfiguration: {
            logDriver: "awslogs",
            options: { "awslogs-group": deps.logGroup.name, "awslogs-region": deps.region, "awslogs-stream-prefix": name },
        },
    };
}
