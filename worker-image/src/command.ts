/**
 * The command processor: runs the tool named by WORKER_COMMAND on each job, so that a new worker needs a Dockerfile
 * (FROM the runtime base image, install the tool, set WORKER_COMMAND) and no TypeScript.
 *
 * WORKER_COMMAND is a JSON argv, e.g. `["ogr2ogr", "-f", "GPKG", "{outputDir}/{jobName}.gpkg", "{input}"]`; it runs
 * without a shell (no globbing, no redirection, no variables), in its own process group, with the job's hard timeout
 * and the abort on SIGTERM of the POV-Ray processor (run-process.ts), cwd = the input dir. Placeholders, replaced
 * anywhere inside an argument:
 *   {input}      the input: the downloaded file, or the directory a `.zip` was unpacked into (absolute path);
 *   {inputDir}   the directory holding the input (absolute);
 *   {outputDir}  an empty directory for the outputs (absolute): the only place anything is uploaded from;
 *   {jobName}    the input key's file name without its extension (untrusted: may contain spaces or start with "-").
 * The tool gets PATH, HOME and TMPDIR (both inside the job's private work dir, removed with it) and the variables
 * WORKER_COMMAND_ENV names (comma-separated), nothing else of the worker's environment (no queue URLs, no AWS
 * credentials endpoint).
 *
 * Exit 0: each regular file directly in {outputDir} whose name ends in a declared output suffix (OUTPUT_SUFFIXES, the
 * longest match) is uploaded as `<base><suffix>`; anything else there (other names, directories, symlinks, a second
 * file for the same suffix) is ignored and logged; no output at all is a permanent failure. `.log` is the job's log:
 * the tool's stdout and stderr. Non-zero exit (or killed by a signal): permanent failure whose reason is the tail of
 * its stderr. Past the timeout: JobTimeoutError, as for POV-Ray.
 */
import * as fs from "fs";
import * as path from "path";
import { AbortedError, JobTimeoutError, PermanentError } from "./errors";
import { Processor, ProcessorInput, ProcessorOutput, ProcessorResult } from "./processor";
import { runProcess, tail } from "./run-process";

/** The placeholders WORKER_COMMAND may use. */
export const PLACEHOLDERS = ["input", "inputDir", "outputDir", "jobName"] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];

/** The suffix of the job's log (the tool's stdout and stderr), uploaded when declared. */
export const LOG_SUFFIX = ".log";

/** Lines of stderr in a failure reason. */
export const REASON_LINES = 15;

const CONTENT_TYPES: Record<string, string> = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mp3": "audio/mpeg",
    ".json": "application/json",
    ".geojson": "application/geo+json",
    ".gpkg": "application/geopackage+sqlite3",
    ".pdf": "application/pdf",
    ".zip": "application/zip",
    ".csv": "text/csv; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".log": "text/plain; charset=utf-8",
};

/** Content type of an output by the last extension of its suffix (`.summary.json` → JSON); else octet-stream. */
export function contentTypeFor(suffix: string): string {
    const ext = /\.[^.]+$/.exec(suffix)?.[0].toLowerCase() ?? "";
    return CONTENT_TYPES[ext] ?? "application/octet-stream";
}

/** Parses WORKER_COMMAND: a JSON array of strings, the first non-empty; only known `{placeholders}`. */
export function parseCommand(value: string | undefined): string[] {
    const usage = `WORKER_COMMAND must be a JSON array of strings (program first), e.g. ["ogrinfo","{input}"]`;
    if (value === undefined || value.trim() === "") throw new Error(`${usage}; it is not set`);
    let argv: unknown;
    try {
        argv = JSON.parse(value);
    } catch {
        throw new Error(`${usage}, got ${JSON.stringify(value)}`);
    }
    if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== "string") || argv[0] === "") {
        throw new Error(`${usage}, got ${JSON.stringify(value)}`);
    }
    for (const arg of argv as string[]) {
        for (const m of arg.matchAll(/\{(\w+)\}/g)) {
            if (!(PLACEHOLDERS as readonly string[]).includes(m[1])) {
                throw new Error(`WORKER_COMMAND: unknown placeholder {${m[1]}} in ${JSON.stringify(arg)}; known: ${PLACEHOLDERS.map((p) => `{${p}}`).join(", ")}`);
            }
        }
    }
    return argv as string[];
}

/** The argv with every placeholder replaced (no shell ever sees it: values need no quoting). */
export function substitute(argv: string[], values: Record<Placeholder, string>): string[] {
    return argv.map((arg) => arg.replace(/\{(\w+)\}/g, (whole, name: string) => (name in values ? values[name as Placeholder] : whole)));
}

/** The declared suffix `name` ends in (the longest), if any. */
export function matchSuffix(name: string, suffixes: string[]): string | undefined {
    return [...suffixes].sort((a, b) => b.length - a.length).find((s) => name.endsWith(s));
}

export interface OutputSelection {
    outputs: ProcessorOutput[];
    ignored: Array<{ name: string; reason: string }>;
}

/**
 * What the tool left in `outputDir`: one output per declared suffix (except `.log`, the job's log), from the regular
 * files directly in it; everything else ignored, with why.
 */
export async function selectOutputs(outputDir: string, suffixes: string[]): Promise<OutputSelection> {
    const candidates = suffixes.filter((s) => s !== LOG_SUFFIX);
    const entries = (await fs.promises.readdir(outputDir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    const bySuffix = new Map<string, string>();
    const ignored: OutputSelection["ignored"] = [];
    for (const e of entries) {
        const suffix = matchSuffix(e.name, candidates);
        if (!e.isFile()) ignored.push({ name: e.name, reason: e.isSymbolicLink() ? "a symbolic link" : "not a regular file" });
        else if (suffix === undefined) {
            const why = e.name.endsWith(LOG_SUFFIX) && suffixes.includes(LOG_SUFFIX) ? "the job's .log is the tool's stdout and stderr" : "no declared output suffix";
            ignored.push({ name: e.name, reason: `${why} (${suffixes.join(", ")})` });
        } else if (bySuffix.has(suffix)) ignored.push({ name: e.name, reason: `a second file ending in ${suffix} (${bySuffix.get(suffix)} is uploaded)` });
        else bySuffix.set(suffix, e.name);
    }
    const outputs = [...bySuffix].map(([suffix, name]) => ({ suffix, path: path.join(outputDir, name), contentType: contentTypeFor(suffix) }));
    return { outputs, ignored };
}

export interface CommandOptions {
    /** The argv (see parseCommand); argv[0] is looked up on PATH. */
    argv: string[];
    /** The declared output suffixes (OUTPUT_SUFFIXES). */
    outputSuffixes: string[];
    /** Extra environment for the tool (WORKER_COMMAND_ENV's variables). */
    env?: Record<string, string>;
    /** Name in logs, metadata and error reports. Default: "command". */
    name?: string;
}

/** The variables WORKER_COMMAND_ENV names (comma-separated), from `env`. */
export function commandEnv(env: Record<string, string | undefined>): Record<string, string> {
    const names = (env.WORKER_COMMAND_ENV ?? "").split(",").map((n) => n.trim()).filter((n) => n !== "");
    return Object.fromEntries(names.flatMap((n) => (env[n] !== undefined ? [[n, env[n] as string]] : [])));
}

export class CommandProcessor implements Processor {
    readonly name: string;
    private readonly argv: string[];
    private readonly suffixes: string[];
    private readonly env: Record<string, string>;

    constructor(opts: CommandOptions) {
        this.argv = opts.argv;
        this.suffixes = opts.outputSuffixes;
        this.env = opts.env ?? {};
        this.name = opts.name ?? "command";
    }

    async process(input: ProcessorInput): Promise<ProcessorResult> {
        const { log } = input;
        const outputDir = path.join(input.workDir, "out");
        const home = path.join(input.workDir, "home");
        await fs.promises.mkdir(outputDir, { mode: 0o700 });
        await fs.promises.mkdir(home, { mode: 0o700 });
        const [bin, ...args] = substitute(this.argv, {
            input: input.inputPath,
            inputDir: input.inputDir,
            outputDir,
            jobName: input.baseName,
        });
        log("command", { key: input.sourceKey, argv: [bin, ...args] });

        const started = process.hrtime.bigint();
        let run;
        try {
            run = await runProcess(bin, args, input.inputDir, input.timeoutMs, input.signal, { ...this.env, HOME: home, TMPDIR: home });
        } catch (err) {
            // The program is missing or not executable: the image is broken, not the input; every job fails the same.
            throw new PermanentError((err as Error).message);
        }
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const logPath = path.join(input.workDir, "job.log");
        await fs.promises.writeFile(logPath, run.output);
        if (run.aborted) throw new AbortedError();
        if (run.timedOut) throw new JobTimeoutError(`${path.basename(bin)} timed out after ${input.timeoutMs / 1000} s`);
        if (run.code !== 0) {
            throw new PermanentError(`${path.basename(bin)} exited with ${run.signal ?? run.code}: ${tail(run.stderr, REASON_LINES) || "(nothing on stderr)"}`);
        }
        const { outputs, ignored } = await selectOutputs(outputDir, this.suffixes);
        for (const i of ignored) log("output_ignored", { key: input.sourceKey, file: i.name, reason: i.reason });
        if (outputs.length === 0) {
            const wrote = ignored.length ? `; it wrote ${ignored.map((i) => i.name).slice(0, 10).join(", ")}` : "";
            const want = this.suffixes.filter((s) => s !== LOG_SUFFIX).join(", ");
            throw new PermanentError(`${path.basename(bin)} wrote no output ending in ${want} to its output dir${wrote}`);
        }
        log("processed", { key: input.sourceKey, seconds: Number(seconds.toFixed(3)), outputs: outputs.map((o) => o.suffix) });
        if (this.suffixes.includes(LOG_SUFFIX)) outputs.push({ suffix: LOG_SUFFIX, path: logPath, contentType: contentTypeFor(LOG_SUFFIX) });
        return { seconds, outputs };
    }
}
