/**
 * worker-image/src/transfer.ts: multipart uploads from disk, ranged parallel downloads to disk, the scratch-space
 * check, and how the job runner uses them (job.ts). Two kinds of S3:
 *  - a scripted S3 client answering in AWS's documented shapes (CreateMultipartUpload/UploadPart/
 *    CompleteMultipartUpload/AbortMultipartUpload; GetObject with Range: 206 + Content-Range, 412 on If-Match,
 *    416 InvalidRange for a range of an empty object), which sees each request's abort signal and timing;
 *  - moto_server, for the same calls over HTTP: multipart upload, ListMultipartUploads after an abort, ranged GETs
 *    with If-Match.
 */
import {
    CreateBucketCommand,
    GetObjectCommand,
    HeadObjectCommand,
    ListMultipartUploadsCommand,
    PutObjectCommand,
    S3Client,
    UploadPartCommand,
} from "@aws-sdk/client-s3";
import { expect } from "chai";
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Readable } from "stream";

import { Moto, motoClientConfig, startMoto } from "../harness/moto";
import { makeZip } from "../harness/worker-env";
import { isPreconditionFailed } from "../worker-image/src/binding";
import { AbortedError, PermanentError, isTransient, localResourceCode } from "../worker-image/src/errors";
import { JobConfig, JobRunner, Outcome } from "../worker-image/src/job";
import { Processor } from "../worker-image/src/processor";
import {
    S3_MAX_OBJECT_BYTES,
    S3_MAX_PARTS,
    SpaceProbe,
    UPLOAD_MIN_PART_BYTES,
    downloadFile,
    ensureScratchSpace,
    formatBytes,
    scratchFailure,
    uploadFile,
    uploadPartSize,
    uploadPartsInFlight,
} from "../worker-image/src/transfer";
import { requirePrerequisite } from "./helpers/prerequisite";
import { awsError, recorder } from "./helpers/log-recorder";

const MiB = 1024 * 1024;

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

interface Call {
    name: string;
    input: any;
    signal?: AbortSignal;
    start: number;
    end?: number;
    outcome?: "ok" | "error";
}

/**
 * A real S3Client whose `send` is answered by `handler` (AWS's answers, scripted), recording each call with its abort
 * signal and when it started and ended.
 */
function scriptedS3(handler: (name: string, input: any, signal: AbortSignal | undefined, call: Call) => Promise<any>): { s3: S3Client; calls: Call[] } {
    const s3 = new S3Client({ region: "us-east-1", credentials: { accessKeyId: "test", secretAccessKey: "test" } });
    const calls: Call[] = [];
    (s3 as unknown as { send: unknown }).send = async (command: { constructor: { name: string }; input: any }, options?: { abortSignal?: AbortSignal }) => {
        const call: Call = { name: command.constructor.name.replace(/Command$/, ""), input: command.input, signal: options?.abortSignal, start: performance.now() };
        calls.push(call);
        try {
            const out = await handler(call.name, command.input, options?.abortSignal, call);
            call.outcome = "ok";
            return out;
        } catch (err) {
            call.outcome = "error";
            throw err;
        } finally {
            call.end = performance.now();
        }
    };
    return { s3, calls };
}

/** Resolves after `ms`, or rejects as the SDK does when `signal` aborts first. */
function answerAfter<T>(ms: number, value: T, signal?: AbortSignal): Promise<T> {
    return new Promise((resolve, reject) => {
        const t = setTimeout(() => resolve(value), ms);
        const onAbort = () => {
            clearTimeout(t);
            reject(Object.assign(new Error("The operation was aborted"), { name: "AbortError" }));
        };
        if (signal?.aborted) onAbort();
        else signal?.addEventListener("abort", onAbort, { once: true });
    });
}

async function bodyBytes(body: unknown): Promise<Buffer> {
    if (Buffer.isBuffer(body)) return body;
    if (body instanceof Uint8Array) return Buffer.from(body);
    const chunks: Buffer[] = [];
    for await (const c of body as AsyncIterable<Buffer>) chunks.push(Buffer.from(c));
    return Buffer.concat(chunks);
}

/** An S3 object answered as AWS does: If-Match (412), Range (206 + Content-Range; 416 on an empty object). */
function objectStore(data: Buffer, etag = '"v1"') {
    const state = { data, etag, inFlight: 0, maxInFlight: 0, cutShort: new Set<number>() };
    const handle = async (name: string, input: any): Promise<any> => {
        if (name !== "GetObject") throw new Error(`unexpected ${name}`);
        if (input.IfMatch !== undefined && input.IfMatch !== state.etag) throw awsError("PreconditionFailed", 412);
        state.inFlight++;
        state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
        try {
            await tick(2);
            const m = /^bytes=(\d+)-(\d+)$/.exec(input.Range ?? "");
            if (!m) return { Body: Readable.from([state.data]), ContentLength: state.data.length, ETag: state.etag };
            if (state.data.length === 0) throw awsError("InvalidRange", 416);
            const start = Number(m[1]);
            const end = Math.min(Number(m[2]), state.data.length - 1);
            let slice = state.data.subarray(start, end + 1);
            // A connection that drops mid-body, once per offset asked to.
            if (state.cutShort.delete(start)) slice = slice.subarray(0, Math.floor(slice.length / 2));
            return { Body: Readable.from([slice]), ContentLength: end - start + 1, ContentRange: `bytes ${start}-${end}/${state.data.length}`, ETag: state.etag };
        } finally {
            state.inFlight--;
        }
    };
    return { state, handle };
}

describe("transfer.ts: part sizes and space (pure)", function () {
    it("chooses parts of at least 8 MiB so that 10,000 of them hold any object up to S3's 5 TiB", function () {
        expect(uploadPartSize(0)).to.equal(8 * MiB);
        expect(uploadPartSize(2.4e9)).to.equal(8 * MiB);
        expect(uploadPartSize(80 * 1024 * MiB)).to.equal(9 * MiB);
        expect(uploadPartSize(100 * 1024 * MiB)).to.equal(11 * MiB);
        expect(uploadPartSize(S3_MAX_OBJECT_BYTES)).to.equal(525 * MiB);
        for (const size of [1, 8 * MiB * S3_MAX_PARTS, 8 * MiB * S3_MAX_PARTS + 1, 200 * 1024 * MiB, S3_MAX_OBJECT_BYTES]) {
            expect(uploadPartSize(size) * S3_MAX_PARTS, `size ${size}`).to.be.at.least(size);
            expect(uploadPartSize(size) % MiB).to.equal(0);
        }
    });

    it("keeps parts in flight x part size at 64 MiB, one part at least", function () {
        expect(uploadPartsInFlight(8 * MiB)).to.equal(8);
        expect(uploadPartsInFlight(16 * MiB)).to.equal(4);
        expect(uploadPartsInFlight(525 * MiB)).to.equal(1);
    });

    it("a local resource error is permanent: full disk, quota, file too large; too many open files is not", function () {
        for (const code of ["ENOSPC", "EDQUOT", "EFBIG", "ERR_FS_FILE_TOO_LARGE"]) {
            const err = Object.assign(new Error(code), { code });
            expect(localResourceCode(err), code).to.equal(code);
            expect(localResourceCode(new Error("wrapped", { cause: err })), `${code} as a cause`).to.equal(code);
            expect(isTransient(err), code).to.equal(false);
        }
        for (const code of ["EMFILE", "ENFILE", "EIO", "ENOMEM", "ECONNRESET"]) {
            expect(localResourceCode(Object.assign(new Error(code), { code })), code).to.equal(undefined);
        }
    });

    it("ensureScratchSpace refuses what does not fit, naming what, the sizes and ephemeralStorageGiB", async function () {
        const probe: SpaceProbe = async () => ({ free: 5 * 1024 * MiB, total: 20 * 1024 * MiB });
        await ensureScratchSpace("/scratch", 5 * 1024 * MiB, "the input", probe);
        let err: unknown;
        await ensureScratchSpace("/scratch", 5 * 1024 * MiB + 1, "the input s3://b/k", probe).catch((e) => (err = e));
        expect(err).to.be.instanceOf(PermanentError);
        expect((err as Error).message).to.equal(
            "not enough scratch space: the input s3://b/k needs 5368709121 bytes (5.00 GiB), /scratch has 5368709120 bytes (5.00 GiB) free of " +
                "21474836480 bytes (20.00 GiB); give the task more scratch space (the component's ephemeralStorageGiB; WORKER_SCRATCH_DIR's file system elsewhere)",
        );
        // A probe that fails says nothing: the write itself will tell.
        await ensureScratchSpace("/scratch", 1, "x", async () => Promise.reject(new Error("ENOSYS")));
        expect(formatBytes(512)).to.equal("512 bytes");
    });

    it("scratchFailure turns a full disk (the worker's ENOSPC, or a tool saying so) into a permanent reason with the sizes", async function () {
        const probe: SpaceProbe = async () => ({ free: 0, total: 21 * 1024 * MiB });
        const enospc = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
        const a = (await scratchFailure(enospc, "/scratch", probe)) as Error;
        expect(a).to.be.instanceOf(PermanentError);
        expect(a.message).to.equal(
            "scratch space ran out (ENOSPC: no space left on device, write): /scratch has 0 bytes free of 22548578304 bytes (21.00 GiB); " +
                "give the task more scratch space (the component's ephemeralStorageGiB; WORKER_SCRATCH_DIR's file system elsewhere)",
        );
        const tool = new PermanentError("ffmpeg exited with 1: av_interleaved_write_frame(): No space left on device");
        expect(((await scratchFailure(tool, "/scratch", probe)) as Error).message).to.match(/^scratch space ran out \(ffmpeg exited with 1: .*No space left on device\): \/scratch has 0 bytes free/);
        const other = new PermanentError("no scene");
        expect(await scratchFailure(other, "/scratch", probe)).to.equal(other);
        const net = Object.assign(new Error("reset"), { code: "ECONNRESET" });
        expect(await scratchFailure(net, "/scratch", probe)).to.equal(net);
    });
});

describe("transfer.ts: uploadFile against AWS's documented answers (scripted S3)", function () {
    this.timeout(30000);
    let dir: string;
    beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "transfer-up-"))));
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    function file(size: number): { path: string; data: Buffer } {
        const data = randomBytes(size);
        const p = path.join(dir, `f${size}`);
        fs.writeFileSync(p, data);
        return { path: p, data };
    }

    /** AWS's multipart answers: an UploadId, an ETag (and the part's CRC32 when asked for) per part, the object's ETag. */
    function multipartS3(over: Partial<Record<string, (input: any, signal: AbortSignal | undefined, call: Call) => Promise<any>>> = {}) {
        const parts = new Map<number, Buffer>();
        const scripted = scriptedS3(async (name, input, signal, call) => {
            if (over[name]) return over[name]!(input, signal, call);
            switch (name) {
                case "CreateMultipartUpload":
                    return { UploadId: "upload-1", Bucket: input.Bucket, Key: input.Key };
                case "UploadPart":
                    parts.set(input.PartNumber, await bodyBytes(input.Body));
                    return answerAfter(5, { ETag: `"etag-${input.PartNumber}"`, ChecksumCRC32: `crc-${input.PartNumber}` }, signal);
                case "CompleteMultipartUpload":
                    return { ETag: '"whole-3"', Bucket: input.Bucket, Key: input.Key };
                case "AbortMultipartUpload":
                    return {};
                case "PutObject":
                    return { ETag: '"single"' };
            }
            throw new Error(`unexpected ${name}`);
        });
        return { ...scripted, parts };
    }

    it("uploads a file of up to one part with one PutObject (content type, metadata, bytes)", async function () {
        const f = file(UPLOAD_MIN_PART_BYTES);
        const { s3, calls } = multipartS3();
        const out = await uploadFile(s3, { bucket: "b", key: "k.mp4", file: f.path, contentType: "video/mp4", metadata: { "job-id": "j" }, signal: new AbortController().signal });
        expect(out).to.deep.equal({ bytes: UPLOAD_MIN_PART_BYTES, parts: 0, etag: '"single"' });
        expect(calls.map((c) => c.name)).to.deep.equal(["PutObject"]);
        expect(calls[0].input).to.include({ Bucket: "b", Key: "k.mp4", ContentType: "video/mp4" });
        expect(calls[0].input.Metadata).to.deep.equal({ "job-id": "j" });
        expect((await bodyBytes(calls[0].input.Body)).equals(f.data)).to.equal(true);
    });

    it("uploads a bigger file in parts from disk: create (type, metadata, CRC32), the parts in order, complete with each part's ETag", async function () {
        const f = file(2 * UPLOAD_MIN_PART_BYTES + 5);
        const { s3, calls, parts } = multipartS3();
        const rec = recorder();
        const out = await uploadFile(s3, { bucket: "b", key: "k.mp4", file: f.path, contentType: "video/mp4", metadata: { "job-id": "j" }, signal: new AbortController().signal, log: rec.log });
        expect(out).to.deep.equal({ bytes: f.data.length, parts: 3, etag: '"whole-3"' });
        expect(calls.map((c) => c.name).sort()).to.deep.equal(["CompleteMultipartUpload", "CreateMultipartUpload", "UploadPart", "UploadPart", "UploadPart"]);
        const create = calls.find((c) => c.name === "CreateMultipartUpload")!;
        expect(create.input).to.include({ Bucket: "b", Key: "k.mp4", ContentType: "video/mp4", ChecksumAlgorithm: "CRC32" });
        expect(create.input.Metadata).to.deep.equal({ "job-id": "j" });
        expect([...parts.keys()].sort()).to.deep.equal([1, 2, 3]);
        expect(Buffer.concat([1, 2, 3].map((n) => parts.get(n)!)).equals(f.data)).to.equal(true);
        expect(parts.get(1)!.length).to.equal(UPLOAD_MIN_PART_BYTES);
        const complete = calls.find((c) => c.name === "CompleteMultipartUpload")!;
        expect(complete.input.UploadId).to.equal("upload-1");
        expect(complete.input.MultipartUpload.Parts).to.deep.equal([1, 2, 3].map((n) => ({ PartNumber: n, ETag: `"etag-${n}"`, ChecksumCRC32: `crc-${n}` })));
        expect(rec.lines).to.deep.equal([{ event: "multipart_uploaded", key: "k.mp4", bytes: f.data.length, parts: 3, partSize: UPLOAD_MIN_PART_BYTES }]);
    });

    it("a failed part stops the other parts, and the upload is aborted once every part request has ended", async function () {
        const f = file(30 * MiB);
        const { s3, calls } = multipartS3({
            UploadPart: async (input, signal) => {
                if (input.PartNumber === 2) throw awsError("InvalidArgument", 400);
                return answerAfter(50, { ETag: `"etag-${input.PartNumber}"` }, signal);
            },
        });
        const rec = recorder();
        let err: any;
        await uploadFile(s3, { bucket: "b", key: "k.bin", file: f.path, signal: new AbortController().signal, partSize: 5 * MiB, partsInFlight: 2, log: rec.log }).catch((e) => (err = e));
        expect(err?.name).to.equal("InvalidArgument");
        const partCalls = calls.filter((c) => c.name === "UploadPart");
        // Parts 3-6 are never sent.
        expect(partCalls.map((c) => c.input.PartNumber).sort()).to.deep.equal([1, 2]);
        expect(partCalls.every((c) => c.signal?.aborted)).to.equal(true);
        const aborts = calls.filter((c) => c.name === "AbortMultipartUpload");
        expect(aborts.map((c) => c.input)).to.deep.equal([{ Bucket: "b", Key: "k.bin", UploadId: "upload-1" }]);
        expect(aborts[0].start).to.be.at.least(Math.max(...partCalls.map((c) => c.end!)));
        expect(calls.some((c) => c.name === "CompleteMultipartUpload")).to.equal(false);
        expect(rec.lines.find((l) => l.event === "multipart_aborted")).to.deep.include({ key: "k.bin", uploadId: "upload-1", reason: "InvalidArgument (400)" });
    });

    it("the caller's abort cancels the parts in flight and aborts the upload before returning (AbortedError)", async function () {
        const f = file(30 * MiB);
        const ac = new AbortController();
        const { s3, calls } = multipartS3({
            // A part answers only when aborted: the caller aborts while two are in flight.
            UploadPart: async (_input, signal) => {
                if (calls.filter((c) => c.name === "UploadPart").length === 2) setTimeout(() => ac.abort(), 5);
                return answerAfter(60000, {}, signal);
            },
        });
        let err: unknown;
        await uploadFile(s3, { bucket: "b", key: "k.bin", file: f.path, signal: ac.signal, partSize: 5 * MiB, partsInFlight: 2 }).catch((e) => (err = e));
        expect(err).to.be.instanceOf(AbortedError);
        const partCalls = calls.filter((c) => c.name === "UploadPart");
        expect(partCalls).to.have.length(2);
        expect(partCalls.every((c) => c.outcome === "error" && c.signal?.aborted)).to.equal(true);
        const abort = calls.find((c) => c.name === "AbortMultipartUpload")!;
        expect(abort.input.UploadId).to.equal("upload-1");
        expect(abort.end, "answered before uploadFile returned").to.not.equal(undefined);
        expect(abort.start).to.be.at.least(Math.max(...partCalls.map((c) => c.end!)));
    });

    it("an abort while the upload is being created still aborts it (CreateMultipartUpload is never cancelled)", async function () {
        const f = file(12 * MiB);
        const ac = new AbortController();
        const { s3, calls } = multipartS3({
            CreateMultipartUpload: async (input) => {
                ac.abort();
                await tick(20);
                return { UploadId: "late-1", Bucket: input.Bucket, Key: input.Key };
            },
        });
        let err: unknown;
        await uploadFile(s3, { bucket: "b", key: "k.bin", file: f.path, signal: ac.signal, partSize: 5 * MiB }).catch((e) => (err = e));
        expect(err).to.be.instanceOf(AbortedError);
        expect(calls.find((c) => c.name === "CreateMultipartUpload")!.signal).to.equal(undefined);
        expect(calls.filter((c) => c.name === "AbortMultipartUpload").map((c) => c.input.UploadId)).to.deep.equal(["late-1"]);
    });

    it("AbortMultipartUpload is retried on 5xx and a NoSuchUpload answer counts as done", async function () {
        const f = file(12 * MiB);
        let aborts = 0;
        const { s3 } = multipartS3({
            UploadPart: async () => Promise.reject(awsError("InvalidArgument", 400)),
            AbortMultipartUpload: async () => {
                aborts++;
                throw aborts === 1 ? awsError("ServiceUnavailable", 503) : awsError("NoSuchUpload", 404);
            },
        });
        const rec = recorder();
        let err: any;
        await uploadFile(s3, { bucket: "b", key: "k.bin", file: f.path, signal: new AbortController().signal, partSize: 5 * MiB, log: rec.log }).catch((e) => (err = e));
        expect(err?.name).to.equal("InvalidArgument");
        expect(aborts).to.equal(2);
        expect(rec.lines.find((l) => l.event === "multipart_aborted")).to.deep.include({ already: true });
    });

    it("refuses a file over S3's 5 TiB object limit before sending anything", async function () {
        const p = path.join(dir, "huge");
        fs.writeFileSync(p, "");
        let sparse = true;
        try {
            fs.truncateSync(p, S3_MAX_OBJECT_BYTES + 1); // sparse
        } catch {
            sparse = false;
        }
        requirePrerequisite(this, sparse, "a file system that holds a sparse file over 5 TiB");
        const { s3, calls } = multipartS3();
        let err: unknown;
        await uploadFile(s3, { bucket: "b", key: "k.bin", file: p, signal: new AbortController().signal }).catch((e) => (err = e));
        expect(err).to.be.instanceOf(PermanentError);
        expect((err as Error).message).to.equal("output k.bin is 5497558138881 bytes (5.00 TiB), more than S3's object size limit of 5497558138880 bytes (5.00 TiB)");
        expect(calls).to.have.length(0);
    });
});

describe("transfer.ts: downloadFile against AWS's documented answers (scripted S3)", function () {
    this.timeout(30000);
    let dir: string;
    beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "transfer-down-"))));
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
    const live = () => new AbortController().signal;

    it("gets an object up to the threshold with one GET (one stream), asking for the bound version", async function () {
        const data = randomBytes(100);
        const store = objectStore(data);
        const { s3, calls } = scriptedS3((n, i) => store.handle(n, i));
        const dest = path.join(dir, "out");
        const out = await downloadFile(s3, { bucket: "b", key: "k", etag: "v1", file: dest, maxBytes: 1000, signal: live(), threshold: 100, partSize: 30 });
        expect(out).to.deep.equal({ etag: '"v1"', bytes: 100, requests: 1 });
        expect(calls.map((c) => c.input)).to.deep.equal([{ Bucket: "b", Key: "k", IfMatch: '"v1"', Range: "bytes=0-99" }]);
        expect(fs.readFileSync(dest).equals(data)).to.equal(true);
        expect(fs.statSync(dest).mode & 0o777).to.equal(0o600);
    });

    it("gets a bigger object as ranged GETs written at their offsets, a bounded number at a time, each bound to the first answer's ETag", async function () {
        const data = randomBytes(250);
        const store = objectStore(data, '"first"');
        const { s3, calls } = scriptedS3((n, i) => store.handle(n, i));
        const dest = path.join(dir, "out");
        const rec = recorder();
        const out = await downloadFile(s3, { bucket: "b", key: "k", file: dest, maxBytes: 1000, signal: live(), threshold: 100, partSize: 30, concurrency: 3, log: rec.log });
        expect(out).to.deep.equal({ etag: '"first"', bytes: 250, requests: 6 });
        expect(fs.readFileSync(dest).equals(data)).to.equal(true);
        expect(calls[0].input).to.deep.equal({ Bucket: "b", Key: "k", Range: "bytes=0-99" });
        expect(calls.slice(1).map((c) => c.input.Range)).to.deep.equal(["bytes=100-129", "bytes=130-159", "bytes=160-189", "bytes=190-219", "bytes=220-249"]);
        expect(calls.slice(1).every((c) => c.input.IfMatch === '"first"')).to.equal(true);
        expect(store.state.maxInFlight).to.be.at.most(3);
        expect(rec.lines.find((l) => l.event === "ranged_download")).to.deep.include({ bytes: 250, requests: 6 });
    });

    it("an object replaced during the download fails with the 412 (the caller's stale input)", async function () {
        const store = objectStore(randomBytes(250));
        const { s3 } = scriptedS3(async (n, i) => {
            const out = await store.handle(n, i);
            store.state.etag = '"v2"'; // a newer upload lands after the first answer
            return out;
        });
        let err: unknown;
        await downloadFile(s3, { bucket: "b", key: "k", file: path.join(dir, "out"), maxBytes: 1000, signal: live(), threshold: 100, partSize: 30 }).catch((e) => (err = e));
        expect(isPreconditionFailed(err)).to.equal(true);
    });

    it("refuses an object over MAX_INPUT_BYTES, or one the free-space check refuses, before writing anything", async function () {
        const store = objectStore(randomBytes(250));
        const { s3 } = scriptedS3((n, i) => store.handle(n, i));
        const dest = path.join(dir, "out");
        const sizes: number[] = [];
        let err: unknown;
        await downloadFile(s3, { bucket: "b", key: "k", file: dest, maxBytes: 249, beforeWrite: (s) => void sizes.push(s), signal: live(), threshold: 100 }).catch((e) => (err = e));
        expect(err).to.be.instanceOf(PermanentError);
        expect((err as Error).message).to.equal("input is 250 bytes, more than MAX_INPUT_BYTES=249");
        expect(sizes).to.deep.equal([]);
        const refusal = new PermanentError("no room");
        err = undefined;
        await downloadFile(s3, { bucket: "b", key: "k", file: dest, maxBytes: 250, beforeWrite: (s) => (sizes.push(s), Promise.reject(refusal)), signal: live(), threshold: 100 }).catch((e) => (err = e));
        expect(err).to.equal(refusal);
        expect(sizes).to.deep.equal([250]);
        expect(fs.existsSync(dest)).to.equal(false);
    });

    it("retries a range whose connection dropped mid-body", async function () {
        const data = randomBytes(250);
        const store = objectStore(data);
        store.state.cutShort.add(130);
        const { s3, calls } = scriptedS3((n, i) => store.handle(n, i));
        const dest = path.join(dir, "out");
        await downloadFile(s3, { bucket: "b", key: "k", file: dest, maxBytes: 1000, signal: live(), threshold: 100, partSize: 30 });
        expect(fs.readFileSync(dest).equals(data)).to.equal(true);
        expect(calls.filter((c) => c.input.Range === "bytes=130-159")).to.have.length(2);
    });

    it("gets an empty object (S3 answers a range of it with 416 InvalidRange)", async function () {
        const store = objectStore(Buffer.alloc(0));
        const { s3, calls } = scriptedS3((n, i) => store.handle(n, i));
        const dest = path.join(dir, "out");
        expect(await downloadFile(s3, { bucket: "b", key: "k", etag: '"v1"', file: dest, maxBytes: 10, signal: live() })).to.deep.equal({ etag: '"v1"', bytes: 0, requests: 1 });
        expect(calls.map((c) => c.input)).to.deep.equal([
            { Bucket: "b", Key: "k", IfMatch: '"v1"', Range: `bytes=0-${64 * MiB - 1}` },
            { Bucket: "b", Key: "k", IfMatch: '"v1"' },
        ]);
        expect(fs.statSync(dest).size).to.equal(0);
    });
});

describe("transfer.ts against moto_server", function () {
    this.timeout(120000);
    let moto: Moto;
    let s3: S3Client;
    let dir: string;
    const bucket = "transfer-test";

    before(async function () {
        moto = await startMoto();
        s3 = new S3Client({ ...motoClientConfig(moto.endpoint), forcePathStyle: true });
        await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    });
    after(async () => moto?.stop());
    beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "transfer-moto-"))));
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    const uploads = async () => (await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];

    it("a multipart upload stores the exact bytes with their content type and metadata; nothing is left in progress", async function () {
        const data = randomBytes(2 * UPLOAD_MIN_PART_BYTES + 123);
        fs.writeFileSync(path.join(dir, "f"), data);
        const out = await uploadFile(s3, { bucket, key: "out/a.mp4", file: path.join(dir, "f"), contentType: "video/mp4", metadata: { "job-id": "j1" }, signal: new AbortController().signal });
        expect(out.parts).to.equal(3);
        const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "out/a.mp4" }));
        expect(head).to.deep.include({ ContentLength: data.length, ContentType: "video/mp4" });
        expect(head.Metadata).to.deep.equal({ "job-id": "j1" });
        const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "out/a.mp4" }));
        expect(Buffer.from(await got.Body!.transformToByteArray()).equals(data)).to.equal(true);
        expect(await uploads()).to.deep.equal([]);
    });

    it("an abort during a multipart upload leaves no incomplete upload behind (ListMultipartUploads is empty)", async function () {
        fs.writeFileSync(path.join(dir, "f"), randomBytes(4 * UPLOAD_MIN_PART_BYTES));
        const ac = new AbortController();
        // Abort once the first part has reached moto: the upload exists there by then.
        const watched = new Proxy(s3, {
            get: (target, prop) =>
                prop === "send"
                    ? async (cmd: unknown, opts: unknown) => {
                          const out = await (target.send as (c: unknown, o: unknown) => Promise<unknown>)(cmd, opts);
                          if (cmd instanceof UploadPartCommand) ac.abort();
                          return out;
                      }
                    : Reflect.get(target, prop),
        });
        const rec = recorder();
        let err: unknown;
        await uploadFile(watched, { bucket, key: "out/aborted.mp4", file: path.join(dir, "f"), signal: ac.signal, partsInFlight: 1, log: rec.log }).catch((e) => (err = e));
        expect(err).to.be.instanceOf(AbortedError);
        expect(rec.lines.map((l) => l.event)).to.deep.equal(["multipart_aborted"]);
        expect(await uploads()).to.deep.equal([]);
        let missing: any;
        await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "out/aborted.mp4" })).catch((e) => (missing = e));
        expect(missing?.$metadata?.httpStatusCode).to.equal(404);
    });

    it("ranged GETs with If-Match bring down the exact bytes; a stale ETag is a 412", async function () {
        const data = randomBytes(5 * MiB + 7);
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "in/big.bin", Body: data }));
        const dest = path.join(dir, "in");
        const out = await downloadFile(s3, { bucket, key: "in/big.bin", file: dest, maxBytes: 1e9, signal: new AbortController().signal, threshold: 2 * MiB, partSize: MiB, concurrency: 3 });
        expect(out.requests).to.equal(5);
        expect(createHash("sha256").update(fs.readFileSync(dest)).digest("hex")).to.equal(createHash("sha256").update(data).digest("hex"));
        let err: unknown;
        await downloadFile(s3, { bucket, key: "in/big.bin", etag: "0123", file: dest, maxBytes: 1e9, signal: new AbortController().signal, threshold: 2 * MiB }).catch((e) => (err = e));
        expect(isPreconditionFailed(err)).to.equal(true);
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "in/empty.bin", Body: Buffer.alloc(0) }));
        expect((await downloadFile(s3, { bucket, key: "in/empty.bin", file: dest, maxBytes: 10, signal: new AbortController().signal })).bytes).to.equal(0);
    });
});

describe("job.ts with transfer.ts: scratch space, big outputs", function () {
    this.timeout(30000);
    let scratch: string;
    let cfg: JobConfig;
    let rec: ReturnType<typeof recorder>;
    beforeEach(function () {
        scratch = fs.mkdtempSync(path.join(os.tmpdir(), "transfer-job-"));
        cfg = {
            scratchDir: scratch,
            inputPrefix: "",
            outputPrefix: "",
            maxInputBytes: 100 * MiB,
            maxUnzippedBytes: 100 * MiB,
            maxZipEntries: 10,
            jobTimeoutSeconds: 5,
            outputSuffixes: [".mp4", ".log"],
        };
        rec = recorder();
    });
    afterEach(() => fs.rmSync(scratch, { recursive: true, force: true }));

    /** A processor that writes `size` bytes as its .mp4 (or fails as `fail` says), counting its runs. */
    function writer(size: number, fail?: () => Error): Processor & { runs: number } {
        const p = {
            name: "writer",
            runs: 0,
            async process(i: { workDir: string }) {
                p.runs++;
                if (fail) throw fail();
                const out = path.join(i.workDir, "out.mp4");
                fs.writeFileSync(out, Buffer.alloc(size, 7));
                return { seconds: 0.1, outputs: [{ suffix: ".mp4", path: out, contentType: "video/mp4" }] };
            },
        };
        return p;
    }

    /** S3 for one job: the input (ETag "e"), outputs recorded, multipart answered as AWS does. */
    function jobS3(input: Buffer) {
        const store = objectStore(input, '"e"');
        return scriptedS3(async (name, i) => {
            switch (name) {
                case "GetObject":
                    return store.handle(name, i);
                case "HeadObject":
                    return { ETag: '"e"' };
                case "DeleteObject":
                case "AbortMultipartUpload":
                    return {};
                case "PutObject":
                    return { ETag: '"o"' };
                case "CreateMultipartUpload":
                    return { UploadId: "u1" };
                case "UploadPart":
                    return { ETag: `"p${i.PartNumber}"` };
                case "CompleteMultipartUpload":
                    return { ETag: '"o-2"' };
            }
            throw new Error(`unexpected ${name}`);
        });
    }

    const run = (s3: S3Client, p: Processor, space?: SpaceProbe, key = "in/clip.mov"): Promise<Outcome> =>
        new JobRunner(cfg, { s3, processor: p, log: rec.log, space }).runJob({ bucket: "b", key }, new AbortController().signal, 1);

    it("an input bigger than the scratch space fails permanently before the download, naming the sizes and ephemeralStorageGiB", async function () {
        const { s3, calls } = jobS3(randomBytes(3000));
        const p = writer(10);
        const outcome = await run(s3, p, async () => ({ free: 2000, total: 4096 }));
        expect(outcome.status).to.equal("permanent");
        expect((outcome as { reason: string }).reason).to.equal(
            `not enough scratch space: the input s3://b/in/clip.mov (3000 bytes (2.93 KiB)) needs 3000 bytes (2.93 KiB), ${scratch} has 2000 bytes (1.95 KiB) free of ` +
                "4096 bytes (4.00 KiB); give the task more scratch space (the component's ephemeralStorageGiB; WORKER_SCRATCH_DIR's file system elsewhere)",
        );
        expect(p.runs).to.equal(0);
        expect(calls.map((c) => c.name)).to.deep.equal(["GetObject"]);
    });

    it("a zip whose entries need more than the free space fails permanently before unpacking", async function () {
        const zip = await makeZip([{ name: "clip.pov", data: Buffer.alloc(50000, 1) }]);
        const { s3 } = jobS3(zip);
        const p = writer(10);
        // Room for the zip, not for what it unpacks to.
        const outcome = await run(s3, p, async () => ({ free: zip.length + 1000, total: 1e6 }), "in/clip.zip");
        expect(outcome.status).to.equal("permanent");
        expect((outcome as { reason: string }).reason).to.match(/^not enough scratch space: unpacking the input \(50000 bytes \(48\.83 KiB\) unzipped\) needs 50000 bytes .* free of .*ephemeralStorageGiB/);
        expect(p.runs).to.equal(0);
    });

    it("running out of space is permanent: the worker's own ENOSPC, and a tool that says so; nothing is uploaded", async function () {
        // Room for the input; none left once the job has run out.
        let probes = 0;
        const space: SpaceProbe = async () => ({ free: probes++ === 0 ? 1e9 : 0, total: 21 * 1024 * MiB });
        const enospc = () => Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", errno: -28, syscall: "write" });
        for (const [what, fail] of [
            ["ENOSPC", enospc],
            ["a tool", () => new PermanentError("ffmpeg exited with 1: No space left on device")],
        ] as const) {
            const { s3, calls } = jobS3(randomBytes(10));
            probes = 0;
            const outcome = await run(s3, writer(10, fail), space);
            expect(outcome.status, what).to.equal("permanent");
            expect((outcome as { reason: string }).reason, what).to.match(/^scratch space ran out \(.*[Nn]o space left on device.*\): .* has 0 bytes free of 22548578304 bytes \(21\.00 GiB\); give the task more scratch space \(the component's ephemeralStorageGiB/);
            expect(calls.filter((c) => !["GetObject", "HeadObject"].includes(c.name)), what).to.deep.equal([]);
        }
    });

    it("uploads an output bigger than a part as a multipart upload with the job's metadata", async function () {
        const { s3, calls } = jobS3(randomBytes(10));
        const outcome = await run(s3, writer(UPLOAD_MIN_PART_BYTES + 1), async () => ({ free: 1e12, total: 1e12 }));
        expect(outcome.status).to.equal("ok");
        const create = calls.find((c) => c.name === "CreateMultipartUpload")!;
        expect(create.input).to.include({ Bucket: "b", Key: "in/clip.mp4", ContentType: "video/mp4" });
        expect(create.input.Metadata).to.include({ "source-etag": "%22e%22", processor: "writer" });
        expect(calls.filter((c) => c.name === "UploadPart")).to.have.length(2);
        expect(calls.filter((c) => c.name === "DeleteObject").map((c) => c.input.Key)).to.deep.equal(["in/clip.error.json"]);
        expect(rec.lines.find((l) => l.event === "uploaded")).to.deep.include({ key: "in/clip.mp4", bytes: UPLOAD_MIN_PART_BYTES + 1, parts: 2 });
        expect(outcome.stats?.bytesOut).to.equal(UPLOAD_MIN_PART_BYTES + 1);
    });
});
