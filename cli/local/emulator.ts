/**
 * Applies what the stack declares (see stack.ts) to the embedded emulator (moto_server): bucket, work queue, DLQ and
 * intake queue with their declared attributes and redrive policies, the bucket notification to the intake (same
 * events and prefix/suffix filters: moto delivers S3's notifications to it), the cluster, the task definition, and the
 * launcher's environment with every fake ARN/URL of the mocks replaced by the emulator's real one.
 */
import { CreateBucketCommand, PutBucketNotificationConfigurationCommand, S3Client } from "@aws-sdk/client-s3";
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { CreateClusterCommand, ECSClient, RegisterTaskDefinitionCommand } from "@aws-sdk/client-ecs";

import { DeclaredStack } from "./stack";
import { applyDeclared, AppliedRecord } from "./appliers";
import { motoClientConfig } from "./moto";

export interface Clients {
    s3: S3Client;
    sqs: SQSClient;
    ecs: ECSClient;
}

export function makeClients(endpoint: string, region: string): Clients {
    const base = { ...motoClientConfig(endpoint), region, maxAttempts: 3 };
    return { s3: new S3Client({ ...base, forcePathStyle: true }), sqs: new SQSClient(base), ecs: new ECSClient(base) };
}

export interface Provisioned {
    bucket: string;
    queueUrl: string;
    dlqUrl: string;
    /** The intake queue: where the bucket's notifications land, read by the emulated event source mapping (intake.ts). */
    intakeQueueUrl: string;
    intakeQueueArn: string;
    clusterArn: string;
    taskDefinitionArn: string;
    subnets: string[];
    securityGroups: string[];
    /** The launcher function's environment, emulator values in place of the mocks' fake ones. */
    launcherEnv: Record<string, string>;
    /** Notes on where the local run departs from the declared stack (emulator limits). */
    notes: string[];
    /** fake value → emulator value. */
    replacements: [string, string][];
    /** One record per declared resource: applied to the emulator or not (see appliers.ts). */
    applied: AppliedRecord[];
    /**
     * The stand-in queues of the stack's EventBridge rules whose target is a Lambda function (the launcher): what a
     * rule matches lands there, and the local run hands it to the launcher (events.ts).
     */
    lambdaTargetQueues: string[];
}

/** Replaces every fake value in strings, deeply (objects, arrays, JSON text). */
export function substitute<T>(value: T, replacements: [string, string][]): T {
    if (typeof value === "string") {
        let s: string = value;
        for (const [from, to] of replacements) if (from !== "") s = s.split(from).join(to);
        return s as unknown as T;
    }
    if (Array.isArray(value)) return value.map((v) => substitute(v, replacements)) as unknown as T;
    if (value && typeof value === "object") {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, replacements)])) as T;
    }
    return value;
}

/** One EC2 Query API call against moto (the project has no EC2 SDK client; moto routes on the credential scope). */
async function ec2(endpoint: string, region: string, params: Record<string, string>): Promise<string> {
    const res = await fetch(endpoint + "/", {
        method: "POST",
        headers: {
            "content-type": "application/x-www-form-urlencoded",
            authorization: `AWS4-HMAC-SHA256 Credential=testing/20260101/${region}/ec2/aws4_request, SignedHeaders=host, Signature=0`,
        },
        body: new URLSearchParams({ Version: "2016-11-15", ...params }).toString(),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`EC2 ${params.Action} on the emulator failed: ${res.status} ${text.slice(0, 300)}`);
    return text;
}

export async function provision(c: Clients, endpoint: string, region: string, d: DeclaredStack): Promise<Provisioned> {
    const notes: string[] = [];
    const replacements: [string, string][] = [];

    // ------------------------------------------------------------ bucket
    const bucket = d.bucketName;
    await c.s3.send(new CreateBucketCommand({ Bucket: bucket }));

    // ------------------------------------------------------------ queues (DLQ first: the work queue's redrive names it)
    const createQueue = async (name: string, attributes: Record<string, string>) => {
        const url = (await c.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }))).QueueUrl!;
        const arn = (await c.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }))).Attributes!.QueueArn!;
        return { url, arn };
    };
    const dlq = await createQueue(d.deadLetterQueue.name, d.deadLetterQueue.attributes);
    replacements.push([d.deadLetterQueue.fakeUrl, dlq.url], [d.deadLetterQueue.fakeArn, dlq.arn]);
    const workAttrs = substitute(d.queue.attributes, replacements);
    const queue = await createQueue(d.queue.name, workAttrs);
    replacements.push([d.queue.fakeUrl, queue.url]);
    const intake = await createQueue(d.intakeQueue.name, substitute(d.intakeQueue.attributes, replacements));
    replacements.push([d.intakeQueue.fakeUrl, intake.url], [d.intakeQueue.fakeArn, intake.arn]);

    // ------------------------------------------------------------ notifications → the intake queue, same filters
    await c.s3.send(
        new PutBucketNotificationConfigurationCommand({
            Bucket: bucket,
            NotificationConfiguration: {
                QueueConfigurations: d.notifications.map((n, i) => {
                    const rules = [
                        ...(n.filterPrefix ? [{ Name: "prefix" as const, Value: n.filterPrefix }] : []),
                        ...(n.filterSuffix ? [{ Name: "suffix" as const, Value: n.filterSuffix }] : []),
                    ];
                    return {
                        Id: `intake-${i}`,
                        QueueArn: intake.arn,
                        Events: n.events as any,
                        ...(rules.length > 0 ? { Filter: { Key: { FilterRules: rules } } } : {}),
                    };
                }),
            },
        }),
    );
    notes.push(
        `the intake's event source mapping is emulated (moto's would invoke the function itself, which needs Docker): batches of up to ${d.mapping.batchSize}, a ${d.mapping.windowSeconds} s window, up to ${d.mapping.maxConcurrency} launcher processes at once${d.mapping.reportBatchItemFailures ? ", batchItemFailures back to the queue" : ""}`,
    );

    // ------------------------------------------------------------ network: the emulator's default VPC subnets + a security group
    const subnetsXml = await ec2(endpoint, region, { Action: "DescribeSubnets", "Filter.1.Name": "default-for-az", "Filter.1.Value.1": "true" });
    const subnets = [...subnetsXml.matchAll(/<subnetId>([^<]+)<\/subnetId>/g)].map((m) => m[1]).sort();
    const vpcId = /<vpcId>([^<]+)<\/vpcId>/.exec(subnetsXml)?.[1];
    if (subnets.length === 0 || !vpcId) throw new Error("the emulator has no default VPC subnets");
    const sgXml = await ec2(endpoint, region, {
        Action: "CreateSecurityGroup",
        GroupName: `${d.cluster.name}-tasks`,
        GroupDescription: "egress-only security group of the worker tasks (local run)",
        VpcId: vpcId,
    });
    const sg = /<groupId>([^<]+)<\/groupId>/.exec(sgXml)?.[1];
    if (!sg) throw new Error("the emulator did not return a security group id");
    const fakeSubnets = (d.launcher.environment.SUBNETS ?? "").split(",").filter(Boolean);
    const fakeGroups = (d.launcher.environment.SECURITY_GROUPS ?? "").split(",").filter(Boolean);
    if (fakeSubnets.length > 0) replacements.push([fakeSubnets.join(","), subnets.slice(0, fakeSubnets.length).join(",")]);
    if (fakeGroups.length > 0) replacements.push([fakeGroups.join(","), sg]);

    // ------------------------------------------------------------ cluster + task definition
    // moto advances a task's lastStatus (RUNNING → DEACTIVATING → ... → STOPPED) each time DescribeTasks names it,
    // while our worker is still running. Keep tasks RUNNING until they are stopped, like ECS.
    const sm = await fetch(`${endpoint}/moto-api/state-manager/set-transition`, {
        method: "POST",
        body: JSON.stringify({ model_name: "ecs::task", transition: { progression: "manual", times: 1000000000 } }),
    });
    if (!sm.ok) notes.push(`could not pin ECS task statuses in the emulator (${sm.status}); described tasks may show as stopping`);

    const cluster = await c.ecs.send(
        new CreateClusterCommand({
            clusterName: d.cluster.name,
            settings: d.cluster.settings as any,
            capacityProviders: d.capacityProviders.capacityProviders,
            defaultCapacityProviderStrategy: d.capacityProviders.strategy,
        }),
    );
    const clusterArn = cluster.cluster!.clusterArn!;
    replacements.push([d.cluster.fakeArn, clusterArn]);

    const t = d.taskDefinition;
    const registered = await c.ecs.send(
        new RegisterTaskDefinitionCommand({
            family: t.family,
            cpu: t.cpu,
            memory: t.memory,
            networkMode: t.networkMode as any,
            requiresCompatibilities: t.requiresCompatibilities as any,
            volumes: t.volumes,
            runtimePlatform: t.runtimePlatform as any,
            executionRoleArn: t.executionRoleArn,
            taskRoleArn: t.taskRoleArn,
            containerDefinitions: substitute(t.containerDefinitions, replacements),
        }),
    );
    const taskDefinitionArn = registered.taskDefinition!.taskDefinitionArn!;
    replacements.push([t.fakeArn, taskDefinitionArn]);

    // ------------------------------------------------------------ launcher settings
    const launcherEnv = substitute(d.launcher.environment, replacements);
    if (launcherEnv.CAPACITY_PROVIDER_STRATEGY && launcherEnv.CAPACITY_PROVIDER_STRATEGY !== "[]") {
        // moto's RunTask only places tasks given launchType FARGATE; with a capacity provider strategy it looks for
        // EC2 container instances and fails. The launcher sends launchType FARGATE when the strategy is empty.
        notes.push(`CAPACITY_PROVIDER_STRATEGY ${launcherEnv.CAPACITY_PROVIDER_STRATEGY} → [] (moto's RunTask only places launchType FARGATE tasks)`);
        launcherEnv.CAPACITY_PROVIDER_STRATEGY = "[]";
    }

    // ------------------------------------------------------------ the rest of the declared resources (applier table)
    // Resource ids under the mocks are `<name>-id`; on AWS a bucket's id is its name and a queue's its URL.
    const ids: [string, string][] = [];
    for (const r of d.resources) {
        if (r.type === "aws:s3/bucket:Bucket" || r.type === "aws:s3/bucketV2:BucketV2") ids.push([r.id, bucket]);
        if (r.type === "aws:sqs/queue:Queue") {
            const name = r.inputs.name ?? `${r.name}-0000000`;
            if (name === d.queue.name) ids.push([r.id, queue.url]);
            if (name === d.deadLetterQueue.name) ids.push([r.id, dlq.url]);
            if (name === d.intakeQueue.name) ids.push([r.id, intake.url]);
        }
    }
    const lambdaTargetQueues: string[] = [];
    const applied = await applyDeclared(d.resources, { c, endpoint, region, replacements: [...ids, ...replacements], vpcId, subnets, notes, lambdaTargetQueues });
    return {
        bucket,
        queueUrl: queue.url,
        dlqUrl: dlq.url,
        intakeQueueUrl: intake.url,
        intakeQueueArn: intake.arn,
        clusterArn,
        taskDefinitionArn,
        subnets,
        securityGroups: [sg],
        launcherEnv,
        notes,
        replacements,
        applied,
        lambdaTargetQueues,
    };
}
