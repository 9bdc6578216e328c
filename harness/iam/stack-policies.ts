/**
 * The exact IAM policies of a LambdaEcsWorker stack built under the Pulumi mocks: each role's inline policy (the
 * identity policy of the role's sessions), the bucket policy and the queue policies (resource policies), plus the
 * names the mocks gave the resources, so that a moto world can be created with the very same ARNs.
 */
import { FAKE_ACCOUNT, FAKE_REGION, RecordedResource, valueOf } from "../mocks";
import { buildWorker, one } from "../stack";

import { LambdaEcsWorkerArgs } from "../../components";
import { NamedPolicy, Policy } from "./evaluate";

export type RoleKey = "launcher" | "task" | "execution";

export interface StackPolicies {
    name: string;
    resources: RecordedResource[];
    /** Identity policy and role ARN per role. */
    roles: Record<RoleKey, { arn: string; policy: NamedPolicy }>;
    /** The bucket policy, when the component created the bucket. */
    bucketPolicy?: NamedPolicy;
    /** Queue policies by queue ARN. */
    queuePolicies: Record<string, NamedPolicy>;
    bucket: string;
    queue: { name: string; arn: string; url: string };
    dlq: { name: string; arn: string; url: string };
    /** The intake queue (S3's notifications, the launcher's event source mapping). */
    intake: { name: string; arn: string; url: string };
    /** Drain and service: the launcher's coordination table. */
    stateTable?: { name: string; arn: string };
    cluster: { name: string; arn: string };
    taskDefinitionArn: string;
    taskDefinitionFamily: string;
    /** The worker container's environment, as the task definition sets it. */
    containerEnv: Record<string, string>;
    containerName: string;
    imageUri: string;
    /** Whether the task definition has tags (RunTask with propagateTags then tags the task). */
    taskDefinitionTagged: boolean;
    launcherLogGroup: string;
    taskLogGroup: string;
    /** ARN of the per-job start-failure rule, when there is one. */
    startFailureRuleArn?: string;
    /** ARN of the rule `<name>-launcher-failures` (every mode): hands Lambda's failed-invocation record to the DLQ. */
    launcherFailureRuleArn: string;
    /** The job events' bus (as the container's EVENT_BUS_NAME names it, and its ARN) and source (EVENT_SOURCE). */
    eventBus: { name: string; arn: string };
    eventSource: string;
    /** Service mode: the ECS service the launcher wakes (the launcher's SERVICE_NAME) and its ARN. */
    service?: { name: string; arn: string };
}

/** Build `new LambdaEcsWorker(name, args)` under the mocks and collect its policies and resource names. */
export async function stackPolicies(name: string, args: LambdaEcsWorkerArgs): Promise<StackPolicies> {
    const { worker, resources } = await buildWorker(name, args);
    const policyOf = (type: string, n: string): NamedPolicy => ({ name: n, policy: JSON.parse(one(resources, type, n).inputs.policy) as Policy });
    const role = async (key: RoleKey): Promise<{ arn: string; policy: NamedPolicy }> => {
        const r = key === "launcher" ? worker.launcher.role : key === "task" ? worker.taskRole.arn : worker.executionRole.arn;
        return { arn: String(await valueOf(r as any)), policy: policyOf("aws:iam/rolePolicy:RolePolicy", `${name}-${key}-policy`) };
    };
    const queueOf = async (q: typeof worker.queue) => ({
        name: String(await valueOf(q.name)),
        arn: String(await valueOf(q.arn)),
        url: String(await valueOf(q.url)),
    });
    const queue = await queueOf(worker.queue);
    const dlq = await queueOf(worker.deadLetterQueue);
    const intake = await queueOf(worker.intakeQueue);
    const stateTable = worker.stateTable && { name: String(await valueOf(worker.stateTable.name)), arn: String(await valueOf(worker.stateTable.arn)) };
    const queuePolicies: Record<string, NamedPolicy> = {};
    for (const r of resources.filter((x) => x.type === "aws:sqs/queuePolicy:QueuePolicy")) {
        const arn = [queue, dlq, intake].find((q) => q.url === r.inputs.queueUrl)?.arn;
        if (!arn) throw new Error(`queue policy ${r.name} of an unknown queue ${r.inputs.queueUrl}`);
        queuePolicies[arn] = { name: r.name, policy: JSON.parse(r.inputs.policy) };
    }
    const bucketPolicy = resources.find((r) => r.type === "aws:s3/bucketPolicy:BucketPolicy");
    const td = one(resources, "aws:ecs/taskDefinition:TaskDefinition", `${name}-task`);
    const [container] = JSON.parse(td.inputs.containerDefinitions);
    const containerEnv: Record<string, string> = {};
    for (const e of container.environment ?? []) containerEnv[e.name] = String(e.value);
    const launcherFn = one(resources, "aws:lambda/function:Function", `${name}-launcher`);
    const ruleArn = (suffix: string): string | undefined => {
        const rule = resources.find((r) => r.type === "aws:cloudwatch/eventRule:EventRule" && r.name === `${name}-${suffix}`);
        return rule && `arn:aws:events:${FAKE_REGION}:${FAKE_ACCOUNT}:rule/${rule.inputs.name ?? `${rule.name}-0000000`}`;
    };
    const startFailureRuleArn = ruleArn("start-failures");
    const launcherFailureRuleArn = ruleArn("launcher-failures");
    if (!launcherFailureRuleArn) throw new Error(`no rule ${name}-launcher-failures`);
    const cluster = { name: String(await valueOf(worker.cluster.name)), arn: String(await valueOf(worker.cluster.arn)) };
    const bus = containerEnv.EVENT_BUS_NAME;
    const serviceName = launcherFn.inputs.environment?.variables?.SERVICE_NAME;
    return {
        name,
        resources,
        roles: { launcher: await role("launcher"), task: await role("task"), execution: await role("execution") },
        ...(bucketPolicy ? { bucketPolicy: { name: bucketPolicy.name, policy: JSON.parse(bucketPolicy.inputs.policy) } } : {}),
        queuePolicies,
        bucket: String(await valueOf(worker.bucketName)),
        queue,
        dlq,
        intake,
        ...(stateTable ? { stateTable } : {}),
        cluster,
        taskDefinitionArn: String(await valueOf(worker.taskDefinitionArn)),
        taskDefinitionFamily: td.inputs.family,
        containerEnv,
        containerName: container.name,
        imageUri: String(await valueOf(worker.imageUri)),
        taskDefinitionTagged: Object.keys(td.inputs.tags ?? {}).length > 0,
        launcherLogGroup: launcherFn.inputs.loggingConfig.logGroup,
        taskLogGroup: container.logConfiguration.options["awslogs-group"],
        ...(startFailureRuleArn ? { startFailureRuleArn } : {}),
        launcherFailureRuleArn,
        eventBus: { name: bus, arn: bus.startsWith("arn:") ? bus : `arn:aws:events:${FAKE_REGION}:${FAKE_ACCOUNT}:event-bus/${bus}` },
        eventSource: containerEnv.EVENT_SOURCE,
        ...(serviceName !== undefined
            ? { service: { name: String(serviceName), arn: cluster.arn.replace(/:cluster\/.*$/, `:service/${cluster.name}/${serviceName}`) } }
            : {}),
    };
}
