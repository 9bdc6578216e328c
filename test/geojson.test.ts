/**
 * The GeoJSON worker (examples/geojson): its GDAL command through the command processor and the real runtime against
 * moto (good and bad inputs, commands that write nothing, write elsewhere or hang), and end to end through
 * `npm run local -- --stack examples/geojson` (podman when lambda-ecs-worker/geojson:dev is built, else local worker
 * processes with the Dockerfile's WORKER_COMMAND).
 */
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { expect } from "chai";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import { Moto } from "../harness/moto";
import { Aws, LogLine, makeZip, runWorkerInProcess, useWorkerMoto, workerEnv } from "../harness/worker-env";
import { CommandProcessor } from "../worker-image/src/command";
import { parseOutputSuffixes } from "../worker-image/src/config";
import { localWorkerEnv, programFile, resolveStackDir, stackImage, words } from "../cli/local/stack-dir";
import { requirePrerequisite } from "./helpers/prerequisite";

const ROOT = path.resolve(__dirname, "..");
const STACK = path.join(ROOT, "examples/geojson");
const SAMPLES = path.join(STACK, "samples");
const OUTPUTS = [".gpkg", ".summary.json", ".log"];
const SQLITE_HEADER = Buffer.from("SQLite format 3\0", "latin1");
const gdalInstalled = spawnSync("ogr2ogr", ["--version"], { stdio: "ignore" }).error === undefined;

/** The GeoJSON worker's command as its Dockerfile declares it, with the script's path mapped to the repo. */
const GEOJSON_COMMAND: string[] = JSON.parse(localWorkerEnv(STACK).WORKER_COMMAND);

describe("GeoJSON worker (examples/geojson)", function () {
    this.timeout(120000);
    let moto: Moto;
    let aws: Aws;

    before(function () {
        requirePrerequisite(this, gdalInstalled, "GDAL (gdal-bin: npm run setup)");
    });
    const setup = useWorkerMoto("geojson-test", (m, a) => ((moto = m), (aws = a)));

    /** Uploads `files` (key → body), queues one job each, runs a worker until the queue is drained. */
    async function run(files: Record<string, Buffer | string>, argv: string[], extra: Record<string, string> = {}) {
        const { bucket, queueUrl, dlqUrl } = await setup(1);
        for (const [key, body] of Object.entries(files)) {
            await aws.put(bucket, key, body);
            await aws.send(queueUrl, { bucket, key });
        }
        const env = workerEnv(moto, { QUEUE_URL: queueUrl, DLQ_URL: dlqUrl, OUTPUT_SUFFIXES: JSON.stringify(OUTPUTS), ...extra });
        const processor = new CommandProcessor({ argv, outputSuffixes: parseOutputSuffixes(env.OUTPUT_SUFFIXES) });
        const { code, logs } = await runWorkerInProcess(env, { processor });
        const dlq = await aws.drain(dlqUrl);
        const report = async (key: string) => JSON.parse(String(await aws.get(bucket, key.replace(/\.[^.]+$/, ".error.json"))));
        return { bucket, code, logs, dlq, report, depth: await aws.depth(queueUrl) };
    }

    it("GIVEN two good files and four bad ones THEN outputs for the good, an error report and one DLQ message with GDAL's reason for each bad one, and the worker goes on", async function () {
        const zip = await makeZip([{ name: "a.geojson", data: "{}" }]);
        const r = await run(
            {
                "in/parks.geojson": fs.readFileSync(path.join(SAMPLES, "parks.geojson")),
                "in/broken.geojson": fs.readFileSync(path.join(SAMPLES, "broken.geojson")),
                "in/zipped.geojson": zip,
                "in/empty.geojson": "",
                "in/huge.geojson": `{"type":"FeatureCollection","features":[]}${" ".repeat(5000)}`,
                "in/rivers.geojson": fs.readFileSync(path.join(SAMPLES, "rivers.geojson")),
            },
            GEOJSON_COMMAND,
            { MAX_INPUT_BYTES: "4096" },
        );
        expect(r.code).to.equal(0);
        expect(r.depth).to.equal(0);

        for (const [name, features, types] of [
            ["parks", 3, { POINT: 1, POLYGON: 2 }],
            ["rivers", 2, { LINESTRING: 2 }],
        ] as const) {
            const gpkg = await aws.get(r.bucket, `in/${name}.gpkg`);
            expect(gpkg!.subarray(0, 16).equals(SQLITE_HEADER), `${name}.gpkg is a GeoPackage (SQLite)`).to.equal(true);
            expect((await aws.head(r.bucket, `in/${name}.gpkg`)).ContentType).to.equal("application/geopackage+sqlite3");
            const summary = JSON.parse(String(await aws.get(r.bucket, `in/${name}.summary.json`)));
            expect(summary).to.deep.include({ featureCount: features, geometryTypes: types });
            expect(summary.output).to.include({ format: "GPKG", crs: "EPSG:3857", layer: "features" });
            expect(summary.extent.crs).to.equal("EPSG:4326");
            // Web Mercator metres: Berlin is about 1.5e6 m east, 6.9e6 m north.
            expect(summary.output.extent.minX).to.be.within(1.4e6, 1.6e6);
            expect(summary.output.extent.minY).to.be.within(6.8e6, 7.0e6);
            expect(String(await aws.get(r.bucket, `in/${name}.log`))).to.match(/feature\(s\) → EPSG:3857 GeoPackage/);
        }

        const reasons: Record<string, RegExp> = {
            "in/broken.geojson": /^node exited with 1: .*not valid GeoJSON \(GDAL ogrinfo exited with 1\): ERROR 1: At line 5, character 1: Unterminated object; ERROR 4: Failed to read GeoJSON data$/s,
            "in/zipped.geojson": /^node exited with 1: not valid GeoJSON \(GDAL ogrinfo exited with 1\): ERROR 4: Failed to read GeoJSON data$/,
            "in/empty.geojson": /^node exited with 1: not GeoJSON: the file is empty \(0 bytes\)$/,
            "in/huge.geojson": /^input is \d+ bytes, more than MAX_INPUT_BYTES=4096$/,
        };
        for (const [key, reason] of Object.entries(reasons)) {
            const report = await r.report(key);
            expect(report.reason, key).to.match(reason);
            expect(report).to.include({ sourceKey: key, processor: "command" });
            for (const s of OUTPUTS) expect(await aws.get(r.bucket, key.replace(/\.geojson$/, s)), `${key}: no ${s}`).to.equal(undefined);
        }
        const dead = r.dlq.map((m) => JSON.parse(m.Body!));
        expect(dead.map((b) => b.key).sort()).to.deep.equal(Object.keys(reasons).sort());
        for (const b of dead) expect(b.reason).to.equal(`${b.key}: ${(await r.report(b.key)).reason}`);
    });

    it("GIVEN a command that exits 0 writing nothing, or writing only outside its output dir THEN each job fails with that reason and nothing else is uploaded", async function () {
        const script = `
            const fs = require("fs"); const [input, inputDir, outputDir] = process.argv.slice(1);
            if (fs.readFileSync(input, "utf8") === "outside") {
                fs.writeFileSync(inputDir + "/../stray.gpkg", "x");
                fs.writeFileSync(inputDir + "/in-input-dir.gpkg", "x");
                fs.writeFileSync(process.env.TMPDIR + "/tmp.gpkg", "x");
            }`;
        const r = await run({ "in/nothing.geojson": "nothing", "in/outside.geojson": "outside" }, [process.execPath, "-e", script, "--", "{input}", "{inputDir}", "{outputDir}"]);
        expect(r.code).to.equal(0);
        for (const key of ["in/nothing.geojson", "in/outside.geojson"]) {
            expect((await r.report(key)).reason).to.equal(`${path.basename(process.execPath)} wrote no output ending in .gpkg, .summary.json to its output dir`);
        }
        const listed = await aws.s3.send(new ListObjectsV2Command({ Bucket: r.bucket }));
        expect((listed.Contents ?? []).map((o) => o.Key).sort()).to.deep.equal([
            "in/nothing.error.json",
            "in/nothing.geojson",
            "in/outside.error.json",
            "in/outside.geojson",
        ]);
        expect(r.dlq).to.have.length(2);
    });

    it("GIVEN a command that hangs THEN it is killed at JOB_TIMEOUT_SECONDS and, on the last receive, reported and dead-lettered; the next job still runs", async function () {
        const script = `if (require("fs").readFileSync(process.argv[1], "utf8") === "hang") setInterval(() => {}, 1000); else require("fs").writeFileSync(process.argv[2] + "/x.gpkg", "ok");`;
        const r = await run({ "in/hang.geojson": "hang", "in/fine.geojson": "fine" }, [process.execPath, "-e", script, "--", "{input}", "{outputDir}"], {
            JOB_TIMEOUT_SECONDS: "2",
            WORKER_MAX_RECEIVE_COUNT: "1",
        });
        expect(r.code).to.equal(0);
        expect((await r.report("in/hang.geojson")).reason).to.equal(`${path.basename(process.execPath)} timed out after 2 s (attempt 1 of 1)`);
        expect(r.dlq.map((m) => JSON.parse(m.Body!).key)).to.deep.equal(["in/hang.geojson"]);
        expect(String(await aws.get(r.bucket, "in/fine.gpkg"))).to.equal("ok");
        expect(r.logs.filter((l: LogLine) => l.event === "failed").map((l) => l.status)).to.deep.equal(["timeout"]);
    });
});

describe("npm run local -- --stack examples/geojson (e2e)", function () {
    this.timeout(300000);

    it("GIVEN two good GeoJSON files and one bad THEN two GeoPackages with summaries and one failure with GDAL's reason (exit 1)", async function () {
        const image = spawnSync("podman", ["--runtime", "runc", "--cgroup-manager=cgroupfs", "image", "exists", "lambda-ecs-worker/geojson:dev"]).status === 0;
        requirePrerequisite(this, gdalInstalled || image, "GDAL or the GeoJSON worker image (npm run setup)");
        const out = fs.mkdtempSync(path.join(os.tmpdir(), "geojson-local-"));
        const files = ["parks", "rivers", "broken"].map((n) => path.join(SAMPLES, `${n}.geojson`));
        const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
            const child = spawn(
                process.execPath,
                ["-r", "ts-node/register/transpile-only", "cli/main.ts", "local", "--stack", "examples/geojson", ...files, "--json", "--out", out, "--timeout", "240"],
                { cwd: ROOT, env: { ...process.env, TS_NODE_TRANSPILE_ONLY: "true" }, stdio: ["ignore", "pipe", "pipe"] },
            );
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (d) => (stdout += d));
            child.stderr.on("data", (d) => (stderr += d));
            child.on("exit", (code) => resolve({ code, stdout, stderr }));
        });
        expect(run.code, run.stderr).to.equal(1);
        const summary = JSON.parse(run.stdout);
        const byJob = Object.fromEntries(summary.jobs.map((j: any) => [j.job, j]));
        expect(byJob.parks.status).to.equal("done");
        expect(byJob.rivers.status).to.equal("done");
        expect(byJob.broken.status).to.equal("failed");
        expect(byJob.broken.reason).to.match(/Unterminated object/);
        for (const [name, count] of [["parks", 3], ["rivers", 2]] as const) {
            expect(fs.readFileSync(path.join(out, `${name}.gpkg`)).subarray(0, 16).equals(SQLITE_HEADER)).to.equal(true);
            expect(JSON.parse(fs.readFileSync(path.join(out, `${name}.summary.json`), "utf8")).featureCount).to.equal(count);
            expect(fs.existsSync(path.join(out, `${name}.log`))).to.equal(true);
        }
        const report = JSON.parse(fs.readFileSync(path.join(out, "broken.error.json"), "utf8"));
        expect(report.reason).to.match(/ERROR 1: At line 5, character 1: Unterminated object/);
        fs.rmSync(out, { recursive: true, force: true });
    });
});

describe("npm run local --stack: the stack dir (cli/local/stack-dir.ts)", function () {
    it("reads a stack's Dockerfile ENV for a local worker process, with COPY destinations mapped to the stack's files", function () {
        expect(localWorkerEnv(STACK)).to.deep.equal({
            WORKER_COMMAND: JSON.stringify(["node", path.join(STACK, "geojson-to-gpkg.js"), "{input}", "{outputDir}"]).replace(/","/g, '", "'),
        });
        // The root (POV-Ray) stack: the worker's own defaults, nothing from its Dockerfile.
        expect(localWorkerEnv(ROOT)).to.deep.equal({});
    });

    it("splits Dockerfile words on blanks outside quotes", function () {
        expect(words(`A="x y" B='["a", "b"]' C=d`)).to.deep.equal(["A=x y", 'B=["a", "b"]', "C=d"]);
        expect(words(`src/app.js   /opt/app.js`)).to.deep.equal(["src/app.js", "/opt/app.js"]);
    });

    it("names the stack's image and rejects a dir without a Pulumi program", function () {
        expect(stackImage(ROOT)).to.equal("lambda-ecs-worker/povray:dev");
        expect(stackImage(STACK)).to.equal("lambda-ecs-worker/geojson:dev");
        expect(resolveStackDir("examples/geojson", ROOT)).to.equal(STACK);
        expect(() => resolveStackDir("examples", ROOT)).to.throw(/^--stack examples \(.*\/examples\) holds no Pulumi.yaml: run in a Pulumi project's folder or give --stack DIR/);
        expect(resolveStackDir(undefined, STACK)).to.equal(STACK);
        expect(() => resolveStackDir(undefined, path.join(ROOT, "examples"))).to.throw(/^the current folder \(.*\/examples\) holds no Pulumi.yaml/);
    });

    it("takes the stack's program from Pulumi.yaml's main (a file, or a folder's index.ts), else index.ts", function () {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stack-dir-"));
        try {
            fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: w\nruntime: nodejs\n");
            expect(programFile(dir)).to.equal(path.join(dir, "index.ts"));
            expect(() => resolveStackDir(undefined, dir)).to.throw(/its program index.ts does not exist \(Pulumi.yaml's main, else index.ts\)/);
            fs.mkdirSync(path.join(dir, "src"));
            fs.writeFileSync(path.join(dir, "src", "index.ts"), "");
            fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: w\nmain: src/  # the program\nruntime: nodejs\n");
            expect(programFile(dir)).to.equal(path.join(dir, "src", "index.ts"));
            fs.writeFileSync(path.join(dir, "Pulumi.yaml"), 'name: w\nmain: "src/index.ts"\nruntime: nodejs\n');
            expect(resolveStackDir(undefined, dir)).to.equal(dir);
            expect(programFile(dir)).to.equal(path.join(dir, "src", "index.ts"));
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
