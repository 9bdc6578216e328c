/**
 * LambdaEcsWorker for Python, Go, .NET and YAML programs: Pulumi's component provider (what `pulumi package add` runs
 * for this package, PulumiPlugin.yaml `runtime: nodejs`) derives the schema from the TypeScript args with its
 * analyzer, and builds the component from the plain JSON inputs another language's program sends.
 */
import { recorded, resetRecorded, valueOf } from "../harness/mocks";

import { ComponentProvider } from "@pulumi/pulumi/provider/experimental";
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";

import { LambdaEcsWorker } from "../components";
import { registrationsSettled } from "../harness/stack";

const ROOT = path.resolve(__dirname, "..");
const TOKEN = "lambda-ecs-worker:index:LambdaEcsWorker";

/** Every argument of LambdaEcsWorkerArgs, as the schema must list them. */
const INPUTS = [
    "acceptableWaitSeconds", "alarmActions", "assignPublicIp", "bucketKmsKeyArn", "bucketName", "capacity", "command",
    "containerInsights", "cpu", "deadLetterRetentionSeconds", "environment", "ephemeralStorageGiB", "eventBusName",
    "eventSource", "expectedJobSeconds", "forceDestroyBucket", "image", "inputPrefix", "inputSuffixes", "intakeBatchSize", "intakeConcurrency",
    "jobTimeoutSeconds", "launchMode", "launcherConcurrency", "logRetentionDays", "maxReceiveCount", "maxTasks",
    "memory", "messageRetentionSeconds", "oldestJobAlarmSeconds", "outputPrefix", "outputSuffixes",
    "reconcileIntervalMinutes", "securityGroupIds", "spotFallback", "stopTimeout", "subnetIds", "tags",
    "visibilityTimeoutSeconds", "vpcId",
];

/** Every output of the component (its public properties), with the resources typed as the aws package's. */
const OUTPUTS: Record<string, string> = {
    bucketName: "string", queueUrl: "string", deadLetterQueueUrl: "string", clusterArn: "string", taskDefinitionArn: "string",
    launcherFunctionName: "string", logGroupName: "string", imageUri: "string", dashboardName: "string", eventSource: "string",
    eventBusName: "string",
    bucket: "aws:s3/bucket:Bucket", queue: "aws:sqs/queue:Queue", deadLetterQueue: "aws:sqs/queue:Queue",
    deadLetterAlarm: "aws:cloudwatch/metricAlarm:MetricAlarm", oldestJobAlarm: "aws:cloudwatch/metricAlarm:MetricAlarm",
    cluster: "aws:ecs/cluster:Cluster", taskDefinition: "aws:ecs/taskDefinition:TaskDefinition",
    launcher: "aws:lambda/function:Function", taskRole: "aws:iam/role:Role", executionRole: "aws:iam/role:Role",
    securityGroup: "aws:ec2/securityGroup:SecurityGroup", service: "aws:ecs/service:Service",
    dashboard: "aws:cloudwatch/dashboard:Dashboard", launcherErrorsAlarm: "aws:cloudwatch/metricAlarm:MetricAlarm",
    startFailuresAlarm: "aws:cloudwatch/metricAlarm:MetricAlarm", intakeQueue: "aws:sqs/queue:Queue",
    intakeMapping: "aws:lambda/eventSourceMapping:EventSourceMapping", stateTable: "aws:dynamodb/table:Table",
};

function provider(): ComponentProvider {
    // What cmd/run-plugin does for this package: its package.json's name, the components its main exports.
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
    return new ComponentProvider({ name: pkg.name, version: pkg.version, dirname: ROOT, components: [LambdaEcsWorker] });
}

describe("Pulumi's component provider: LambdaEcsWorker for other languages", function () {
    this.timeout(300000);
    let components: ComponentProvider;
    let schema: any;
    let resource: any;

    before(async () => {
        components = provider();
        schema = JSON.parse(await components.getSchema());
        resource = schema.resources[TOKEN];
    });

    it("ships a PulumiPlugin.yaml for the nodejs runtime, and the type token's package is the npm package's name", () => {
        expect(fs.readFileSync(path.join(ROOT, "PulumiPlugin.yaml"), "utf8")).to.match(/^runtime: nodejs$/m);
        expect(schema.name).to.equal("lambda-ecs-worker");
        expect(Object.keys(schema.resources)).to.deep.equal([TOKEN]);
        expect(resource.isComponent).to.equal(true);
    });

    it("lists every argument, each with its TSDoc as the description; only image is required", () => {
        expect(Object.keys(resource.inputProperties).sort()).to.deep.equal([...INPUTS].sort());
        for (const [name, p] of Object.entries<any>(resource.inputProperties)) {
            expect(p.description, name).to.be.a("string").and.have.length.above(10);
        }
        expect(resource.requiredInputs).to.deep.equal(["image"]);
    });

    it("turns the choices into enums with their documented values", () => {
        const values = (t: string) => schema.types[`lambda-ecs-worker:index:${t}`].enum.map((e: any) => e.value);
        expect(resource.inputProperties.launchMode.$ref).to.equal("#/types/lambda-ecs-worker:index:LaunchMode");
        expect(values("LaunchMode")).to.deep.equal(["drain", "per-job", "service"]);
        expect(values("Platform")).to.deep.equal(["linux/amd64", "linux/arm64"]);
        expect(values("CapacityKind")).to.deep.equal(["FARGATE", "FARGATE_SPOT", "MIXED"]);
        const capacity = schema.types["lambda-ecs-worker:index:LambdaEcsWorkerCapacity"];
        expect(Object.keys(capacity.properties).sort()).to.deep.equal(["fargateBase", "fargateWeight", "kind", "spotWeight"]);
        expect(capacity.properties.kind.$ref).to.equal("#/types/lambda-ecs-worker:index:CapacityKind");
        const image = schema.types["lambda-ecs-worker:index:LambdaEcsWorkerImageArgs"];
        expect(Object.keys(image.properties).sort()).to.deep.equal(["buildRuntimeImage", "context", "dockerfile", "imageUri", "platform"]);
        expect(resource.inputProperties.launcherConcurrency.type).to.equal("number");
    });

    it("lists every output, the resources typed as the aws package's resources", () => {
        expect(Object.keys(resource.properties).sort()).to.deep.equal(Object.keys(OUTPUTS).sort());
        for (const [name, type] of Object.entries(OUTPUTS)) {
            const p = resource.properties[name];
            if (type === "string") expect(p.type, name).to.equal("string");
            else expect(decodeURIComponent(p.$ref), name).to.match(new RegExp(`^/aws/v[\\d.]+/schema\\.json#/resources/${type.replace(/[/]/g, "\\/")}$`));
        }
        expect(schema.dependencies.map((d: any) => d.name)).to.deep.equal(["aws"]);
    });

    // The inputs a Python or YAML program sends: plain JSON, enums as their string values.
    const programs: Record<string, Record<string, unknown>> = {
        drain: {
            image: { imageUri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/render:1" },
            maxTasks: 4,
            capacity: { kind: "MIXED", fargateWeight: 1, spotWeight: 3 },
            environment: { WORKER_CONCURRENCY: "2" },
            tags: { team: "py" },
        },
        "per-job": {
            image: { context: "./worker-image", platform: "linux/amd64" },
            launchMode: "per-job",
            launcherConcurrency: 0,
            inputSuffixes: [".zip"],
        },
        service: {
            image: { imageUri: "public.example/geojson:1" },
            launchMode: "service",
            inputSuffixes: [".geojson"],
            outputSuffixes: [".gpkg", ".summary.json", ".log"],
            acceptableWaitSeconds: 120,
        },
    };
    const modeResources: Record<string, string> = {
        drain: "aws:cloudwatch/eventRule:EventRule py-drain-reconcile",
        "per-job": "aws:cloudwatch/eventRule:EventRule py-per-job-start-failures",
        service: "aws:ecs/service:Service py-service-service",
    };
    for (const [mode, inputs] of Object.entries(programs)) {
        it(`construct() builds launch mode ${mode} from a program's plain JSON inputs`, async () => {
            resetRecorded();
            const name = `py-${mode}`;
            const { urn, state } = await components.construct(name, TOKEN, JSON.parse(JSON.stringify(inputs)), {});
            expect(await valueOf(urn)).to.match(new RegExp(`::${TOKEN}::${name}$`));
            await valueOf(state.bucketName as any);
            await registrationsSettled();
            const names = recorded.map((r) => `${r.type} ${r.name}`);
            expect(names).to.include(modeResources[mode]);
            const fn = recorded.find((r) => r.name === `${name}-launcher` && r.type === "aws:lambda/function:Function")!;
            expect(fn.inputs.environment.variables.LAUNCH_MODE).to.equal(mode);
            for (const k of ["bucketName", "queueUrl", "deadLetterQueueUrl", "launcherFunctionName", "eventSource"]) {
                expect(await valueOf(state[k] as any), k).to.be.a("string").and.not.equal("");
            }
        });
    }
});
