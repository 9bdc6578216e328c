/**
 * Step "launcher": the launcher Lambda (`functions/launcher.ts`, serialized by `aws.lambda.CallbackFunction`, its own
 * mode's code only) with its log group, role and settings; in drain and service modes its coordination table
 * (`${name}-launcher-state`); its on-failure destination for asynchronous invocations (the job events' bus, whose rules
 * hand the record to the dead-letter queue and the launcher: job-events.ts); the event source mapping that delivers the
 * intake queue to it in batches; and, last, the intake's queue policy and the bucket notification that sends uploads
 * to the intake.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as path from "path";

import { drainLauncherFactory, LauncherHandler, perJobLauncherFactory, serviceLauncherFactory } from "../../functions/launcher";
import { LAUNCHER_ENV, LaunchMode, METRICS, writtenSuffixes } from "../../functions/launcher-settings";
import { backlogPerTask, ChildOptions, eventSourceOf, ResolvedLambdaEcsWorkerArgs } from "./args";
import { BucketResources } from "./bucket";
import { ClusterResources } from "./cluster";
import { WORKER_CONTAINER_NAME } from "./container";
import { NetworkResources } from "./network";
import { assumeRolePolicy, intakeQueuePolicy, launcherRolePolicy } from "./policies";
import { LAUNCHER_TIMEOUT_SECONDS, QueueResources, INTAKE_MAX_RECEIVE_COUNT } from "./queues";
import { TaskResources } from "./task";
import { usesSpot } from "./validate";

/** Where the stack runs: the data sources the component looks up once. */
export interface AccountContext {
    region: pulumi.Output<string>;
    partition: pulumi.Output<string>;
    account: pulumi.Output<string>;
}

export interface LauncherDeps {
    bucket: BucketResources;
    queues: QueueResources;
    network: NetworkResources;
    cluster: ClusterResources;
    task: TaskResources;
    where: AccountContext;
    /** ARN of `eventBusName`: where the launcher publishes `Job Failed` and Lambda puts its failed invocations. */
    eventBusArn: pulumi.Input<string>;
    /** Service mode: the service the launcher wakes. */
    service?: aws.ecs.Service;
}

export interface LauncherResources {
    launcher: aws.lambda.Function;
    /** The intake's event source mapping (batches of uploads → the launcher). */
    mapping: aws.lambda.EventSourceMapping;
    /** Drain and service: the table that coordinates task-start decisions. */
    stateTable?: aws.dynamodb.Table;
    /** ECS's `startedBy` of this worker's tasks (at most 36 characters): the launcher counts its tasks by it. */
    startedBy: string;
}

/** The launcher's `callbackFactory` per mode: each serializes its own mode's code only. */
export const LAUNCHER_FACTORIES: Record<LaunchMode, () => LauncherHandler> = {
    drain: drainLauncherFactory,
    "per-job": perJobLauncherFactory,
    service: serviceLauncherFactory,
};

/** ECS's `startedBy` of a worker's tasks: `lew-<name>`, at most 36 characters. */
export function startedByOf(name: string): string {
    return `lew-${name}`.slice(0, 36);
}

export function createLauncher(name: string, r: ResolvedLambdaEcsWorkerArgs, deps: LauncherDeps, { parent }: ChildOptions): LauncherResources {
    const { queue, deadLetterQueue, intake } = deps.queues;
    // One item per worker: the decision window, its lease and drain's ledger of recent starts (functions/launcher.ts).
    const stateTable =
        r.launchMode === "per-job"
            ? undefined
            : new aws.dynamodb.Table(
                  `${name}-launcher-state`,
                  { billingMode: "PAY_PER_REQUEST", hashKey: "id", attributes: [{ name: "id", type: "S" }], tags: r.tags },
                  { parent },
              );
    const { cluster, capacityProviders } = deps.cluster;
    const launcherLogs = new aws.cloudwatch.LogGroup(
        `${name}-launcher-logs`,
        { retentionInDays: r.logRetentionDays, tags: r.tags },
        { parent },
    );
    const launcherRole = new aws.iam.Role(
        `${name}-launcher-role`,
        { assumeRolePolicy: assumeRolePolicy("lambda.amazonaws.com"), tags: r.tags },
        { parent },
    );
    const launcherPolicy = new aws.iam.RolePolicy(
        `${name}-launcher-policy`,
        {
            role: launcherRole.id,
            policy: pulumi.jsonStringify(
                launcherRolePolicy({
                    launchMode: r.launchMode,
                    ...deps.where,
                    family: deps.task.family,
                    clusterArn: cluster.arn,
                    clusterName: cluster.name,
                    queueArn: queue.arn,
                    deadLetterQueueArn: deadLetterQueue.arn,
                    intakeQueueArn: intake.arn,
                    ...(stateTable ? { stateTableArn: stateTable.arn } : {}),
                    taskRoleArn: deps.task.taskRole.arn,
                    executionRoleArn: deps.task.executionRole.arn,
                    logGroupArn: launcherLogs.arn,
                    eventBusArn: deps.eventBusArn,
                    eventSource: eventSourceOf(name, r),
                    ...(deps.service ? { serviceName: deps.service.name } : {}),
                }),
            ),
        },
        { parent },
    );
    const startedBy = startedByOf(name);
    const launcher = new aws.lambda.CallbackFunction(
        `${name}-launcher`,
        {
            callbackFactory: LAUNCHER_FACTORIES[r.launchMode],
            runtime: "nodejs22.x",
            role: launcherRole,
            timeout: LAUNCHER_TIMEOUT_SECONDS,
            memorySize: 256,
            ...(r.launcherConcurrency === 0 ? {} : { reservedConcurrentExecutions: r.launcherConcurrency }),
            environment: { variables: launcherEnvironment(name, r, deps, startedBy, stateTable) },
            loggingConfig: { logFormat: "Text", logGroup: launcherLogs.name },
            codePathOptions: { extraExcludePackages: launcherExcludedPackages() },
            tags: r.tags,
        },
        { parent, dependsOn: [launcherPolicy, capacityProviders] },
    );
    // An asynchronous invocation (the reconcile schedule, a routed event) that still fails after Lambda's retries hands
    // its record to the event bus, where the rule
    // `${name}-launcher-failures` (job-events.ts) hands it to the dead-letter queue: no job is lost; and the rule
    // `${name}-launcher-failure-events` to the launcher, which publishes the jobs' `Job Failed`.
    new aws.lambda.FunctionEventInvokeConfig(
        `${name}-launcher-invoke-config`,
        {
            functionName: launcher.name,
            maximumRetryAttempts: 2,
            destinationConfig: { onFailure: { destination: deps.eventBusArn } },
        },
        { parent, dependsOn: [launcherPolicy] },
    );
    // The intake in batches (a window of 1 s fills them in a burst), at most intakeConcurrency invocations at once; a
    // batch answers the records to retry (ReportBatchItemFailures). It polls with the launcher's role: after its policy.
    const mapping = new aws.lambda.EventSourceMapping(
        `${name}-intake-mapping`,
        {
            eventSourceArn: intake.arn,
            functionName: launcher.arn,
            batchSize: r.intakeBatchSize,
            maximumBatchingWindowInSeconds: 1,
            functionResponseTypes: ["ReportBatchItemFailures"],
            scalingConfig: { maximumConcurrency: r.intakeConcurrency },
            tags: r.tags,
        },
        { parent, dependsOn: [launcherPolicy] },
    );
    return { launcher, mapping, stateTable, startedBy };
}

/**
 * Packages kept out of the launcher's code archive: all of them. Pulumi's `CallbackFunction` packs the `dependencies`
 * of the program's package.json (the first one at or above the working directory, as Pulumi finds it) and theirs;
 * the launcher needs none: its handler is serialized whole into `__index.js` (functions/launcher.ts), and the AWS SDK
 * v3 it requires comes with Lambda's Node.js 22 runtime. So every dependency of the program (this package among them,
 * when another project installs it) and the SDK clients are excluded, and the archive is the handler alone.
 */
export function launcherExcludedPackages(cwd = process.cwd()): string[] {
    const sdk = ["@aws-sdk/client-dynamodb", "@aws-sdk/client-ecs", "@aws-sdk/client-eventbridge", "@aws-sdk/client-sqs"];
    for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
        const file = path.join(dir, "package.json");
        if (fs.existsSync(file)) {
            const dependencies = Object.keys(JSON.parse(fs.readFileSync(file, "utf8")).dependencies ?? {});
            return [...new Set([...sdk, ...dependencies])].sort();
        }
        if (path.dirname(dir) === dir) return sdk;
    }
}

/** The launcher's settings, by the names of `LAUNCHER_ENV` (the contract with `functions/launcher.ts`). */
function launcherEnvironment(name: string, r: ResolvedLambdaEcsWorkerArgs, deps: LauncherDeps, startedBy: string, stateTable?: aws.dynamodb.Table): Record<string, pulumi.Input<string>> {
    const { network } = deps;
    return {
        [LAUNCHER_ENV.queueUrl]: deps.queues.queue.url,
        [LAUNCHER_ENV.deadLetterQueueUrl]: deps.queues.deadLetterQueue.url,
        [LAUNCHER_ENV.cluster]: deps.cluster.cluster.arn,
        [LAUNCHER_ENV.taskDefinition]: deps.task.taskDefinition.arn,
        [LAUNCHER_ENV.containerName]: WORKER_CONTAINER_NAME,
        [LAUNCHER_ENV.subnets]: network.subnetIds.apply((ids) => ids.join(",")),
        [LAUNCHER_ENV.securityGroups]: network.securityGroupIds.apply((ids) => ids.join(",")),
        [LAUNCHER_ENV.assignPublicIp]: network.assignPublicIp ? "ENABLED" : "DISABLED",
        [LAUNCHER_ENV.capacityProviderStrategy]: JSON.stringify(deps.cluster.strategy),
        [LAUNCHER_ENV.maxTasks]: String(r.maxTasks),
        [LAUNCHER_ENV.launchMode]: r.launchMode,
        [LAUNCHER_ENV.inputPrefix]: r.inputPrefix,
        [LAUNCHER_ENV.inputSuffixes]: JSON.stringify(r.inputSuffixes),
        [LAUNCHER_ENV.outputPrefix]: r.outputPrefix,
        [LAUNCHER_ENV.outputSuffixes]: JSON.stringify(writtenSuffixes(r.outputSuffixes)),
        [LAUNCHER_ENV.startedBy]: startedBy,
        [LAUNCHER_ENV.eventBusName]: r.eventBusName,
        [LAUNCHER_ENV.eventSource]: eventSourceOf(name, r),
        [LAUNCHER_ENV.workerName]: name,
        [LAUNCHER_ENV.metricsNamespace]: METRICS.namespace,
        ...(deps.service
            ? { [LAUNCHER_ENV.serviceName]: deps.service.name, [LAUNCHER_ENV.backlogPerTask]: String(backlogPerTask(r)) }
            : {}),
        ...(r.launchMode !== "service" && usesSpot(r.capacity) ? { [LAUNCHER_ENV.spotFallback]: String(r.spotFallback) } : {}),
        ...(stateTable ? { [LAUNCHER_ENV.stateTable]: stateTable.name } : {}),
        ...(r.launchMode === "drain" ? { [LAUNCHER_ENV.workerConcurrency]: r.environment.WORKER_CONCURRENCY ?? "1" } : {}),
        [LAUNCHER_ENV.intakeMaxReceives]: String(INTAKE_MAX_RECEIVE_COUNT),
        [LAUNCHER_ENV.intakeConcurrency]: String(r.intakeConcurrency),
    };
}

/**
 * Uploads under `inputPrefix` with one of `inputSuffixes` go to the intake queue (one S3 filter per suffix), which S3
 * may send to from exactly this bucket and account (its queue policy; S3 checks it when the notification is put).
 */
export function createBucketNotification(
    name: string,
    r: ResolvedLambdaEcsWorkerArgs,
    deps: { bucket: BucketResources; queues: QueueResources; where: AccountContext },
    { parent }: ChildOptions,
): aws.s3.BucketNotification {
    const { intake } = deps.queues;
    const intakePolicy = new aws.sqs.QueuePolicy(
        `${name}-intake-policy`,
        {
            queueUrl: intake.url,
            policy: pulumi.jsonStringify(intakeQueuePolicy({ intakeQueueArn: intake.arn, bucketArn: deps.bucket.bucketArn, account: deps.where.account })),
        },
        { parent },
    );
    return new aws.s3.BucketNotification(
        `${name}-notification`,
        {
            bucket: deps.bucket.bucketName,
            queues: r.inputSuffixes.map((suffix) => ({
                queueArn: intake.arn,
                events: ["s3:ObjectCreated:*"],
                ...(r.inputPrefix !== "" ? { filterPrefix: r.inputPrefix } : {}),
                filterSuffix: suffix,
            })),
        },
        { parent, dependsOn: [intakePolicy] },
    );
}
