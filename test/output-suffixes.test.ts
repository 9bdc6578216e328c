/**
 * `outputSuffixes` under the Pulumi mocks: a worker that writes other files than POV-Ray's gets PutObject on exactly
 * those (and `.error.json`), its container and launcher learn them through OUTPUT_SUFFIXES, the launcher ignores
 * uploads ending in them, and validation keeps inputs and outputs apart.
 */
import { RecordedResource } from "../harness/mocks";

import { expect } from "chai";

import { LambdaEcsWorkerArgs, validateLambdaEcsWorkerArgs } from "../components";
import { keyRejection, parseLauncherSettings } from "../functions/launcher";
import { buildWorker, one } from "../harness/stack";

const GEOJSON: LambdaEcsWorkerArgs = {
    image: { context: "./examples/geojson" },
    inputPrefix: "in/",
    outputPrefix: "out/",
    inputSuffixes: [".geojson"],
    outputSuffixes: [".gpkg", ".summary.json", ".log"],
    launchMode: "service",
};

describe("outputSuffixes", function () {
    describe("GIVEN a GeoJSON worker writing .gpkg, .summary.json and .log under out/", function () {
        let resources: RecordedResource[];
        before(async function () {
            this.timeout(30000);
            ({ resources } = await buildWorker("geo", GEOJSON));
        });

        it("THEN its task role may put exactly those outputs (and abort their multipart uploads) and the failure report, and delete only the report", function () {
            const s3 = JSON.parse(one(resources, "aws:iam/rolePolicy:RolePolicy", "geo-task-policy").inputs.policy)
                .Statement.filter((s: any) => String(s.Action).startsWith("s3:"));
            expect(s3).to.deep.equal([
                { Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::geo-bucket-0000000/in/*" },
                { Effect: "Allow", Action: "s3:ListBucket", Resource: "arn:aws:s3:::geo-bucket-0000000", Condition: { StringLike: { "s3:prefix": "in/*" } } },
                {
                    Effect: "Allow",
                    Action: "s3:PutObject",
                    Resource: [
                        "arn:aws:s3:::geo-bucket-0000000/out/*.gpkg",
                        "arn:aws:s3:::geo-bucket-0000000/out/*.summary.json",
                        "arn:aws:s3:::geo-bucket-0000000/out/*.log",
                        "arn:aws:s3:::geo-bucket-0000000/out/*.error.json",
                    ],
                },
                {
                    Effect: "Allow",
                    Action: "s3:AbortMultipartUpload",
                    Resource: ["arn:aws:s3:::geo-bucket-0000000/out/*.gpkg", "arn:aws:s3:::geo-bucket-0000000/out/*.summary.json", "arn:aws:s3:::geo-bucket-0000000/out/*.log"],
                },
                { Effect: "Allow", Action: "s3:DeleteObject", Resource: "arn:aws:s3:::geo-bucket-0000000/out/*.error.json" },
            ]);
        });

        it("THEN the worker container gets them as OUTPUT_SUFFIXES (and the generic JOB_TIMEOUT_SECONDS)", function () {
            const td = one(resources, "aws:ecs/taskDefinition:TaskDefinition", "geo-task").inputs;
            const env = Object.fromEntries(JSON.parse(td.containerDefinitions)[0].environment.map((e: any) => [e.name, e.value]));
            expect(env).to.include({ OUTPUT_SUFFIXES: '[".gpkg",".summary.json",".log"]', JOB_TIMEOUT_SECONDS: "900", OUTPUT_PREFIX: "out/" });
            expect(env).to.not.have.property("RENDER_TIMEOUT_SECONDS");
        });

        it("THEN the launcher ignores uploads ending in them, and no longer POV-Ray's", function () {
            const fn = one(resources, "aws:lambda/function:Function", "geo-launcher").inputs;
            const vars = fn.environment.variables;
            expect(JSON.parse(vars.OUTPUT_SUFFIXES)).to.deep.equal([".gpkg", ".summary.json", ".log", ".error.json"]);
            const s = parseLauncherSettings(vars);
            const filter = { ...s, outputPrefix: "" };
            expect(keyRejection("in/roads.geojson", filter)).to.equal(undefined);
            expect(keyRejection("in/roads.summary.json", { ...filter, inputSuffixes: [] })).to.equal("worker output");
            expect(keyRejection("in/roads.GPKG", { ...filter, inputSuffixes: [] })).to.equal("worker output");
            expect(keyRejection("in/roads.error.json", { ...filter, inputSuffixes: [] })).to.equal("worker output");
            expect(keyRejection("in/roads.png", { ...filter, inputSuffixes: [] })).to.equal(undefined);
        });

        it("THEN the bucket notifies the launcher of .geojson uploads only", function () {
            const n = one(resources, "aws:s3/bucketNotification:BucketNotification", "geo-notification").inputs;
            expect(n.queues.map((l: any) => [l.filterPrefix, l.filterSuffix])).to.deep.equal([["in/", ".geojson"]]);
        });
    });

    describe("validation", function () {
        const cases: [string, Partial<LambdaEcsWorkerArgs>, string][] = [
            ["no outputs", { outputSuffixes: [] }, 'outputSuffixes: must be a non-empty list such as [".png", ".log"]'],
            ["a suffix without its dot", { outputSuffixes: ["mp4"] }, 'outputSuffixes[0]: must be a suffix like ".png" ("." then letters, digits, ".", "_", "-"), got "mp4"'],
            ["a slash", { outputSuffixes: [".a/b"] }, 'outputSuffixes[0]: must be a suffix like ".png" ("." then letters, digits, ".", "_", "-"), got ".a/b"'],
            ["the failure report", { outputSuffixes: [".mp4", ".error.json"] }, 'outputSuffixes[1]: ".error.json" is the failure report\'s suffix, always written; leave it out'],
            ["twice", { outputSuffixes: [".mp4", ".MP4"] }, 'outputSuffixes[1]: ".MP4" is listed twice'],
            [
                "an input that is an output",
                { inputSuffixes: [".gpkg"], outputSuffixes: [".gpkg"] },
                'inputSuffixes[0]: ".gpkg" overlaps the output suffix ".gpkg"; outputs would retrigger the launcher',
            ],
            [
                "an input ending an output",
                { inputSuffixes: [".json"], outputSuffixes: [".summary.json"] },
                'inputSuffixes[0]: ".json" overlaps the output suffix ".summary.json"; outputs would retrigger the launcher',
            ],
            [
                "an input ending in an output",
                { inputSuffixes: [".raw.mp4"], outputSuffixes: [".mp4"] },
                'inputSuffixes[0]: ".raw.mp4" overlaps the output suffix ".mp4"; outputs would retrigger the launcher',
            ],
        ];
        for (const [what, args, message] of cases) {
            it(`rejects ${what}`, function () {
                expect(validateLambdaEcsWorkerArgs({ image: { context: "." }, ...args })).to.deep.equal([message]);
            });
        }

        it("accepts inputs beside other outputs: .geojson in, .gpkg/.summary.json/.log out; .mp4 in, .webm out", function () {
            expect(validateLambdaEcsWorkerArgs(GEOJSON)).to.deep.equal([]);
            expect(validateLambdaEcsWorkerArgs({ image: { context: "." }, inputSuffixes: [".mp4", ".mov"], outputSuffixes: [".webm", ".log"] })).to.deep.equal([]);
            // POV-Ray's outputs are no longer reserved for a worker that does not write them.
            expect(validateLambdaEcsWorkerArgs({ image: { context: "." }, inputSuffixes: [".png"], outputSuffixes: [".webp"] })).to.deep.equal([]);
        });
    });
});

