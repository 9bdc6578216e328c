/**
 * The POV-Ray processor: finds the scene in the unpacked job, sanitises the (untrusted) INI, renders one PNG frame
 * with a hard timeout, never through a shell.
 *
 * Scene discovery (top level of the zip; a zip holding a single top-level folder is looked into instead; macOS
 * clutter — `__MACOSX/`, `.DS_Store`, `._*` — is ignored):
 *   1. `<base>.ini` where base is the zip's name without extension (as the original seed scripts did), else
 *   2. exactly one `.pov` file, rendered with default settings (800x600, like the distribution's povray.ini), else
 *   3. PermanentError "no scene: expected <base>.ini or exactly one .pov at the top level, found ...".
 *
 * The INI (at most MAX_INI_BYTES) is parsed by ./ini.ts the way POV-Ray reads it (`Key=Value` lines and command-line
 * switch lines such as `+W1920 +H1080`); only whitelisted options are passed on. A whitelisted option with a value
 * out of range fails the job (PermanentError naming the INI, the key or switch, the value and the allowed range);
 * every other option (shell-out `*_Command` keys, Library_Path, Output_File_Name, Include_Ini, `+O`, `+L`, `+HI`,
 * redirections, sections, unknown switches, ...) is dropped and logged.
 * POV-Ray then reads a generated INI from the job's private work dir; POVINI points at it so that a `povray.ini`
 * shipped in the zip (POV-Ray reads ./povray.ini by default) is never read.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AbortedError, JobTimeoutError, PermanentError } from "./errors";
import { DEFAULT_MAX_DIMENSION, SanitizedIni, sanitizeIni } from "./ini";
import { Logger } from "./log";
import { Processor, ProcessorInput, ProcessorResult } from "./processor";
import { runProcess, tail } from "./run-process";

export interface PovrayOptions {
    /** povray executable. Default: $POVRAY_BIN or "povray" on PATH. */
    bin?: string;
    /** Render threads (+WT). Default: os.cpus().length. */
    threads?: number;
    /** Read-only directory of POV-Ray's standard include files (colors.inc, ...) added after the job's own dir. */
    includeDir?: string | null;
    /** Largest Width/Height accepted from an INI. */
    maxDimension?: number;
}

export { DEFAULT_MAX_DIMENSION, SWITCHES, iniWhitelist, matchSwitch, sanitizeIni } from "./ini";
export type { SanitizedIni } from "./ini";

/** At most this many invalid INI values are named in the failure reason (the rest are counted). */
export const MAX_INVALID_LISTED = 10;

/** Checks a scene path from the job: relative, inside `dir`, an existing regular file, no quote characters. */
export function resolveInside(dir: string, rel: string): string {
    if (rel === "" || rel.includes("\\") || rel.startsWith("/") || /^[a-zA-Z]:/.test(rel) || rel.split("/").includes("..")) {
        throw new PermanentError(`Input_File_Name ${JSON.stringify(rel)} must be a relative path inside the job (no '..')`);
    }
    if (/["\x00-\x1f]/.test(rel)) throw new PermanentError(`Input_File_Name ${JSON.stringify(rel)} contains a quote or control character`);
    const root = path.resolve(dir);
    const abs = path.resolve(root, rel);
    if (!abs.startsWith(root + path.sep)) throw new PermanentError(`Input_File_Name ${JSON.stringify(rel)} escapes the job directory`);
    let st: fs.Stats;
    try {
        st = fs.lstatSync(abs);
    } catch {
        throw new PermanentError(`no scene: Input_File_Name ${JSON.stringify(rel)} does not exist in the zip`);
    }
    if (!st.isFile()) throw new PermanentError(`no scene: Input_File_Name ${JSON.stringify(rel)} is not a regular file`);
    return abs;
}

export interface Scene {
    /** Directory the scene is rendered from (cwd and library path). */
    dir: string;
    /** Scene file relative to dir. */
    pov: string;
    /** The INI used, relative to dir, if any. */
    ini?: string;
    sanitized?: SanitizedIni;
}

/** Largest job INI read (a real one is a few hundred bytes; a huge one is an attack on the parser and the logs). */
export const MAX_INI_BYTES = 64 * 1024;

/** At most this many `ini_key_dropped` log lines per job, then one `ini_keys_dropped` summary line. */
export const MAX_DROPPED_LOG_LINES = 50;

/** macOS archive clutter, ignored when looking for the scene: `__MACOSX/`, `.DS_Store`, AppleDouble `._*` files. */
export function isMacClutter(name: string): boolean {
    return name === "__MACOSX" || name === ".DS_Store" || name.startsWith("._");
}

function readIni(file: string, shownName: string): string {
    const size = fs.statSync(file).size;
    if (size > MAX_INI_BYTES) {
        throw new PermanentError(`INI ${JSON.stringify(shownName)} is ${size} bytes, more than the limit of ${MAX_INI_BYTES} bytes (64 KiB)`);
    }
    return fs.readFileSync(file, "utf8");
}

/** Finds the scene in the unpacked job (see the file comment for the rule). */
export function findScene(inputDir: string, baseName: string, maxDimension = DEFAULT_MAX_DIMENSION): Scene {
    let dir = inputDir;
    const list = (d: string) => fs.readdirSync(d, { withFileTypes: true }).filter((e) => !isMacClutter(e.name));
    let entries = list(dir);
    // A zip of a folder: look inside its single top-level directory.
    if (entries.length === 1 && entries[0].isDirectory()) {
        dir = path.join(dir, entries[0].name);
        entries = list(dir);
    }
    const files = entries.filter((e) => e.isFile()).map((e) => e.name);
    const ini = files.find((f) => f === `${baseName}.ini`) ?? files.find((f) => f.toLowerCase() === `${baseName}.ini`.toLowerCase());
    if (ini) {
        const sanitized = sanitizeIni(readIni(path.join(dir, ini), ini), maxDimension);
        if (sanitized.invalid.length) {
            const more = sanitized.invalid.length - MAX_INVALID_LISTED;
            const listed = sanitized.invalid.slice(0, MAX_INVALID_LISTED).join("; ");
            throw new PermanentError(`${ini}: ${listed}${more > 0 ? `; and ${more} more invalid value(s)` : ""}`);
        }
        let pov = sanitized.inputFile;
        if (pov === undefined) {
            const candidate = files.find((f) => f.toLowerCase() === `${baseName}.pov`.toLowerCase());
            const povs = files.filter((f) => f.toLowerCase().endsWith(".pov"));
            pov = candidate ?? (povs.length === 1 ? povs[0] : undefined);
            if (pov === undefined) {
                throw new PermanentError(
                    `no scene: ${ini} has no Input_File_Name and there is no ${baseName}.pov or single .pov at the top level`,
                );
            }
        }
        resolveInside(dir, pov);
        return { dir, pov, ini, sanitized };
    }
    const povs = files.filter((f) => f.toLowerCase().endsWith(".pov"));
    if (povs.length === 1) {
        resolveInside(dir, povs[0]);
        return { dir, pov: povs[0] };
    }
    const found = entries.map((e) => (e.isDirectory() ? e.name + "/" : e.name)).slice(0, 20);
    throw new PermanentError(
        `no scene: expected ${baseName}.ini or exactly one .pov at the top level, found ${found.length ? found.join(", ") : "nothing"}`,
    );
}

function iniQuote(v: string): string {
    if (/["\x00-\x1f]/.test(v)) throw new PermanentError(`path contains a quote or control character: ${JSON.stringify(v)}`);
    return `"${v}"`;
}

/** The INI POV-Ray actually reads: fixed output/display/library settings plus the whitelisted options. */
export function buildRenderIni(scene: Scene, outPng: string, threads: number, includeDir: string | null): string {
    const lines = [
        "; generated by the worker: only whitelisted options from the job's INI",
        `Input_File_Name=${iniQuote(scene.pov)}`,
        `Output_File_Name=${iniQuote(outPng)}`,
        "Output_To_File=on",
        "Output_File_Type=N",
        "Display=off",
        "Pause_When_Done=off",
        "Verbose=on",
        `Work_Threads=${threads}`,
        // The distribution's povray.ini defaults (that file is not read: POVINI points here); the job's INI overrides.
        "Width=800",
        "Height=600",
        "Bounding_Threshold=3",
        `Library_Path=${iniQuote(scene.dir)}`,
    ];
    if (includeDir) lines.push(`Library_Path=${iniQuote(includeDir)}`);
    for (const [k, v] of scene.sanitized?.options ?? []) lines.push(`${k}=${v}`);
    for (const [n, v] of scene.sanitized?.declares ?? []) lines.push(`Declare=${n}=${v}`);
    return lines.join("\n") + "\n";
}

/**
 * POV-Ray's own start-up failures: its front end timed out waiting for its render threads to start, or for a request
 * to be served (POV-Ray's vfeInitializeTimedOut and vfeRequestTimedOut), which happens when the task's CPUs are
 * saturated. The machine's state at that moment, not the scene's: such a job is retried as a transient failure, not
 * failed for good.
 */
export const POVRAY_STARTUP_FAILURE = /^Timed out waiting for (worker thread startup|request to be serviced)$/m;

/**
 * The warning POV-Ray prints on every run when the user's own povray.conf (under HOME, the job's scratch dir) does
 * not exist: harmless, so never a failure's reason (it stays in the job's log).
 */
const NO_USER_CONF = /^povray: cannot open the user configuration file .*: No such file or directory$/;

/** The most useful lines of POV-Ray's stderr for an error report: parse errors first, else the tail. */
export function povrayErrorSummary(stderr: string): string {
    const lines = stderr.split("\n").filter((l) => !NO_USER_CONF.test(l));
    const errIdx = lines.findIndex((l) => /Parse Error|Fatal error|Error:/i.test(l));
    if (errIdx >= 0) return lines.slice(Math.max(0, errIdx - 2), errIdx + 8).join("\n").trim();
    return tail(lines.join("\n"));
}

const DEFAULT_INCLUDE_DIRS = ["/usr/share/povray-3.7/include", "/usr/share/povray/include"];

export class PovrayProcessor implements Processor {
    readonly name = "povray";
    private readonly bin: string;
    private readonly threads: number;
    private readonly includeDir: string | null;
    private readonly maxDimension: number;

    constructor(opts: PovrayOptions = {}) {
        this.bin = opts.bin ?? process.env.POVRAY_BIN ?? "povray";
        this.threads = Math.max(1, opts.threads ?? os.cpus().length);
        this.includeDir =
            opts.includeDir !== undefined ? opts.includeDir : (DEFAULT_INCLUDE_DIRS.find((d) => fs.existsSync(d)) ?? null);
        this.maxDimension = opts.maxDimension ?? DEFAULT_MAX_DIMENSION;
    }

    async process(input: ProcessorInput): Promise<ProcessorResult> {
        const { log } = input;
        const scene = findScene(input.inputDir, input.baseName, this.maxDimension);
        const dropped = scene.sanitized?.dropped ?? [];
        for (const d of dropped.slice(0, MAX_DROPPED_LOG_LINES)) {
            log("ini_key_dropped", { key: input.sourceKey, ini: scene.ini, option: d.key.slice(0, 60), reason: d.reason });
        }
        if (dropped.length > MAX_DROPPED_LOG_LINES) {
            log("ini_keys_dropped", {
                key: input.sourceKey,
                ini: scene.ini,
                total: dropped.length,
                notLogged: dropped.length - MAX_DROPPED_LOG_LINES,
            });
        }
        log("scene", { key: input.sourceKey, pov: scene.pov, ini: scene.ini ?? null });
        const outPng = path.join(input.workDir, "render.png");
        const iniPath = path.join(input.workDir, "render.ini");
        const logPath = path.join(input.workDir, "render.log");
        await fs.promises.writeFile(iniPath, buildRenderIni(scene, outPng, this.threads, this.includeDir), { mode: 0o600 });
        // HOME and TMPDIR inside the job's own dir, so that what the scene writes there goes away with the job.
        const home = path.join(input.workDir, "home");
        await fs.promises.mkdir(home, { recursive: true, mode: 0o700 });

        const started = process.hrtime.bigint();
        const run = await runPovray(this.bin, [iniPath], scene.dir, input.timeoutMs, input.signal, {
            // POVINI: never read a povray.ini from the job's directory (POV-Ray's default search includes ./povray.ini).
            POVINI: iniPath,
            HOME: home,
            TMPDIR: home,
        });
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        await fs.promises.writeFile(logPath, run.output);
        if (run.aborted) throw new AbortedError();
        if (run.timedOut) throw new JobTimeoutError(`render timed out after ${input.timeoutMs / 1000} s`);
        if (run.code !== 0) {
            const reason = `povray exited with ${run.signal ?? run.code}: ${povrayErrorSummary(run.stderr) || "(no output)"}`;
            // A plain Error is a transient failure: the job is tried again (job.ts).
            throw POVRAY_STARTUP_FAILURE.test(run.stderr) ? new Error(reason) : new PermanentError(reason);
        }
        if (!fs.existsSync(outPng) || fs.statSync(outPng).size === 0) {
            throw new PermanentError(`povray produced no PNG: ${tail(run.stderr, 10) || "(no output)"}`);
        }
        log("rendered", { key: input.sourceKey, seconds: Number(seconds.toFixed(3)) });
        return {
            seconds,
            outputs: [
                { suffix: ".png", path: outPng, contentType: "image/png" },
                { suffix: ".log", path: logPath, contentType: "text/plain; charset=utf-8" },
            ],
        };
    }
}

export type { RunResult } from "./run-process";

/** povray through the shared process runner (no shell, own process group, SIGKILL on timeout or abort). */
export const runPovray = runProcess;
