/**
 * Units for issue #12: ETag forms and the stable jobId (worker-image/src/binding.ts), the version binding in JobRunner
 * (aws-sdk-client-mock), how a tool is tied to its worker (parent-death.ts), and npm run local's DLQ reading.
 */
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";
import { expect } from "chai";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Readable } from "stream";
import { makeZip } from "../harness/worker-env";
import { deadLetteredJobs } from "../cli/local/watch";
import {
    JOB_ID_LENGTH,
    bareEtag,
    deadLetterJobId,
    ifMatch,
    isPreconditionFailed,
    jobId,
    messageJobId,
    sameEtag,
} from "../worker-image/src/binding";
import { JobConfig, JobRunner } from "../worker-image/src/job";
import { findSetpriv, resolveExecutable, tieToParent } from "../worker-image/src/parent-death";
import { Processor } from "../worker-image/src/processor";
import { requirePrerequisite } from "./helpers/prerequisite";

describe("issue #12 units", function () {
    describe("binding.ts: ETags", function () {
        const cases: Array<[string | undefined, string | undefined]> = [
            ['"6654c734ccab8f440ff0825eb443dc7f"', "6654c734ccab8f440ff0825eb443dc7f"],
            ["6654c734ccab8f440ff0825eb443dc7f", "6654c734ccab8f440ff0825eb443dc7f"],
            ['W/"abc-2"', "abc-2"],
            [' "abc" ', "abc"],
            ['""', undefined],
            ["", undefined],
            [undefined, undefined],
        ];
        for (const [input, bare] of cases) {
            it(`bareEtag(${JSON.stringify(input)}) is ${JSON.stringify(bare)}`, function () {
                expect(bareEtag(input)).to.equal(bare);
            });
        }
        it("ifMatch quotes the bare form once; sameEtag ignores quoting and never matches an unknown ETag", function () {
            expect(ifMatch("abc")).to.equal('"abc"');
            expect(ifMatch('"abc"')).to.equal('"abc"');
            expect(sameEtag('"abc"', "abc")).to.equal(true);
            expect(sameEtag("abc", "abd")).to.equal(false);
            expect(sameEtag(undefined, undefined)).to.equal(false);
        });
        it("isPreconditionFailed: GetObject's PreconditionFailed and HeadObject's bodiless 412", function () {
            expect(isPreconditionFailed({ name: "PreconditionFailed", $metadata: { httpStatusCode: 412 } })).to.equal(true);
            expect(isPreconditionFailed({ name: "Unknown", $metadata: { httpStatusCode: 412 } })).to.equal(true);
            expect(isPreconditionFailed({ name: "NotFound", $metadata: { httpStatusCode: 404 } })).to.equal(false);
            expect(isPreconditionFailed(undefined)).to.equal(false);
        });
    });

    describe("binding.ts: jobId", function () {
        const job = { bucket: "b", key: "in/scene.zip", etag: "6654c734ccab8f440ff0825eb443dc7f" };
        it("is 32 lowercase hex characters, the same for the same bucket, key and ETag (quoted or not)", function () {
            expect(jobId(job)).to.match(new RegExp(`^[0-9a-f]{${JOB_ID_LENGTH}}$`));
            expect(JOB_ID_LENGTH).to.equal(32);
            expect(jobId({ ...job })).to.equal(jobId(job));
            expect(jobId({ ...job, etag: `"${job.etag}"` })).to.equal(jobId(job));
        });
        it("differs when the bucket, the key or the ETag differs, and for an unknown ETag", function () {
            const ids = new Set([
                jobId(job),
                jobId({ ...job, bucket: "c" }),
                jobId({ ...job, key: "in/scene2.zip" }),
                jobId({ ...job, etag: "0000" }),
                jobId({ bucket: job.bucket, key: job.key }),
            ]);
            expect(ids.size).to.equal(5);
        });
        it("cannot be forged by moving characters between bucket and key", function () {
            expect(jobId({ bucket: "ab", key: "c" })).to.not.equal(jobId({ bucket: "a", key: "bc" }));
        });
        it("is a fixed value (the id is a contract: it must not change between releases)", function () {
            // sha256(JSON.stringify(["job", bucket, key, bareEtag])), first 32 hex characters.
            expect(jobId({ bucket: "b", key: "k", etag: '"e"' })).to.equal("b361387551f06a6aff54f55359b59a07");
        });
        it("deadLetterJobId: the one job's id; several: one id over their sorted ids; none: the body's id", function () {
            const a = jobId(job);
            const b = jobId({ ...job, key: "other.zip" });
            expect(deadLetterJobId([a], "body")).to.equal(a);
            expect(deadLetterJobId([a, a], "body")).to.equal(a);
            expect(deadLetterJobId([a, b], "x")).to.equal(deadLetterJobId([b, a], "y"));
            expect(deadLetterJobId([a, b], "x")).to.not.be.oneOf([a, b]);
            expect(deadLetterJobId([], "not json")).to.equal(messageJobId("not json"));
            expect(messageJobId("not json")).to.not.equal(messageJobId("not json!"));
        });
    });

    describe("job.ts: version binding (mocked S3)", function () {
        // This spec's own client only (mocking the S3Client class would reach the specs loaded after this one).
        const client = new S3Client({ region: "us-east-1" });
        const s3 = mockClient(client);
        let scratch: string;
        let cfg: JobConfig;
        const logs: Array<{ event: string; [k: string]: unknown }> = [];
        const processor: Processor = {
            name: "fake",
            async process(input) {
                fs.writeFileSync(path.join(input.workDir, "out.png"), "png");
                return { seconds: 1, outputs: [{ suffix: ".png", path: path.join(input.workDir, "out.png"), contentType: "image/png" }] };
            },
        };
        const runner = () =>
            new JobRunner(cfg, { s3: client, processor, log: (event, f = {}) => void logs.push({ event, ...f }) });
        const live = () => new AbortController().signal;
        const status412 = () => Object.assign(new Error("PreconditionFailed"), { name: "PreconditionFailed", $metadata: { httpStatusCode: 412 } });

        beforeEach(async function () {
            s3.reset();
            logs.length = 0;
            scratch = fs.mkdtempSync(path.join(os.tmpdir(), "binding-units-"));
            cfg = {
                scratchDir: scratch,
                inputPrefix: "",
                outputPrefix: "",
                maxInputBytes: 1 << 20,
                maxUnzippedBytes: 1 << 20,
                maxZipEntries: 10,
                jobTimeoutSeconds: 5,
                outputSuffixes: [".png"],
            } as JobConfig;
            const zip = await makeZip([{ name: "scene.pov", data: "sphere" }]);
            s3.on(GetObjectCommand).callsFake(async () => ({ Body: Readable.from([zip]), ContentLength: zip.length, ETag: '"v1"' }));
            s3.on(HeadObjectCommand).resolves({ ETag: '"v1"' });
            s3.on(PutObjectCommand).resolves({});
            s3.on(DeleteObjectCommand).resolves({});
        });
        afterEach(function () {
            fs.rmSync(scratch, { recursive: true, force: true });
        });
        after(function () {
            s3.restore();
        });

        it("downloads and checks with the event's ETag, quoted, and uploads with job-id metadata", async function () {
            const outcome = await runner().runJob({ bucket: "b", key: "in/s.zip", etag: "v1" }, live(), 1);
            expect(outcome, JSON.stringify(outcome)).to.include({ status: "ok" });
            expect(s3.commandCalls(GetObjectCommand)[0].args[0].input.IfMatch).to.equal('"v1"');
            expect(s3.commandCalls(HeadObjectCommand)[0].args[0].input).to.deep.equal({ Bucket: "b", Key: "in/s.zip", IfMatch: '"v1"' });
            const meta = s3.commandCalls(PutObjectCommand)[0].args[0].input.Metadata!;
            expect(meta["job-id"]).to.equal(jobId({ bucket: "b", key: "in/s.zip", etag: "v1" }));
            expect(meta["source-etag"]).to.equal("%22v1%22");
        });

        it("a direct job without an ETag downloads without If-Match and checks against the downloaded ETag", async function () {
            const outcome = await runner().runJob({ bucket: "b", key: "in/s.zip" }, live(), 1);
            expect(outcome, JSON.stringify(outcome)).to.include({ status: "ok" });
            expect(s3.commandCalls(GetObjectCommand)[0].args[0].input).to.not.have.property("IfMatch");
            expect(s3.commandCalls(HeadObjectCommand)[0].args[0].input.IfMatch).to.equal('"v1"');
            // The outcome carries the job as bound, so its event and metrics name the downloaded version's jobId.
            expect(outcome.status === "ok" && outcome.job).to.deep.include({ bucket: "b", key: "in/s.zip", etag: "v1" });
        });

        it("a 412 on the download is stale: no processor, no upload", async function () {
            s3.on(GetObjectCommand).rejects(status412());
            const outcome = await runner().runJob({ bucket: "b", key: "in/s.zip", etag: "v0" }, live(), 1);
            expect(outcome).to.deep.include({ status: "stale", job: { bucket: "b", key: "in/s.zip", etag: "v0" } });
            expect(s3.commandCalls(PutObjectCommand)).to.have.length(0);
            expect(logs.find((l) => l.event === "stale")).to.include({ jobId: jobId({ bucket: "b", key: "in/s.zip", etag: "v0" }) });
        });

        it("a 412 on the check before the uploads is stale: outputs discarded", async function () {
            s3.on(HeadObjectCommand).rejects(status412());
            const outcome = await runner().runJob({ bucket: "b", key: "in/s.zip", etag: "v1" }, live(), 1);
            expect(outcome.status).to.equal("stale");
            expect(s3.commandCalls(PutObjectCommand)).to.have.length(0);
        });

        it("a check that answers another ETag (an S3 that ignored If-Match) is stale too", async function () {
            s3.on(HeadObjectCommand).resolves({ ETag: '"v2"' });
            const outcome = await runner().runJob({ bucket: "b", key: "in/s.zip", etag: "v1" }, live(), 1);
            expect(outcome.status).to.equal("stale");
            expect(s3.commandCalls(PutObjectCommand)).to.have.length(0);
        });

        it("an input deleted before the download (404, and not listed) ends as deleted: stale, nothing written (issue #17: a deleted input is no failure)", async function () {
            s3.on(GetObjectCommand).rejects(Object.assign(new Error("NoSuchKey"), { name: "NoSuchKey", $metadata: { httpStatusCode: 404 } }));
            s3.on(HeadObjectCommand).rejects(Object.assign(new Error("NotFound"), { name: "NotFound", $metadata: { httpStatusCode: 404 } }));
            s3.on(ListObjectsV2Command).resolves({ KeyCount: 0, IsTruncated: false });
            const outcome = await runner().runJob({ bucket: "b", key: "in/s.zip", etag: "v1" }, live(), 1);
            expect(outcome).to.deep.include({ status: "stale", reason: "input deleted: s3://b/in/s.zip (ETag v1) no longer exists" });
        });
    });

    describe("parent-death.ts", function () {
        it("resolveExecutable finds a tool on PATH, a path relative to cwd, and nothing for a missing one", function () {
            expect(resolveExecutable("sh", "/nonexistent:/bin:/usr/bin", "/")).to.match(/\/sh$/);
            expect(resolveExecutable("./sh", undefined, "/bin")).to.equal("/bin/sh");
            expect(resolveExecutable("no-such-tool-12", "/bin:/usr/bin", "/")).to.equal(undefined);
            expect(resolveExecutable("/nonexistent/tool", "/bin", "/")).to.equal(undefined);
        });
        it("tieToParent runs a resolvable tool under setpriv --pdeathsig KILL (on Linux with setpriv)", function () {
            const setpriv = findSetpriv();
            requirePrerequisite(this, !!setpriv, "setpriv (util-linux)");
            expect(tieToParent("sh", ["-c", "true"], "/bin:/usr/bin", "/")).to.deep.equal({
                bin: setpriv,
                args: ["--pdeathsig", "KILL", "--", resolveExecutable("sh", "/bin:/usr/bin", "/"), "-c", "true"],
            });
        });
        it("tieToParent leaves a tool that does not resolve as it is (spawn reports ENOENT as before)", function () {
            expect(tieToParent("/nonexistent/tool", ["a"], "/bin", "/")).to.deep.equal({ bin: "/nonexistent/tool", args: ["a"] });
        });
    });

    describe("npm run local: deadLetteredJobs reads jobId", function () {
        it("from the body, else the attribute; absent when neither has one", function () {
            expect(deadLetteredJobs(JSON.stringify({ bucket: "b", key: "k", reason: "r", jobId: "j1" }))).to.deep.equal({ keys: ["k"], reason: "r", jobId: "j1" });
            expect(deadLetteredJobs("not json", "r", "j2")).to.deep.equal({ keys: [], reason: "r", jobId: "j2" });
            expect(deadLetteredJobs(JSON.stringify({ bucket: "b", key: "k" }))).to.not.have.property("jobId");
        });
    });
});
