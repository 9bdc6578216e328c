/**
 * The jobs of one `npm run local`: one per input file, its key in the bucket and the output keys the worker writes;
 * and the book that settles each job exactly once (done with its PNG, or failed with a reason).
 */
import * as path from "path";

import { outputKeys } from "../../worker-image/src/keys";
import { Counts, JobResult } from "./progress";

export interface Job {
    name: string;
    input: string;
    key: string;
    /** The primary output's key: the first declared output suffix's (the PNG for POV-Ray). */
    png: string;
    /** Every declared output's key (the job is done once all exist), `png` first. */
    outputs: string[];
    error: string;
    uploadedAt: number;
    result?: JobResult;
}

export interface KeyOptions {
    inputPrefix: string;
    outputPrefix: string;
    /** The worker's declared outputs (its OUTPUT_SUFFIXES). Default: the PNG only. */
    outputSuffixes?: string[];
}

/**
 * One job per input: named after the file (`-2`, `-3`... when two names differ only in case, since keys would clash
 * on a case-insensitive file system), uploaded under the input prefix, with the PNG and error keys the worker writes.
 */
export function planJobs(inputs: string[], keyOpts: KeyOptions): Job[] {
    const jobs: Job[] = [];
    const used = new Set<string>();
    for (const input of inputs) {
        const ext = path.extname(input);
        const stem = path.basename(input, ext);
        let name = stem;
        for (let i = 2; used.has(name.toLowerCase()); i++) name = `${stem}-${i}`;
        used.add(name.toLowerCase());
        const key = `${keyOpts.inputPrefix}${name}${ext}`;
        const k = outputKeys(key, keyOpts);
        const outputs = (keyOpts.outputSuffixes ?? [".png"]).map((s) => k.base + s);
        jobs.push({ name, input, key, png: outputs[0], outputs, error: k.error, uploadedAt: 0 });
    }
    return jobs;
}

/** Why a key never reaches the launcher (the bucket notification's suffix filters), or undefined when it does. */
export function notAJobReason(key: string, suffixes: string[]): string | undefined {
    if (suffixes.some((sfx) => key.endsWith(sfx))) return undefined;
    return `not a job: the bucket notification only fires for keys ending in ${suffixes.join(", ")}`;
}

/** A file's path relative to `cwd` when it lies below it, else the absolute path. */
export function displayPath(file: string, cwd = process.cwd()): string {
    const rel = path.relative(cwd, file);
    return rel.startsWith("..") || rel === "" ? file : rel;
}

export type JobCounts = Pick<Counts, "total" | "done" | "failed" | "running" | "queued">;

/** Done / failed / running / queued: a pending job counts as running while the queue has messages in flight. */
export function jobCounts(jobs: Job[], inFlight: number): JobCounts {
    const done = jobs.filter((j) => j.result?.status === "done").length;
    const failed = jobs.filter((j) => j.result?.status === "failed").length;
    const pending = jobs.length - done - failed;
    const running = Math.min(pending, inFlight);
    return { total: jobs.length, done, failed, running, queued: pending - running };
}

/** The jobs of the run, each settled once; every settlement is logged. */
export class JobBook {
    readonly byKey: Map<string, Job>;

    constructor(
        readonly jobs: Job[],
        private readonly log: (line: string) => void,
        private readonly now: () => number = Date.now,
    ) {
        this.byKey = new Map(jobs.map((j) => [j.key, j]));
    }

    /** Jobs not settled yet. */
    pending(): Job[] {
        return this.jobs.filter((j) => !j.result);
    }

    settled(): boolean {
        return this.jobs.every((j) => j.result);
    }

    /** Settles a job (no-op when it already is); its seconds count from its upload. */
    finish(j: Job, status: "done" | "failed", output?: string, reason?: string): void {
        if (j.result) return;
        j.result = { job: j.name, input: j.input, status, output, reason, seconds: (this.now() - j.uploadedAt) / 1000 };
        this.log(status === "done" ? `done    ${j.name} → ${output}` : `failed  ${j.name}: ${reason}`);
    }

    /** Fails a job before it is uploaded (0 seconds). */
    reject(j: Job, reason: string): void {
        if (j.result) return;
        j.result = { job: j.name, input: j.input, status: "failed", reason, seconds: 0 };
        this.log(`failed  ${j.name}: ${reason}`);
    }

    /** Fails every job still pending with the same reason (timed out, interrupted). */
    failPending(reason: string): void {
        for (const j of this.pending()) this.finish(j, "failed", undefined, reason);
    }

    results(): JobResult[] {
        return this.jobs.map((j) => j.result!);
    }
}
