/**
 * The command processor (worker-image/src/command.ts) with real child processes (small Node scripts as the tool):
 * placeholders, exit codes, timeout, abort, output selection; and the runtime's single-file inputs and declared
 * outputs (job.ts, config.ts) with S3 mocked by aws-sdk-client-mock.
 */
import { expect } from "chai";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Readable } from "stream";

import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";

import { CommandProcessor, commandEnv, contentTypeFor, matchSuffix, parseCommand, selectOutputs, substitute } from "../worker-image/src/command";
import { configFromEnv, parseOutputSuffixes } from "../worker-image/src/config";
import { AbortedError, JobTimeoutError, PermanentError } from "../worker-image/src/errors";
import { JobConfig, JobRunner, inputFileName, isZipKey } from "../worker-image/src/job";
import { PovrayProcessor } from "../worker-image/src/povray";
import { Processor, ProcessorInput } from "../worker-image/src/processor";
import { processorFromEnv } from "../worker-image/src/select-processor";
import { recorder } from "./helpers/log-recorder";


/** A job's scratch layout as job.ts makes it: in/ holding the input file, work/ empty. */
function jobDirs(content = "{}"): { root: string; inputDir: string; inputPath: string; workDir: string } {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "command-test-"));
    const inputDir = path.join(root, "in");
    const workDir = path.join(root, "work");
    fs.mkdirSync(inputDir);
    fs.mkdirSync(workDir);
    const inputPath = path.join(inputDir, "input.geojson");
    fs.writeFileSync(inputPath, content);
    return { root, inputDir, inputPath, workDir };
}

/** `node -e <script> -- <args>` as WORKER_COMMAND would give it. */
const nodeCommand = (script: string, ...args: string[]) => [process.execPath, "-e", script, "--", ...args];

function alive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch {
        return false;
    }
}

async function expectRejects<T extends Error>(p: Promise<unknown>, type: new (...a: any[]) => T): Promise<T> {
    try {
        await p;
    } catch (err) {
        expect(err, String(err)).to.be.instanceOf(type);
        return err as T;
    }
    throw new Error(`expected a ${type.name}`);
}

describe("command processor (worker-image/src/command.ts)", function () {
    this.timeout(20000);
    let dirs: ReturnType<typeof jobDirs>;
    let rec: ReturnType<typeof recorder>;
    const suffixes = [".gpkg", ".summary.json", ".log"];

    function input(over: Partial<ProcessorInput> = {}): ProcessorInput {
        return {
            inputKind: "file",
            inputPath: dirs.inputPath,
            inputDir: dirs.inputDir,
            workDir: dirs.workDir,
            baseName: "my job",
            sourceKey: "in/my job.geojson",
            timeoutMs: 10000,
            signal: new AbortController().signal,
            log: rec.log,
            ...over,
        };
    }

    beforeEach(function () {
        dirs = jobDirs('{"type":"FeatureCollection","features":[]}');
        rec = recorder();
    });
    afterEach(function () {
        fs.rmSync(dirs.root, { recursive: true, force: true });
    });

    describe("WORKER_COMMAND", function () {
        it("is a JSON argv of strings with only the known placeholders", function () {
            expect(parseCommand('["ogrinfo","-so","{input}"]')).to.deep.equal(["ogrinfo", "-so", "{input}"]);
            for (const bad of ["", "ogrinfo {input}", "[]", '[""]', '["a",1]', '{"argv":["a"]}']) {
                expect(() => parseCommand(bad), bad).to.throw(/^WORKER_COMMAND must be a JSON array of strings/);
            }
            expect(() => parseCommand('["x","{inptu}"]')).to.throw(/unknown placeholder \{inptu\} in "\{inptu\}"; known: \{input\}, \{inputDir\}, \{outputDir\}, \{jobName\}/);
        });

        it("replaces placeholders anywhere inside an argument, never splitting a value", function () {
            const values = { input: "/s/in/input.geojson", inputDir: "/s/in", outputDir: "/s/out", jobName: "a b; rm -rf /" };
            expect(substitute(["t", "--out={outputDir}/{jobName}.gpkg", "{input}", "{inputDir}", "{other}"], values)).to.deep.equal([
                "t",
                "--out=/s/out/a b; rm -rf /.gpkg",
                "/s/in/input.geojson",
                "/s/in",
                "{other}",
            ]);
        });

        it("passes on only the variables WORKER_COMMAND_ENV names", function () {
            expect(commandEnv({ WORKER_COMMAND_ENV: "GDAL_CACHEMAX, MISSING", GDAL_CACHEMAX: "64", QUEUE_URL: "q" })).to.deep.equal({ GDAL_CACHEMAX: "64" });
            expect(commandEnv({ QUEUE_URL: "q" })).to.deep.equal({});
        });
    });

    it("runs the tool without a shell in the input dir with the placeholders filled in and a minimal environment", async function () {
        const script = `
            const fs = require("fs");
            const [input, inputDir, outputDir, jobName] = process.argv.slice(1);
            fs.writeFileSync(outputDir + "/x.summary.json", JSON.stringify({
                argv: process.argv.slice(1), cwd: process.cwd(), env: process.env, content: fs.readFileSync(input, "utf8"),
            }));
            fs.writeFileSync(outputDir + "/x.gpkg", "gpkg");
            console.log("to stdout"); console.error("to stderr");`;
        const p = new CommandProcessor({
            argv: nodeCommand(script, "{input}", "{inputDir}", "{outputDir}", "{jobName}", "$HOME", "*"),
            outputSuffixes: suffixes,
            env: { GDAL_CACHEMAX: "64" },
        });
        const result = await p.process(input());
        const bySuffix = Object.fromEntries(result.outputs.map((o) => [o.suffix, o]));
        expect(Object.keys(bySuffix).sort()).to.deep.equal([".gpkg", ".log", ".summary.json"]);
        const seen = JSON.parse(fs.readFileSync(bySuffix[".summary.json"].path, "utf8"));
        const outputDir = path.join(dirs.workDir, "out");
        expect(seen.argv).to.deep.equal([dirs.inputPath, dirs.inputDir, outputDir, "my job", "$HOME", "*"]);
        expect(fs.realpathSync(seen.cwd)).to.equal(fs.realpathSync(dirs.inputDir));
        expect(seen.content).to.equal('{"type":"FeatureCollection","features":[]}');
        expect(Object.keys(seen.env).filter((k) => !k.startsWith("NODE_") && k !== "__CF_USER_TEXT_ENCODING").sort()).to.deep.equal([
            "GDAL_CACHEMAX",
            "HOME",
            "PATH",
            "TMPDIR",
        ]);
        expect(seen.env.HOME).to.equal(path.join(dirs.workDir, "home"));
        expect(fs.readFileSync(bySuffix[".log"].path, "utf8")).to.match(/to stdout\n[\s\S]*to stderr/);
        expect(bySuffix[".summary.json"].contentType).to.equal("application/json");
        expect(bySuffix[".gpkg"].contentType).to.equal("application/geopackage+sqlite3");
        expect(result.seconds).to.be.greaterThan(0);
    });

    it("a non-zero exit is a permanent failure whose reason is the tail of stderr", async function () {
        const script = `for (let i = 1; i <= 30; i++) console.error("line " + i); process.exit(3);`;
        const p = new CommandProcessor({ argv: nodeCommand(script), outputSuffixes: suffixes });
        const err = await expectRejects(p.process(input()), PermanentError);
        const lines = Array.from({ length: 15 }, (_, i) => `line ${i + 16}`).join("\n");
        expect(err.message).to.equal(`${path.basename(process.execPath)} exited with 3: ${lines}`);
    });

    it("a program that does not exist is a permanent failure naming it", async function () {
        const p = new CommandProcessor({ argv: ["/nonexistent/tool", "{input}"], outputSuffixes: suffixes });
        const err = await expectRejects(p.process(input()), PermanentError);
        expect(err.message).to.match(/^cannot run \/nonexistent\/tool: spawn \/nonexistent\/tool ENOENT/);
    });

    it("past the timeout the tool's whole process group is killed and the job times out", async function () {
        const pidFile = path.join(dirs.root, "pids");
        const script = `
            const { spawn } = require("child_process");
            const c = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
            require("fs").writeFileSync(${JSON.stringify(pidFile)}, process.pid + " " + c.pid);
            setInterval(() => {}, 1000);`;
        const p = new CommandProcessor({ argv: nodeCommand(script), outputSuffixes: suffixes });
        const err = await expectRejects(p.process(input({ timeoutMs: 1500 })), JobTimeoutError);
        expect(err.message).to.equal(`${path.basename(process.execPath)} timed out after 1.5 s`);
        const pids = fs.readFileSync(pidFile, "utf8").split(" ").map(Number);
        // The killed grandchild is reaped by init, which may take a moment.
        for (let i = 0; i < 40 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 50));
        expect(pids.filter(alive), "tool and its child are gone").to.deep.equal([]);
    });

    it("aborting (the worker stopping) kills the tool and throws AbortedError", async function () {
        const pidFile = path.join(dirs.root, "pid");
        const script = `require("fs").writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setInterval(() => {}, 1000);`;
        const ac = new AbortController();
        const p = new CommandProcessor({ argv: nodeCommand(script), outputSuffixes: suffixes });
        const running = p.process(input({ signal: ac.signal }));
        while (!fs.existsSync(pidFile) || fs.readFileSync(pidFile, "utf8") === "") await new Promise((r) => setTimeout(r, 50));
        ac.abort();
        await expectRejects(running, AbortedError);
        expect(alive(Number(fs.readFileSync(pidFile, "utf8")))).to.equal(false);
    });

    describe("output selection", function () {
        it("uploads one regular file per declared suffix (longest match) and ignores and logs the rest", async function () {
            const script = `
                const fs = require("fs"); const o = process.argv[1];
                fs.writeFileSync(o + "/a.gpkg", "1");
                fs.writeFileSync(o + "/b.gpkg", "2");
                fs.writeFileSync(o + "/a.summary.json", "{}");
                fs.writeFileSync(o + "/a.json", "{}");
                fs.writeFileSync(o + "/notes.txt", "x");
                fs.writeFileSync(o + "/own.log", "x");
                fs.mkdirSync(o + "/sub.gpkg");
                fs.symlinkSync("/etc/passwd", o + "/link.summary.json");
                fs.writeFileSync(process.argv[2] + "/../outside.gpkg", "not uploaded");`;
            const p = new CommandProcessor({ argv: nodeCommand(script, "{outputDir}", "{inputDir}"), outputSuffixes: suffixes });
            const result = await p.process(input());
            const outDir = path.join(dirs.workDir, "out");
            expect(result.outputs.map((o) => [o.suffix, o.path])).to.deep.equal([
                [".gpkg", path.join(outDir, "a.gpkg")],
                [".summary.json", path.join(outDir, "a.summary.json")],
                [".log", path.join(dirs.workDir, "job.log")],
            ]);
            const ignored = rec.lines.filter((l) => l.event === "output_ignored").map((l) => [l.file, l.reason]);
            expect(ignored).to.deep.equal([
                ["a.json", "no declared output suffix (.gpkg, .summary.json, .log)"],
                ["b.gpkg", "a second file ending in .gpkg (a.gpkg is uploaded)"],
                ["link.summary.json", "a symbolic link"],
                ["notes.txt", "no declared output suffix (.gpkg, .summary.json, .log)"],
                ["own.log", "the job's .log is the tool's stdout and stderr (.gpkg, .summary.json, .log)"],
                ["sub.gpkg", "not a regular file"],
            ]);
        });

        it("a tool that exits 0 without any declared output fails permanently, naming what it wrote", async function () {
            const script = `require("fs").writeFileSync(process.argv[1] + "/result.txt", "x"); console.log("done");`;
            const p = new CommandProcessor({ argv: nodeCommand(script, "{outputDir}"), outputSuffixes: suffixes });
            const err = await expectRejects(p.process(input()), PermanentError);
            expect(err.message).to.equal(`${path.basename(process.execPath)} wrote no output ending in .gpkg, .summary.json to its output dir; it wrote result.txt`);
            const empty = new CommandProcessor({ argv: nodeCommand(""), outputSuffixes: suffixes });
            fs.rmSync(dirs.workDir, { recursive: true });
            fs.mkdirSync(dirs.workDir);
            const err2 = await expectRejects(empty.process(input()), PermanentError);
            expect(err2.message).to.equal(`${path.basename(process.execPath)} wrote no output ending in .gpkg, .summary.json to its output dir`);
        });

        it("without .log declared, the tool's output is not an upload", async function () {
            const script = `require("fs").writeFileSync(process.argv[1] + "/a.mp4", "x");`;
            const p = new CommandProcessor({ argv: nodeCommand(script, "{outputDir}"), outputSuffixes: [".mp4"] });
            const result = await p.process(input());
            expect(result.outputs.map((o) => [o.suffix, o.contentType])).to.deep.equal([[".mp4", "video/mp4"]]);
        });

        it("matches the longest suffix and types content by the last extension", async function () {
            expect(matchSuffix("a.summary.json", [".json", ".summary.json"])).to.equal(".summary.json");
            expect(matchSuffix("a.json", [".json", ".summary.json"])).to.equal(".json");
            expect(matchSuffix("a.txt", [".json"])).to.equal(undefined);
            expect(contentTypeFor(".summary.json")).to.equal("application/json");
            expect(contentTypeFor(".xyz")).to.equal("application/octet-stream");
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "select-"));
            try {
                expect(await selectOutputs(dir, [".png"])).to.deep.equal({ outputs: [], ignored: [] });
            } finally {
                fs.rmSync(dir, { recursive: true });
            }
        });
    });
});

describe("runtime: single-file inputs and declared outputs (job.ts, config.ts, select-processor.ts)", function () {
    const s3Client = new S3Client({ region: "us-east-1", credentials: { accessKeyId: "test", secretAccessKey: "test" } });
    // This client only (mocking the S3Client class would patch every client of the other specs too).
    const s3 = mockClient(s3Client);
    let scratch: string;
    let cfg: JobConfig;
    let rec: ReturnType<typeof recorder>;

    beforeEach(function () {
        s3.reset();
        s3.on(PutObjectCommand).resolves({ ETag: '"out"' });
        s3.on(HeadObjectCommand).resolves({ ETag: '"e"' });
        s3.on(DeleteObjectCommand).resolves({});
        scratch = fs.mkdtempSync(path.join(os.tmpdir(), "single-file-"));
        cfg = {
            scratchDir: scratch,
            inputPrefix: "",
            outputPrefix: "",
            maxInputBytes: 64,
            maxUnzippedBytes: 1024,
            maxZipEntries: 10,
            jobTimeoutSeconds: 5,
            outputSuffixes: [".gpkg", ".log"],
        };
        rec = recorder();
    });
    afterEach(function () {
        fs.rmSync(scratch, { recursive: true, force: true });
    });
    after(() => s3.restore());

    function serve(body: string): void {
        s3.on(GetObjectCommand).callsFake(async () => ({ Body: Readable.from([Buffer.from(body)]), ContentLength: Buffer.byteLength(body), ETag: '"e"' }));
    }

    /** Records its input and returns the outputs named by `suffixes` (files written in workDir). */
    function fake(suffixes: string[]): Processor & { seen: Array<ProcessorInput & { content?: string }> } {
        const seen: Array<ProcessorInput & { content?: string }> = [];
        return {
            name: "fake",
            seen,
            async process(i) {
                seen.push({ ...i, content: i.inputKind === "file" ? fs.readFileSync(i.inputPath, "utf8") : undefined });
                return {
                    seconds: 0.1,
                    outputs: suffixes.map((s) => {
                        const p = path.join(i.workDir, `o${s}`);
                        fs.writeFileSync(p, s);
                        return { suffix: s, path: p, contentType: "application/octet-stream" };
                    }),
                };
            },
        };
    }

    it("downloads a non-zip input as one file, named input<ext> alone in the input dir", async function () {
        serve('{"type":"FeatureCollection"}');
        const p = fake([".gpkg", ".log"]);
        const outcome = await new JobRunner(cfg, { s3: s3Client, processor: p, log: rec.log }).runJob({ bucket: "b", key: "in/My Map.GeoJSON" }, new AbortController().signal, 1);
        expect(outcome).to.deep.include({ status: "ok" });
        const seen = p.seen[0];
        expect(seen).to.include({ inputKind: "file", baseName: "My Map", content: '{"type":"FeatureCollection"}' });
        expect(seen.inputPath).to.equal(path.join(seen.inputDir, "input.GeoJSON"));
        expect(rec.lines.map((l) => l.event)).to.not.include("unpacked");
        expect(s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input.Key).sort()).to.deep.equal(["in/My Map.gpkg", "in/My Map.log"]);
    });

    it("caps a single-file input at MAX_INPUT_BYTES like a zip", async function () {
        serve("x".repeat(65));
        const outcome = await new JobRunner(cfg, { s3: s3Client, processor: fake([".gpkg"]), log: rec.log }).runJob({ bucket: "b", key: "a.geojson" }, new AbortController().signal, 1);
        expect(outcome).to.deep.include({ status: "permanent", reason: "input is 65 bytes, more than MAX_INPUT_BYTES=64" });
    });

    it("uploads only declared outputs; a processor with none of them fails permanently", async function () {
        serve("{}");
        const runner = (p: Processor) => new JobRunner(cfg, { s3: s3Client, processor: p, log: rec.log });
        expect(await runner(fake([".gpkg", ".png"])).runJob({ bucket: "b", key: "a.geojson" }, new AbortController().signal, 1)).to.deep.include({ status: "ok" });
        expect(s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input.Key)).to.deep.equal(["a.gpkg"]);
        expect(rec.lines.find((l) => l.event === "output_not_declared")).to.include({ suffix: ".png" });
        const outcome = await runner(fake([".png"])).runJob({ bucket: "b", key: "a.geojson" }, new AbortController().signal, 1);
        expect(outcome).to.deep.include({ status: "permanent", reason: "the fake processor made .png, none of OUTPUT_SUFFIXES .gpkg, .log" });
    });

    it("names single-file inputs without trusting the key", function () {
        expect(isZipKey("a/b.ZIP")).to.equal(true);
        expect(isZipKey("a/b.geojson")).to.equal(false);
        expect(inputFileName("a/b.geojson")).to.equal("input.geojson");
        expect(inputFileName("a/../../etc")).to.equal("input");
        expect(inputFileName("a/b.tar.gz")).to.equal("input.gz");
        expect(inputFileName("a/b.$(rm)")).to.equal("input");
    });

    it("reads OUTPUT_SUFFIXES (default POV-Ray's) and the processor from the environment", function () {
        expect(configFromEnv({ QUEUE_URL: "q" }).outputSuffixes).to.deep.equal([".png", ".log"]);
        expect(parseOutputSuffixes('[".gpkg",".summary.json",".gpkg"]')).to.deep.equal([".gpkg", ".summary.json"]);
        for (const bad of ["png", "[]", '["png"]', '[".error.json"]', '["./x"]', "[1]"]) {
            expect(() => parseOutputSuffixes(bad), bad).to.throw(/^OUTPUT_SUFFIXES must be a JSON array of one or more suffixes/);
        }
        const c = { concurrency: 1, outputSuffixes: [".gpkg"] };
        expect(processorFromEnv({}, c)).to.be.instanceOf(PovrayProcessor);
        expect(processorFromEnv({ WORKER_COMMAND: '["ogrinfo","{input}"]' }, c)).to.be.instanceOf(CommandProcessor);
        expect(processorFromEnv({ WORKER_PROCESSOR: "povray", WORKER_COMMAND: '["x"]' }, c)).to.be.instanceOf(PovrayProcessor);
        expect(() => processorFromEnv({ WORKER_PROCESSOR: "command" }, c)).to.throw(/WORKER_COMMAND must be a JSON array of strings .*it is not set/);
        expect(() => processorFromEnv({ WORKER_PROCESSOR: "ffmpeg" }, c)).to.throw('WORKER_PROCESSOR must be one of povray, command, got "ffmpeg"');
    });
});
