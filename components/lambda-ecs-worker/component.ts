/**
 * The `LambdaEcsWorker` component: validates and resolves its arguments once, then runs the steps of this folder in
 * order, each creating its children (`{ parent: this }`, names `${name}-...`) and returning what the next step needs.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

import { eventSourceOf, LambdaEcsWorkerArgs, resolveArgs } from "./args";
import { createBucket } from "./bucket";
import { createCluster } from "./cluster";
import { createDashboard } from "./dashboard";
import { createImage } from "./image";
import { createJobEventRouting, eventBusArnOf } from "./job-events";
import { createBucketNotification, createLauncher } from "./launcher";
import { LAUNCH_MODE_STEPS, ModeContext } from "./modes";
import { createNetwork } from "./network";
import { createQueues } from "./queues";
import { createTask, createTaskLogGroup } from "./task";
import { validateLambdaEcsWorkerArgs } from "./validate";

/**
 * The Lambda → SQS → ECS worker pattern: uploads to an S3 bucket reach a launcher Lambda (through an intake queue, in
 * batches), which queues one job per object and starts just enough Fargate tasks; each task drains the queue, writes its outputs next to the input
 * (or under `outputPrefix`) and exits. Failed jobs end in a dead-letter queue with a reason.
 *
 * ```ts
 * const render = new LambdaEcsWorker("render", { image: { context: "./worker-image" } });
 * ```
 */
export class LambdaEcsWorker extends pulumi.ComponentResource {
    /** Name of the bucket jobs are uploaded to and outputs written to. */
    public readonly bucketName: pulumi.Output<string>;
    /** URL of the work queue. */
    public readonly queueUrl: pulumi.Output<string>;
    /** URL of the dead-letter queue, where failed jobs end with their reason. */
    public readonly deadLetterQueueUrl: pulumi.Output<string>;
    /** ARN of the ECS cluster the tasks run in. */
    public readonly clusterArn: pulumi.Output<string>;
    /** ARN of the worker's task definition. */
    public readonly taskDefinitionArn: pulumi.Output<string>;
    /** Name of the launcher Lambda function. */
    public readonly launcherFunctionName: pulumi.Output<string>;
    /** Name of the CloudWatch log group of the worker tasks. */
    public readonly logGroupName: pulumi.Output<string>;
    /** URI of the image the tasks run. */
    public readonly imageUri: pulumi.Output<string>;
    /** Name of the worker's CloudWatch dashboard (queues, tasks, job seconds, failures, launcher errors). */
    public readonly dashboardName: pulumi.Output<string>;
    /** The `source` of this worker's job events (`Job Succeeded` / `Job Failed`), for users' EventBridge rules. */
    public readonly eventSource: string;
    /** The event bus the job events go to (`eventBusName`, as given). */
    public readonly eventBusName: pulumi.Output<string>;

    /** The bucket, when this component created it. */
    public readonly bucket?: aws.s3.Bucket;
    /** The work queue. */
    public readonly queue: aws.sqs.Queue;
    /** The dead-letter queue. */
    public readonly deadLetterQueue: aws.sqs.Queue;
    /** The intake queue: the bucket's notifications, delivered to the launcher in batches by an event source mapping. */
    public readonly intakeQueue: aws.sqs.Queue;
    /** The event source mapping of the intake queue to the launcher. */
    public readonly intakeMapping: aws.lambda.EventSourceMapping;
    /** Drain and service: the table that coordinates the launcher's task-start decisions. */
    public readonly stateTable?: aws.dynamodb.Table;
    /** The alarm that fires when a job lands in the dead-letter queue. */
    public readonly deadLetterAlarm: aws.cloudwatch.MetricAlarm;
    /** The alarm that fires when a job has waited longer than `oldestJobAlarmSeconds`. */
    public readonly oldestJobAlarm: aws.cloudwatch.MetricAlarm;
    /** The ECS cluster. */
    public readonly cluster: aws.ecs.Cluster;
    /** The worker's task definition. */
    public readonly taskDefinition: aws.ecs.TaskDefinition;
    /** The launcher Lambda function. */
    public readonly launcher: aws.lambda.Function;
    /** The role the worker's code runs as. */
    public readonly taskRole: aws.iam.Role;
    /** The role ECS uses to pull the image and write logs. */
    public readonly executionRole: aws.iam.Role;
    /** The egress-only security group, when this component created it. */
    public readonly securityGroup?: aws.ec2.SecurityGroup;
    /** The ECS service, in `launchMode: "service"`. */
    public readonly service?: aws.ecs.Service;
    /** The worker's CloudWatch dashboard. */
    public readonly dashboard: aws.cloudwatch.Dashboard;
    /** The alarm that fires when the launcher fails. */
    public readonly launcherErrorsAlarm: aws.cloudwatch.MetricAlarm;
    /** Drain and per-job: the alarm that fires when tasks could not be started. */
    public readonly startFailuresAlarm?: aws.cloudwatch.MetricAlarm;

    constructor(name: string, args: LambdaEcsWorkerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("lambda-ecs-worker:index:LambdaEcsWorker", name, {}, opts);
        const problems = validateLambdaEcsWorkerArgs(args, name);
        if (problems.length > 0) {
            throw new pulumi.ResourceError(`LambdaEcsWorker "${name}": invalid arguments:\n  ${problems.join("\n  ")}`, this);
        }
        const r = resolveArgs(args);
        const parent = { parent: this };
        const where = {
            region: aws.getRegionOutput({}, parent).region,
            partition: aws.getPartitionOutput({}, parent).partition,
            account: aws.getCallerIdentityOutput({}, parent).accountId,
        };

        const bucket = createBucket(name, r, { partition: where.partition }, parent);
        const queues = createQueues(name, r, parent);
        const image = createImage(name, r, parent);
        const logGroup = createTaskLogGroup(name, r, parent);
        const network = createNetwork(name, r, parent);
        const cluster = createCluster(name, r, parent);
        const eventBusArn = eventBusArnOf(r.eventBusName, where);
        const task = createTask(
            name,
            r,
            { image, logGroup, queues, bucketArn: bucket.bucketArn, eventBusArn, cluster: cluster.cluster, ...where },
            parent,
        );

        const mode = LAUNCH_MODE_STEPS[r.launchMode];
        const ctx: ModeContext = { r, queues, network, cluster, task };
        const beforeLauncher = mode.beforeLauncher?.(name, ctx, parent) ?? {};
        const launcher = createLauncher(
            name,
            r,
            { bucket, queues, network, cluster, task, where, eventBusArn, service: beforeLauncher.service },
            parent,
        );
        const jobEvents = createJobEventRouting(
            name,
            r,
            { queues, launcher: launcher.launcher, deadLetterRules: beforeLauncher.startFailureRule ? [beforeLauncher.startFailureRule] : [] },
            parent,
        );
        const afterLauncher = mode.afterLauncher?.(name, { ...ctx, launcher, jobEvents, beforeLauncher }, parent);
        createBucketNotification(name, r, { bucket, queues, where }, parent);
        const dashboard = createDashboard(
            name,
            r,
            {
                region: where.region,
                queueName: queues.queue.name,
                deadLetterQueueName: queues.deadLetterQueue.name,
                intakeQueueName: queues.intake.name,
                clusterName: cluster.cluster.name,
                serviceName: beforeLauncher.service?.name,
                launcherFunctionName: launcher.launcher.name,
                startFailureRuleName: beforeLauncher.startFailureRule?.name,
            },
            parent,
        );

        this.bucket = bucket.bucket;
        this.queue = queues.queue;
        this.deadLetterQueue = queues.deadLetterQueue;
        this.intakeQueue = queues.intake;
        this.intakeMapping = launcher.mapping;
        this.stateTable = launcher.stateTable;
        this.deadLetterAlarm = queues.deadLetterAlarm;
        this.oldestJobAlarm = queues.oldestJobAlarm;
        this.securityGroup = network.securityGroup;
        this.cluster = cluster.cluster;
        this.taskDefinition = task.taskDefinition;
        this.taskRole = task.taskRole;
        this.executionRole = task.executionRole;
        this.service = beforeLauncher.service ?? afterLauncher?.service;
        this.launcher = launcher.launcher;
        this.dashboard = dashboard.dashboard;
        this.launcherErrorsAlarm = dashboard.launcherErrorsAlarm;
        this.startFailuresAlarm = dashboard.startFailuresAlarm;

        this.bucketName = bucket.bucketName;
        this.queueUrl = this.queue.url;
        this.deadLetterQueueUrl = this.deadLetterQueue.url;
        this.clusterArn = this.cluster.arn;
        this.taskDefinitionArn = this.taskDefinition.arn;
        this.launcherFunctionName = this.launcher.name;
        this.logGroupName = logGroup.name;
        this.imageUri = image.imageUri;
        this.dashboardName = this.dashboard.dashboardName;
        this.eventSource = eventSourceOf(name, r);
        this.eventBusName = pulumi.output(r.eventBusName);
        this.registerOutputs({
            bucketName: this.bucketName,
            queueUrl: this.queueUrl,
            deadLetterQueueUrl: this.deadLetterQueueUrl,
            clusterArn: this.clusterArn,
            taskDefinitionArn: this.taskDefinitionArn,
            launcherFunctionName: this.launcherFunctionName,
            logGroupName: this.logGroupName,
            imageUri: this.imageUri,
            dashboardName: this.dashboardName,
            eventSource: this.eventSource,
            eventBusName: this.eventBusName,
        });
    }
}
