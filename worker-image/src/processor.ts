/**
 * The plug-in point of the worker: the runtime downloads a job (unpacking a `.zip`), calls a Processor on it, and
 * uploads what it returns. POV-Ray is the first processor (povray.ts); the command processor (command.ts) runs any
 * tool named by WORKER_COMMAND, so that most workers need no TypeScript; others implement this interface and reuse
 * the runtime unchanged.
 */
import { Logger } from "./log";

export interface ProcessorInput {
    /** "directory": a `.zip` input, unpacked into `inputPath`; "file": any other input, downloaded as one file. */
    inputKind: "file" | "directory";
    /** The unpacked directory (= inputDir), or the downloaded file (inside inputDir, alone there). Untrusted content. */
    inputPath: string;
    /** Directory holding the input: the unpacked zip, or the downloaded file (the processor's cwd). */
    inputDir: string;
    /** Private, empty directory for the processor's outputs and temporary files (outside inputDir). */
    workDir: string;
    /** Job name: the input key's file name without its extension (e.g. "scene" for "in/scene.zip"); untrusted. */
    baseName: string;
    /** Source object key, for logging. */
    sourceKey: string;
    /** Hard time limit in milliseconds: past it, the processor must stop and throw JobTimeoutError. */
    timeoutMs: number;
    /** Aborted when the worker is stopping: the processor must stop and throw AbortedError. */
    signal: AbortSignal;
    log: Logger;
}

export interface ProcessorOutput {
    /** Appended to the output base key, e.g. ".png". */
    suffix: string;
    /** Local file to upload. */
    path: string;
    contentType: string;
}

export interface ProcessorResult {
    /** Files to upload (all must exist). */
    outputs: ProcessorOutput[];
    /** Seconds the processor's own work took (e.g. POV-Ray's render), recorded in the output metadata. */
    seconds: number;
}

export interface Processor {
    /** Short name, used in logs and metadata. */
    readonly name: string;
    /**
     * Runs the job. Throws PermanentError when the input can never succeed (the message includes the reason),
     * JobTimeoutError past `timeoutMs`, AbortedError when `signal` fires; anything else counts as transient.
     */
    process(input: ProcessorInput): Promise<ProcessorResult>;
}
