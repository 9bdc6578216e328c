import { recorded, resetRecorded, valueOf } from "../harness/mocks";

import * as pulumi from "@pulumi/pulumi";
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";

import { declaredConfig, stackCompilerOptions } from "../cli/local/stack";
import { registrationsSettled } from "../harness/stack";

const ROOT = path.resolve(__dirname, "..");

/** `project:key` → value from Pulumi.dev.yaml (the stack's settings, without the aws: provider keys). */
function devStackConfig(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const line of fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8").split("\n")) {
        const m = /^ {2}povray-worker:(\w+):\s*(.*)$/.exec(line);
        if (m) out[`project:${m[1]}`] = m[2];
    }
    return out;
}

describe("the POV-Ray stack (index.ts)", () => {
    it("declares every config key it reads in Pulumi.yaml, each with a type and a default", () => {
        const declared = declaredConfig();
        const source = fs.readFileSync(path.join(ROOT, "stack-config.ts"), "utf8");
        const read = [...source.matchAll(/config\.get(?:Number|Boolean)?\("(\w+)"\)/g)].map((m) => m[1]);
        expect(read.length).to.be.greaterThan(10);
        expect(Object.keys(declared).sort()).to.deep.equal([...new Set(read)].sort());
        for (const [k, v] of Object.entries(declared)) {
            expect(["string", "integer", "boolean"], k).to.include(v.type);
            expect(v.default, k).to.be.a("string");
        }
    });

    it("GIVEN Pulumi.dev.yaml's settings THEN it builds the worker and exports its outputs", async () => {
        const settings = devStackConfig();
        expect(Object.keys(settings)).to.include("project:maxTasks");
        pulumi.runtime.setAllConfig(settings);
        resetRecorded();
        const stack = require("../index");
        await registrationsSettled();

        expect(await valueOf(stack.bucketName)).to.equal("render-bucket-0000000");
        // index.ts's exports are the stack's outputs: exactly these ten, nothing else.
        expect(Object.keys(stack).sort()).to.deep.equal([
            "bucketName",
            "clusterArn",
            "dashboardName",
            "deadLetterQueueUrl",
            "eventSource",
            "imageUri",
            "launcherFunctionName",
            "logGroupName",
            "queueUrl",
            "taskDefinitionArn",
        ]);
        expect(await valueOf(stack.dashboardName)).to.equal("project-test-render");
        expect(stack.eventSource).to.equal("lambda-ecs-worker.render");
        for (const k of ["queueUrl", "deadLetterQueueUrl", "clusterArn", "taskDefinitionArn", "launcherFunctionName", "logGroupName", "imageUri"]) {
            expect(await valueOf(stack[k]), k).to.be.a("string").and.not.equal("");
        }
        const image = recorded.find((r) => r.type === "awsx:ecr:Image" && r.name === "render-image");
        expect(image?.inputs.context).to.equal("./worker-image");
        expect(recorded.find((r) => r.name === "render-runtime-image")?.inputs.dockerfile).to.match(/worker-image\/Dockerfile\.runtime$/);
        const fn = recorded.find((r) => r.type === "aws:lambda/function:Function")!;
        expect(fn.inputs.environment.variables.MAX_TASKS).to.equal(settings["project:maxTasks"]);
        expect(JSON.parse(fn.inputs.environment.variables.CAPACITY_PROVIDER_STRATEGY)).to.deep.equal([
            { capacityProvider: "FARGATE", weight: 1, base: 0 },
            { capacityProvider: "FARGATE_SPOT", weight: 3 },
        ]);
        const td = recorded.find((r) => r.type === "aws:ecs/taskDefinition:TaskDefinition")!;
        expect(JSON.parse(td.inputs.containerDefinitions)[0].environment).to.deep.include({
            name: "JOB_TIMEOUT_SECONDS",
            value: settings["project:renderTimeoutSeconds"],
        });
        expect(JSON.parse(td.inputs.containerDefinitions)[0].environment).to.deep.include({ name: "WORKER_CONCURRENCY", value: "1" });
        expect(td.inputs.tags).to.deep.equal({ project: "project", stack: "test", worker: "povray" });
    });

    it("launcherConcurrency 0 reserves no launcher concurrency; any other value is passed on", () => {
        const { renderWorkerArgs } = require("../stack-config");
        const args = (v?: string) =>
            renderWorkerArgs({ get: () => undefined, getNumber: (k: string) => (k === "launcherConcurrency" && v !== undefined ? Number(v) : undefined) });
        expect(args("0").launcherConcurrency).to.equal(0);
        expect(args("3").launcherConcurrency).to.equal(3);
        expect(args().launcherConcurrency).to.equal(undefined);
    });

    it("parseCapacity reads the three forms and names the config key on a bad one", () => {
        const { parseCapacity } = require("../stack-config");
        expect(parseCapacity("FARGATE")).to.deep.equal({ kind: "FARGATE" });
        expect(parseCapacity("FARGATE_SPOT")).to.deep.equal({ kind: "FARGATE_SPOT" });
        expect(parseCapacity("FARGATE:1, FARGATE_SPOT:3")).to.deep.equal({ kind: "MIXED", fargateWeight: 1, spotWeight: 3 });
        expect(() => parseCapacity("SPOT:2")).to.throw(/^config capacity: expected "FARGATE", "FARGATE_SPOT" or/);
    });
});

describe("lambda-ecs-worker local: a stack's TypeScript (stackCompilerOptions)", () => {
    it("loads it as CommonJS with node resolution; with TypeScript 6 also ignores that resolution's deprecation", () => {
        expect(stackCompilerOptions("5.9.3")).to.deep.equal({ module: "commonjs", moduleResolution: "node" });
        expect(stackCompilerOptions("6.0.3")).to.deep.equal({ module: "commonjs", moduleResolution: "node", ignoreDeprecations: "6.0" });
        expect(stackCompilerOptions("")).to.deep.equal({ module: "commonjs", moduleResolution: "node" });
    });

    it("gives the installed TypeScript options it accepts", () => {
        const ts: typeof import("typescript") = require("typescript");
        const { errors } = ts.convertCompilerOptionsFromJson(stackCompilerOptions(ts.version), ROOT);
        expect(errors.map((e) => ts.flattenDiagnosticMessageText(e.messageText, "\n"))).to.deep.equal([]);
        const program = ts.createProgram([], ts.convertCompilerOptionsFromJson(stackCompilerOptions(ts.version), ROOT).options);
        expect(program.getOptionsDiagnostics().map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"))).to.deep.equal([]);
    });
});
