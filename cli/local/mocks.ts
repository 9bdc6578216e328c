/**
 * The Pulumi mocks `lambda-ecs-worker local` evaluates a stack under, and every unit test of this repository too.
 * Importing this module installs them (before the code under test is imported) and exposes a recorder of every
 * `newResource` call.
 *
 * Remote components (`awsx:*`) are registered as a single resource under mocks: their children are invisible and
 * their outputs are undefined unless returned here, so `newResource` fakes the outputs the component reads.
 */
import * as pulumi from "@pulumi/pulumi";

export interface RecordedResource {
    type: string;
    name: string;
    inputs: any;
    /** The URN Pulumi gave the resource; its type chain shows the parent. */
    urn: string;
    id: string;
    /** The outputs the mocks gave it (its inputs plus faked names, ARNs and URLs). */
    outputs: Record<string, any>;
}

export const recorded: RecordedResource[] = [];

/** Forget every recorded resource (call before building a new stack in a test). */
export function resetRecorded(): void {
    recorded.length = 0;
}

export const FAKE_ACCOUNT = "123456789012";
export const FAKE_REGION = "us-east-1";

function fakeOutputs(args: pulumi.runtime.MockResourceArgs): Record<string, any> {
    const arn = (service: string, what: string) =>
        `arn:aws:${service}:${FAKE_REGION}:${FAKE_ACCOUNT}:${what}`;
    const i = args.inputs;
    switch (args.type) {
        case "awsx:ecr:Repository":
            return { url: `${FAKE_ACCOUNT}.dkr.ecr.${FAKE_REGION}.amazonaws.com/${args.name}-abc123` };
        case "awsx:ecr:Image":
            return {
                imageUri: `${i.repositoryUrl}@sha256:${"0".repeat(64)}`,
            };
        case "aws:s3/bucketV2:BucketV2":
        case "aws:s3/bucket:Bucket": {
            const bucket = i.bucket ?? `${args.name}-0000000`;
            return { bucket, arn: `arn:aws:s3:::${bucket}` };
        }
        case "aws:sqs/queue:Queue": {
            const name = i.name ?? `${args.name}-0000000`;
            return { name, arn: arn("sqs", name), url: `https://sqs.${FAKE_REGION}.amazonaws.com/${FAKE_ACCOUNT}/${name}` };
        }
        case "aws:iam/role:Role": {
            const name = i.name ?? `${args.name}-0000000`;
            return { name, arn: `arn:aws:iam::${FAKE_ACCOUNT}:role/${name}` };
        }
        case "aws:ecs/cluster:Cluster":
            return { name: i.name ?? args.name, arn: arn("ecs", `cluster/${i.name ?? args.name}`) };
        case "aws:ecs/taskDefinition:TaskDefinition":
            return { arn: arn("ecs", `task-definition/${i.family}:1`), revision: 1 };
        case "aws:ecs/service:Service":
            return { name: i.name ?? args.name };
        case "aws:cloudwatch/logGroup:LogGroup": {
            const name = i.name ?? `${args.name}-0000000`;
            return { name, arn: arn("logs", `log-group:${name}`) };
        }
        case "aws:lambda/function:Function": {
            const name = i.name ?? `${args.name}-0000000`;
            return { name, arn: arn("lambda", `function:${name}`) };
        }
        case "aws:dynamodb/table:Table": {
            const name = i.name ?? `${args.name}-0000000`;
            return { name, arn: arn("dynamodb", `table/${name}`) };
        }
        case "aws:ec2/securityGroup:SecurityGroup":
            return { arn: arn("ec2", `security-group/sg-${args.name}`) };
        case "aws:cloudwatch/eventRule:EventRule": {
            const name = i.name ?? `${args.name}-0000000`;
            return { name, arn: `arn:aws:events:${FAKE_REGION}:${FAKE_ACCOUNT}:rule/${name}` };
        }
        case "aws:appautoscaling/target:Target":
            return {};
        case "aws:appautoscaling/policy:Policy":
            return { arn: arn("autoscaling", `scalingPolicy:${args.name}`) };
        default:
            return {};
    }
}

pulumi.runtime.setMocks(
    {
        newResource(args: pulumi.runtime.MockResourceArgs) {
            const id = args.type.startsWith("awsx:") ? "" : `${args.name}-id`;
            const state = { ...args.inputs, ...fakeOutputs(args) };
            // The URN is filled in by the newUrn hook below, right after this call returns.
            recorded.push({ type: args.type, name: args.name, inputs: args.inputs, urn: "", id, outputs: state });
            return { id, state };
        },
        call(args: pulumi.runtime.MockCallArgs) {
            switch (args.token) {
                case "aws:ec2/getVpc:getVpc":
                    return { id: "vpc-default", arn: `arn:aws:ec2:${FAKE_REGION}:${FAKE_ACCOUNT}:vpc/vpc-default` };
                case "aws:ec2/getSubnets:getSubnets":
                    return { ids: ["subnet-a", "subnet-b", "subnet-c"] };
                case "aws:index/getCallerIdentity:getCallerIdentity":
                    return { accountId: FAKE_ACCOUNT, arn: `arn:aws:iam::${FAKE_ACCOUNT}:user/test`, userId: "test" };
                case "aws:index/getRegion:getRegion":
                    return { name: FAKE_REGION, region: FAKE_REGION, id: FAKE_REGION };
                case "aws:index/getPartition:getPartition":
                    return { partition: "aws", dnsSuffix: "amazonaws.com" };
                default:
                    return args.inputs;
            }
        },
    },
    "project",
    "test",
    false,
);

// MockResourceArgs carries no parent: take the URN (whose type chain names the parent) from the mock monitor.
const monitor = (pulumi.runtime as any).getMonitor();
const newUrn = monitor.newUrn.bind(monitor);
monitor.newUrn = (parent: string, type: string, name: string): string => {
    const urn = newUrn(parent, type, name);
    const rec = recorded.find((r) => r.urn === "" && r.type === type && r.name === name);
    if (rec) rec.urn = urn;
    return urn;
};

/** The URN's type chain, e.g. `project:index:LambdaEcsWorker$aws:sqs/queue:Queue`. */
export function typeChain(urn: string): string {
    return urn.split("::")[2];
}

/** Resolve an Output (or plain value) to its value; works under mocks. */
export function valueOf<T>(o: pulumi.Input<T> | undefined): Promise<T> {
    return new Promise((resolve) => pulumi.output(o as pulumi.Input<T>).apply((v) => resolve(v as T)));
}

/** The recorded resources of one type. */
export function ofType(type: string): RecordedResource[] {
    return recorded.filter((r) => r.type === type);
}

/** Wait for Pulumi to finish registering everything created so far. */
export async function settle(): Promise<void> {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 50));
}

/** Wait until every resource registration started so far has reached the mocks (Pulumi's outstanding RPCs). */
export async function registrationsSettled(): Promise<void> {
    // waitForRPCs is what pulumi.runtime.disconnect() awaits at the end of a program: every registration in flight.
    const settings = require("@pulumi/pulumi/runtime/settings");
    await settings.waitForRPCs();
    if (recorded.some((r) => r.urn === "")) throw new Error("a registered resource got no URN");
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
