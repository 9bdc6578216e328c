/** Pure parts of the worker: output keys, message parsing, INI sanitising, zip extraction limits. */
import { expect } from "chai";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { configFromEnv, stopDeadlines } from "../worker-image/src/config";
import { AbortedError, PermanentError, isPermanentServiceError, isTransient } from "../worker-image/src/errors";
import { jobBaseName, outputKeys, parseMessage } from "../worker-image/src/keys";
import { MAX_DROPPED_LOG_LINES, MAX_INI_BYTES, PovrayProcessor, buildRenderIni, povrayErrorSummary, findScene, sanitizeIni } from "../worker-image/src/povray";
import { Logger } from "../worker-image/src/log";
import { MAX_SOURCE_KEY_METADATA, sourceKeyMetadata, sqsSafe } from "../worker-image/src/runtime";
import { createHash } from "crypto";
import { MAX_PATH_DEPTH, extractZip, unsafeEntryName } from "../worker-image/src/unzip";
import { ZipEntry, makeZip } from "../harness/worker-env";

describe("worker units", function () {
    describe("outputKeys", function () {
        it("puts outputs next to the input when OUTPUT_PREFIX is empty", function () {
            expect(outputKeys("in/a/scene.zip")).to.deep.equal({
                base: "in/a/scene",
                png: "in/a/scene.png",
                log: "in/a/scene.log",
                error: "in/a/scene.error.json",
            });
            expect(outputKeys("in/scene.zip", { inputPrefix: "in/", outputPrefix: "" }).png).to.equal("in/scene.png");
        });
        it("maps INPUT_PREFIX to OUTPUT_PREFIX, stripping only the last extension", function () {
            const o = { inputPrefix: "uploads/", outputPrefix: "renders/" };
            expect(outputKeys("uploads/x/my scene.v2.zip", o).png).to.equal("renders/x/my scene.v2.png");
            expect(outputKeys("uploads/x/my scene.v2.zip", o).error).to.equal("renders/x/my scene.v2.error.json");
            // Key outside the input prefix: kept whole under the output prefix.
            expect(outputKeys("other/s.zip", o).log).to.equal("renders/other/s.log");
            // No extension on the last segment: a dot in a folder name is not an extension.
            expect(outputKeys("uploads/v1.0/scene", o).png).to.equal("renders/v1.0/scene.png");
        });
        it("derives the job name from the last path segment", function () {
            expect(jobBaseName("a/b/My Scene.zip")).to.equal("My Scene");
            expect(jobBaseName("top.zip")).to.equal("top");
        });
    });

    describe("parseMessage", function () {
        it("returns every S3 event record with decoded keys", function () {
            const body = JSON.stringify({
                Records: [
                    { s3: { bucket: { name: "b" }, object: { key: "in/my+scene%C3%BC%2B1.zip", size: 5, eTag: "e" } } },
                    { s3: { bucket: { name: "b" }, object: { key: "in/two.zip" } } },
                ],
            });
            const p = parseMessage(body);
            expect(p).to.deep.equal({
                kind: "jobs",
                jobs: [
                    { bucket: "b", key: "in/my sceneü+1.zip", etag: "e", size: 5 },
                    { bucket: "b", key: "in/two.zip", etag: undefined, size: undefined },
                ],
            });
        });
        it("recognises s3:TestEvent and direct jobs", function () {
            expect(parseMessage(JSON.stringify({ Event: "s3:TestEvent", Service: "Amazon S3" }))).to.deep.equal({ kind: "test" });
            const p = parseMessage(JSON.stringify({ bucket: "b", key: "k 1.zip", size: 3, etag: "t", eventTime: "x" }));
            expect(p).to.deep.equal({ kind: "jobs", jobs: [{ bucket: "b", key: "k 1.zip", etag: "t", size: 3 }] });
        });
        it("throws PermanentError for anything else", function () {
            for (const bad of ["", "nope", "[]", "42", "{}", JSON.stringify({ Records: [] }), JSON.stringify({ Records: [{}] }), JSON.stringify({ bucket: "b" })]) {
                expect(() => parseMessage(bad), bad).to.throw(PermanentError, /unrecognised message/);
            }
        });
    });

    describe("sanitizeIni", function () {
        /** Runs `p` on the job unpacked in `dir/in` (scratch `dir/work`) as the runtime does; resolves to what it threw. */
        const processIn = (p: PovrayProcessor, dir: string, log: Logger = () => undefined): Promise<unknown> =>
            p
                .process({
                    inputKind: "directory",
                    inputPath: path.join(dir, "in"),
                    inputDir: path.join(dir, "in"),
                    workDir: path.join(dir, "work"),
                    baseName: "job",
                    sourceKey: "job.zip",
                    timeoutMs: 10000,
                    signal: new AbortController().signal,
                    log,
                })
                .then(
                    () => undefined,
                    (e) => e,
                );
        it("keeps whitelisted options, drops the rest with reasons", function () {
            const s = sanitizeIni(
                [
                    "; comment",
                    "Width = 64 ; trailing comment",
                    "height=48",
                    "Antialias=on",
                    'Input_File_Name="my scene.pov"',
                    "Declare=Radius=1.5",
                    "Pre_Scene_Command=rm -rf /",
                    "Library_Path=/etc",
                    "[other]",
                    "Width=1",
                ].join("\n"),
            );
            expect(s.options).to.deep.equal([
                ["Width", "64"],
                ["Height", "48"],
                ["Antialias", "on"],
            ]);
            expect(s.inputFile).to.equal("my scene.pov");
            expect(s.declares).to.deep.equal([["Radius", "1.5"]]);
            expect(s.dropped.map((d) => d.key)).to.deep.equal(["Pre_Scene_Command", "Library_Path", "Width"]);
            expect(s.invalid).to.deep.equal([]);
        });
        it("builds an INI whose paths are fixed by the worker", function () {
            const ini = buildRenderIni(
                { dir: "/s/in", pov: "a b.pov", sanitized: { options: [["Width", "8"]], declares: [], dropped: [], invalid: [] } },
                "/s/work/render.png",
                2,
                null,
            );
            expect(ini).to.include('Input_File_Name="a b.pov"');
            expect(ini).to.include('Output_File_Name="/s/work/render.png"');
            expect(ini).to.include('Library_Path="/s/in"');
            expect(ini).to.include("Work_Threads=2");
            expect(ini).to.include("Width=8");
            expect(() => buildRenderIni({ dir: "/s", pov: 'x".pov' }, "/o.png", 1, null)).to.throw(PermanentError);
        });
        it("finds <base>.ini first, else the only .pov, looking inside a single top-level folder", function () {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "scene-"));
            fs.mkdirSync(path.join(dir, "folder"));
            fs.writeFileSync(path.join(dir, "folder/a.pov"), "");
            fs.writeFileSync(path.join(dir, "folder/other.ini"), "Width=5\n");
            expect(findScene(dir, "job")).to.deep.include({ dir: path.join(dir, "folder"), pov: "a.pov" });
            fs.writeFileSync(path.join(dir, "folder/b.pov"), "");
            fs.writeFileSync(path.join(dir, "folder/job.ini"), "Input_File_Name=b.pov\nWidth=5\n");
            const s = findScene(dir, "job");
            expect(s).to.deep.include({ pov: "b.pov", ini: "job.ini" });
            expect(s.sanitized!.options).to.deep.equal([["Width", "5"]]);
            fs.rmSync(dir, { recursive: true });
        });
        it("rejects an INI larger than 64 KiB as permanent, naming the file and the limit", function () {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "scene-"));
            fs.writeFileSync(path.join(dir, "a.pov"), "");
            fs.writeFileSync(path.join(dir, "job.ini"), "junk\n".repeat(Math.ceil((MAX_INI_BYTES + 1) / 5)));
            expect(() => findScene(dir, "job")).to.throw(PermanentError, /INI "job.ini" is \d+ bytes, more than the limit of 65536 bytes/);
            // Exactly at the limit is still read.
            fs.writeFileSync(path.join(dir, "job.ini"), "Width=5\n" + ";".repeat(MAX_INI_BYTES - 9) + "\n");
            expect(fs.statSync(path.join(dir, "job.ini")).size).to.equal(MAX_INI_BYTES);
            expect(findScene(dir, "job").sanitized!.options).to.deep.equal([["Width", "5"]]);
            fs.rmSync(dir, { recursive: true });
        });
        it("logs at most MAX_DROPPED_LOG_LINES dropped INI keys per job plus one summary with the total", async function () {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "scene-"));
            fs.mkdirSync(path.join(dir, "in"));
            fs.mkdirSync(path.join(dir, "work"));
            fs.writeFileSync(path.join(dir, "in/a.pov"), "");
            fs.writeFileSync(path.join(dir, "in/job.ini"), "junk\n".repeat(5000));
            const logs: Array<{ event: string; [k: string]: unknown }> = [];
            // /bin/false stands in for povray: the dropped keys are logged before it runs.
            const err = await processIn(new PovrayProcessor({ bin: "false", includeDir: null }), dir, (event, fields = {}) => logs.push({ event, ...fields }));
            expect(err).to.be.instanceOf(PermanentError);
            expect(logs.filter((l) => l.event === "ini_key_dropped")).to.have.length(MAX_DROPPED_LOG_LINES);
            const summary = logs.filter((l) => l.event === "ini_keys_dropped");
            expect(summary).to.have.length(1);
            expect(summary[0]).to.include({ total: 5000, notLogged: 5000 - MAX_DROPPED_LOG_LINES });
            fs.rmSync(dir, { recursive: true });
        });
        describe("POV-Ray's exit status", function () {
            const USER_CONF = "povray: cannot open the user configuration file /s/home/.povray/3.7/povray.conf: No such file or directory";
            /** A stand-in povray that prints `stderr` the way POV-Ray does and exits 1. */
            async function runStandIn(stderr: string): Promise<unknown> {
                const dir = fs.mkdtempSync(path.join(os.tmpdir(), "scene-"));
                try {
                    fs.mkdirSync(path.join(dir, "in"));
                    fs.mkdirSync(path.join(dir, "work"));
                    fs.writeFileSync(path.join(dir, "in/a.pov"), "");
                    const bin = path.join(dir, "povray");
                    fs.writeFileSync(bin, `#!/bin/sh\ncat >&2 <<'EOF'\n${stderr}\nEOF\nexit 1\n`, { mode: 0o755 });
                    return await processIn(new PovrayProcessor({ bin, includeDir: null }), dir);
                } finally {
                    fs.rmSync(dir, { recursive: true, force: true });
                }
            }

            it("a start-up time-out of POV-Ray's own (a saturated CPU) is transient: retried, not failed for good", async function () {
                for (const line of ["Timed out waiting for worker thread startup", "Timed out waiting for request to be serviced"]) {
                    const err = await runStandIn(`${USER_CONF}\n${line}`);
                    expect(err).to.be.instanceOf(Error).and.not.instanceOf(PermanentError);
                    expect((err as Error).message).to.equal(`povray exited with 1: ${line}`);
                }
            });

            it("a scene's error is permanent; the missing user povray.conf warning is never the reason", async function () {
                const err = await runStandIn(`${USER_CONF}\nFile 'a.pov' line 1: Parse Error: No objects in scene.`);
                expect(err).to.be.instanceOf(PermanentError);
                expect((err as Error).message).to.equal("povray exited with 1: File 'a.pov' line 1: Parse Error: No objects in scene.");
                expect(povrayErrorSummary(`${USER_CONF}\n`)).to.equal("");
            });
        });
        it("ignores __MACOSX, .DS_Store and ._* entries when finding the scene and the single top-level folder", function () {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "scene-"));
            fs.mkdirSync(path.join(dir, "scene"));
            fs.writeFileSync(path.join(dir, "scene/a.pov"), "");
            fs.writeFileSync(path.join(dir, "scene/._a.pov"), "");
            fs.writeFileSync(path.join(dir, "scene/.DS_Store"), "");
            fs.mkdirSync(path.join(dir, "__MACOSX/scene"), { recursive: true });
            fs.writeFileSync(path.join(dir, "__MACOSX/scene/._a.pov"), "");
            fs.writeFileSync(path.join(dir, ".DS_Store"), "");
            expect(findScene(dir, "job")).to.deep.include({ dir: path.join(dir, "scene"), pov: "a.pov" });
            fs.rmSync(dir, { recursive: true });
        });
        it("rejects an Input_File_Name outside the job", function () {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "scene-"));
            fs.writeFileSync(path.join(dir, "job.ini"), "Input_File_Name=../../etc/passwd\n");
            expect(() => findScene(dir, "job")).to.throw(PermanentError, /relative path inside the job/);
            fs.writeFileSync(path.join(dir, "job.ini"), "Input_File_Name=/etc/passwd\n");
            expect(() => findScene(dir, "job")).to.throw(PermanentError, /relative path inside the job/);
            fs.rmSync(dir, { recursive: true });
        });
    });

    describe("extractZip", function () {
        it("names unsafe entry paths and the rule", function () {
            expect(unsafeEntryName("a/../../b")).to.match(/'\.\.'/);
            expect(unsafeEntryName("/etc/x")).to.equal("absolute path");
            expect(unsafeEntryName("C:/x")).to.equal("drive letter");
            expect(unsafeEntryName("a\\b")).to.equal("backslash in path");
            expect(unsafeEntryName("dir/ok.pov")).to.equal(null);
        });

        it("counts inflated bytes even when the headers lie about the size", async function () {
            const data = Buffer.alloc(2 * 1024 * 1024, 0x61);
            const zip = await makeZip([{ name: "liar.inc", data }]);
            // Patch every declared uncompressed size (local header + central directory) to claim 10 bytes.
            const lie = Buffer.from(zip);
            for (let i = 0; i < lie.length - 4; i++) {
                const sig = lie.readUInt32LE(i);
                if (sig === 0x04034b50) lie.writeUInt32LE(10, i + 22);
                if (sig === 0x02014b50) lie.writeUInt32LE(10, i + 24);
            }
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "unzip-"));
            const file = path.join(dir, "lie.zip");
            fs.writeFileSync(file, lie);
            fs.mkdirSync(path.join(dir, "out"));
            let err: unknown;
            try {
                await extractZip(file, path.join(dir, "out"), { maxEntries: 10, maxBytes: 1000 });
            } catch (e) {
                err = e;
            }
            expect(err).to.be.instanceOf(PermanentError);
            expect((err as Error).message).to.match(/zip rejected/);
            expect((err as Error).message).to.include("liar.inc");
            const written = fs.existsSync(path.join(dir, "out/liar.inc")) ? fs.statSync(path.join(dir, "out/liar.inc")).size : 0;
            expect(written).to.be.at.most(1000);
            fs.rmSync(dir, { recursive: true });
        });

        it("rejects duplicate entry names instead of overwriting", async function () {
            const zip = await makeZip([
                { name: "a.pov", data: "first" },
                { name: "a.pov", data: "second" },
            ]);
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "unzip-"));
            fs.writeFileSync(path.join(dir, "z.zip"), zip);
            fs.mkdirSync(path.join(dir, "out"));
            let err: unknown;
            await extractZip(path.join(dir, "z.zip"), path.join(dir, "out"), { maxEntries: 10, maxBytes: 100 }).catch((e) => (err = e));
            expect(err).to.be.instanceOf(PermanentError);
            expect((err as Error).message).to.equal('zip rejected: entry "a.pov": duplicate entry');
            fs.rmSync(dir, { recursive: true });
        });

        /** Writes `zip` to a fresh temp dir, extracts it into out/; returns the error (if any) and the dir. */
        async function tryExtract(zip: Buffer, limits: { maxEntries: number; maxBytes: number }, signal?: AbortSignal) {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "unzip-"));
            fs.writeFileSync(path.join(dir, "z.zip"), zip);
            fs.mkdirSync(path.join(dir, "out"));
            let err: unknown;
            await extractZip(path.join(dir, "z.zip"), path.join(dir, "out"), limits, signal).catch((e) => (err = e));
            return { err, dir };
        }

        it("lets a full disk (ENOSPC) and other local fs errors through as they are (the runtime classes them), not as 'zip rejected'", async function () {
            const zip = await makeZip([{ name: "d/a.txt", data: "hello" }]);
            for (const code of ["ENOSPC", "EMFILE", "EIO", "ENOMEM"]) {
                const real = fs.promises.mkdir;
                (fs.promises as { mkdir: unknown }).mkdir = async () => {
                    throw Object.assign(new Error(`${code}: injected`), { code, errno: -28, syscall: "mkdir" });
                };
                let r;
                try {
                    r = await tryExtract(zip, { maxEntries: 10, maxBytes: 100 });
                } finally {
                    (fs.promises as { mkdir: unknown }).mkdir = real;
                }
                expect(r.err, code).to.be.instanceOf(Error);
                expect(r.err, code).to.not.be.instanceOf(PermanentError);
                expect((r.err as NodeJS.ErrnoException).code).to.equal(code);
                fs.rmSync(r.dir, { recursive: true });
            }
            // A real format error is still permanent.
            const { err, dir } = await tryExtract(Buffer.from("PK\x03\x04 not really a zip"), { maxEntries: 10, maxBytes: 100 });
            expect(err).to.be.instanceOf(PermanentError);
            fs.rmSync(dir, { recursive: true });
        });

        it("rejects paths deeper than MAX_PATH_DEPTH components, naming the entry and the rule", async function () {
            const deep = "a/".repeat(MAX_PATH_DEPTH + 1);
            const { err, dir } = await tryExtract(await makeZip([{ name: deep, dir: true }]), { maxEntries: 10, maxBytes: 100 });
            expect(err).to.be.instanceOf(PermanentError);
            expect((err as Error).message).to.include('entry "a/a/');
            expect((err as Error).message).to.include(`path deeper than ${MAX_PATH_DEPTH} components`);
            expect(fs.readdirSync(path.join(dir, "out"))).to.deep.equal([]);
            fs.rmSync(dir, { recursive: true });
            // At the limit it extracts.
            const ok = await tryExtract(await makeZip([{ name: "a/".repeat(MAX_PATH_DEPTH - 1) + "f.txt", data: "x" }]), { maxEntries: 100, maxBytes: 100 });
            expect(ok.err).to.equal(undefined);
            fs.rmSync(ok.dir, { recursive: true });
        });

        it("caps the directories created in total (nested-directory bomb), explicit or implied", async function () {
            // 3 entries but 3 x 5 = 15 directories, more than maxEntries=10.
            const entries: ZipEntry[] = [0, 1, 2].map((i) => ({ name: `d${i}/a/b/c/d/`, dir: true }));
            const r1 = await tryExtract(await makeZip(entries), { maxEntries: 10, maxBytes: 100 });
            expect(r1.err).to.be.instanceOf(PermanentError);
            expect((r1.err as Error).message).to.match(/entry "d2\/a\/b\/c\/d\/": more than 10 directories in total/);
            fs.rmSync(r1.dir, { recursive: true });
            const files: ZipEntry[] = [0, 1, 2].map((i) => ({ name: `d${i}/a/b/c/d/f.txt`, data: "x" }));
            const r2 = await tryExtract(await makeZip(files), { maxEntries: 10, maxBytes: 100 });
            expect((r2.err as Error).message).to.match(/more than 10 directories in total/);
            fs.rmSync(r2.dir, { recursive: true });
        });

        it("stops between entries when its AbortSignal fires (SIGTERM)", async function () {
            const entries: ZipEntry[] = [];
            for (let i = 0; i < 50; i++) entries.push({ name: `f${i}.txt`, data: "x" });
            const zip = await makeZip(entries);
            const aborted = new AbortController();
            aborted.abort();
            const r1 = await tryExtract(zip, { maxEntries: 100, maxBytes: 1000 }, aborted.signal);
            expect(r1.err).to.be.instanceOf(AbortedError);
            expect(fs.readdirSync(path.join(r1.dir, "out"))).to.deep.equal([]);
            fs.rmSync(r1.dir, { recursive: true });
            // Aborted while extracting: stops after the entry in progress.
            const ac = new AbortController();
            // The fs module object itself (the `import * as` namespace above only has getters).
            // eslint-disable-next-line @typescript-eslint/no-var-requires
            const nodeFs = require("fs") as { createWriteStream: typeof fs.createWriteStream };
            const real = nodeFs.createWriteStream;
            let opened = 0;
            nodeFs.createWriteStream = (...a: Parameters<typeof fs.createWriteStream>) => {
                if (++opened === 3) ac.abort();
                return real(...a);
            };
            let r2;
            try {
                r2 = await tryExtract(zip, { maxEntries: 100, maxBytes: 1000 }, ac.signal);
            } finally {
                nodeFs.createWriteStream = real;
            }
            expect(r2.err).to.be.instanceOf(AbortedError);
            expect(fs.readdirSync(path.join(r2.dir, "out"))).to.have.length(3);
            fs.rmSync(r2.dir, { recursive: true });
        });

        it("extracts a normal zip with folders", async function () {
            const zip = await makeZip([
                { name: "d/", dir: true },
                { name: "d/a.txt", data: "hello" },
                { name: "b.txt", data: "x" },
            ]);
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "unzip-"));
            fs.writeFileSync(path.join(dir, "z.zip"), zip);
            fs.mkdirSync(path.join(dir, "out"));
            const r = await extractZip(path.join(dir, "z.zip"), path.join(dir, "out"), { maxEntries: 10, maxBytes: 100 });
            expect(r).to.deep.equal({ files: 2, bytes: 6 });
            expect(fs.readFileSync(path.join(dir, "out/d/a.txt"), "utf8")).to.equal("hello");
            fs.rmSync(dir, { recursive: true });
        });
    });

    describe("output metadata", function () {
        it("keeps source-key whole when short, truncates a long non-ASCII key and adds source-key-sha256", function () {
            expect(sourceKeyMetadata("in/a b.zip")).to.deep.equal({ "source-key": "in%2Fa%20b.zip" });
            // 1000 bytes of key (S3's limit is 1024), 3000 characters URL-encoded: over S3's 2 KB metadata limit.
            const key = "in/" + "é".repeat(497) + ".zip";
            expect(Buffer.byteLength(key)).to.be.at.most(1024);
            const m = sourceKeyMetadata(key);
            expect(m["source-key"].length).to.be.at.most(MAX_SOURCE_KEY_METADATA);
            expect(m["source-key"].length).to.be.greaterThan(MAX_SOURCE_KEY_METADATA - 12);
            // Cut on an escape boundary: still decodes, and is a prefix of the key.
            expect(key.startsWith(decodeURIComponent(m["source-key"]))).to.equal(true);
            expect(m["source-key-sha256"]).to.equal(createHash("sha256").update(key).digest("hex"));
            const total = Object.entries(m).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
            expect(total).to.be.lessThan(2048 - 200);
        });
    });

    describe("sqsSafe", function () {
        it("replaces characters SQS rejects with U+FFFD and keeps everything else", function () {
            expect(sqsSafe("a\x01b\x1bc\x00\x08\x0b\x0c\x1f\uFFFE\uFFFF\uD800")).to.equal("a\uFFFDb\uFFFDc" + "\uFFFD".repeat(8));
            const ok = "tab\tnl\ncr\r ü \u007f \uD7FF \uE000 \uFFFD 😀 \u{10FFFF}";
            expect(sqsSafe(ok)).to.equal(ok);
        });
    });

    describe("config and errors", function () {
        it("reads the environment with defaults and validation", function () {
            const c = configFromEnv({ QUEUE_URL: "q" });
            expect(c).to.include({ waitSeconds: 20, idleExit: 1, concurrency: 1, inputPrefix: "", outputPrefix: "" });
            expect(c.maxReceiveCount).to.equal(undefined);
            // Each process its own scratch dir by default (a worker sweeps everything in it but its own job dirs).
            expect(c.scratchDir).to.equal(path.join(os.tmpdir(), "lambda-ecs-worker", String(process.pid)));
            expect(configFromEnv({ JOB_BUCKET: "b", JOB_KEY: "k" }).jobKey).to.equal("k");
            expect(() => configFromEnv({})).to.throw(/QUEUE_URL is required/);
            expect(() => configFromEnv({ QUEUE_URL: "q", WORKER_CONCURRENCY: "0" })).to.throw(/WORKER_CONCURRENCY/);
            expect(configFromEnv({ QUEUE_URL: "q", WORKER_IDLE_EXIT: "0" }).idleExit).to.equal(0);
            expect(c.jobTimeoutSeconds).to.equal(3600);
            expect(configFromEnv({ QUEUE_URL: "q", JOB_TIMEOUT_SECONDS: "43200" }).jobTimeoutSeconds).to.equal(43200);
            for (const v of ["43201", "2147484", "99999999999"]) {
                expect(() => configFromEnv({ QUEUE_URL: "q", JOB_TIMEOUT_SECONDS: v }), v).to.throw(
                    /^JOB_TIMEOUT_SECONDS must be an integer between 1 and 43200, got/,
                );
            }
        });
        it("WORKER_STOP_TIMEOUT_SECONDS (the task's stopTimeout, 2-120, default 25) sets the deadlines after SIGTERM: uploads until 15 s before SIGKILL, a forced exit 5 s before it", function () {
            expect(configFromEnv({ QUEUE_URL: "q" }).stopTimeoutSeconds).to.equal(25);
            expect(configFromEnv({ QUEUE_URL: "q", WORKER_STOP_TIMEOUT_SECONDS: "120" }).stopTimeoutSeconds).to.equal(120);
            expect(() => configFromEnv({ QUEUE_URL: "q", WORKER_STOP_TIMEOUT_SECONDS: "121" })).to.throw(/^WORKER_STOP_TIMEOUT_SECONDS must be an integer between 2 and 120, got "121"/);
            // The standalone default keeps the forced exit of 20 s; the component's 120 s gives the uploads 105 s.
            expect(stopDeadlines(25)).to.deep.equal({ finishWithinMs: 10000, forcedExitMs: 20000 });
            expect(stopDeadlines(120)).to.deep.equal({ finishWithinMs: 105000, forcedExitMs: 115000 });
            expect(stopDeadlines(2)).to.deep.equal({ finishWithinMs: 0, forcedExitMs: 1000 });
        });
        it("reads RENDER_TIMEOUT_SECONDS as the former name of JOB_TIMEOUT_SECONDS, which wins when both are set", function () {
            expect(configFromEnv({ QUEUE_URL: "q", RENDER_TIMEOUT_SECONDS: "60" }).jobTimeoutSeconds).to.equal(60);
            expect(configFromEnv({ QUEUE_URL: "q", RENDER_TIMEOUT_SECONDS: "60", JOB_TIMEOUT_SECONDS: "7" }).jobTimeoutSeconds).to.equal(7);
            expect(() => configFromEnv({ QUEUE_URL: "q", RENDER_TIMEOUT_SECONDS: "0" })).to.throw(
                /^RENDER_TIMEOUT_SECONDS must be an integer between 1 and 43200, got "0"/,
            );
        });
        it("classifies transient errors", function () {
            expect(isTransient({ name: "ThrottlingException" })).to.equal(true);
            expect(isTransient({ $metadata: { httpStatusCode: 503 } })).to.equal(true);
            expect(isTransient({ code: "ECONNRESET" })).to.equal(true);
            expect(isTransient({ name: "AccessDenied", $metadata: { httpStatusCode: 403 } })).to.equal(false);
            expect(isTransient(new PermanentError("x"))).to.equal(false);
            // S3's RequestTimeout is a 400 but worth retrying.
            expect(isTransient({ name: "RequestTimeout", $metadata: { httpStatusCode: 400 } })).to.equal(true);
        });
        it("classifies non-retryable 4xx service errors as permanent, not 408/429/throttling/5xx/network", function () {
            for (const status of [400, 403, 404, 405, 409, 411, 412, 413, 414, 416]) {
                const e = { name: "SomeError", $metadata: { httpStatusCode: status } };
                expect(isPermanentServiceError(e), String(status)).to.equal(true);
                expect(isTransient(e), String(status)).to.equal(false);
            }
            for (const e of [
                { name: "RequestTimeout", $metadata: { httpStatusCode: 408 } },
                { name: "TooManyRequests", $metadata: { httpStatusCode: 429 } },
                { name: "ThrottlingException", $metadata: { httpStatusCode: 400 } },
                { name: "RequestThrottled", $metadata: { httpStatusCode: 403 } },
                { name: "RequestTimeout", $metadata: { httpStatusCode: 400 } },
                { name: "X", $retryable: {}, $metadata: { httpStatusCode: 400 } },
                { name: "InternalError", $metadata: { httpStatusCode: 500 } },
                { code: "ECONNRESET" },
                new Error("plain"),
            ]) {
                expect(isPermanentServiceError(e), JSON.stringify(e)).to.equal(false);
            }
        });
    });
});
