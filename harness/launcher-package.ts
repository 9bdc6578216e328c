/**
 * The launcher exactly as Pulumi packages it: build the LambdaEcsWorker component under the Pulumi mocks, take the
 * launcher function's code archive from the mocks' recorded resources, and run its `__index.js` in a fresh Node
 * process, as the Lambda runtime would. Import "./mocks" before this module (it is imported here too).
 */
import "./mocks";

import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import { LambdaEcsWorkerArgs } from "../components";
import { buildWorker, launcherArchive, one } from "./stack";

export const REPO_ROOT = path.resolve(__dirname, "..");
export const IMAGE_URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/render:latest";

export interface LauncherPackage {
    /** Every path in the launcher's code archive. */
    paths: string[];
    /** Bytes of every archive entry that is a string asset (`__index.js` among them). */
    bytes: number;
    /** The serialized handler module. */
    indexJs: string;
    /** The environment variables the component gives the launcher. */
    env: Record<string, string>;
    /** The Lambda handler setting ("__index.handler"). */
    handler: string;
}

/** Build `new LambdaEcsWorker(name, args)` on a fresh recorder and return its launcher package. */
export async function buildLauncherPackage(name: string, args: Partial<LambdaEcsWorkerArgs> = {}): Promise<LauncherPackage> {
    const { resources } = await buildWorker(name, { image: { imageUri: IMAGE_URI }, ...args } as LambdaEcsWorkerArgs);
    const fn = one(resources, "aws:lambda/function:Function", `${name}-launcher`);
    const { paths, bytes, indexJs } = await launcherArchive(resources);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(fn.inputs.environment?.variables ?? {})) env[k] = String(v);
    return { paths, bytes, indexJs, env, handler: fn.inputs.handler };
}

/** Write the serialized module to a new temporary directory (no node_modules around it); returns its path. */
export function writeLauncherModule(indexJs: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "launcher-pkg-"));
    const file = path.join(dir, "__index.js");
    fs.writeFileSync(file, indexJs);
    return file;
}

/**
 * Environment of a process standing in for the Lambda runtime: NODE_PATH points at the repo's node_modules so that
 * `require("@aws-sdk/...")` resolves like the runtime's bundled SDK; nothing else is inherited but PATH.
 */
export function runtimeEnv(extra: Record<string, string>): Record<string, string> {
    return { PATH: process.env.PATH ?? "/usr/bin:/bin", NODE_PATH: path.join(REPO_ROOT, "node_modules"), ...extra };
}

export interface Invocation {
    /** The handler's resolved value, or undefined when it threw. */
    result?: any;
    /** The handler's (or the module's) error message, when it failed. */
    error?: string;
    /** The JSON log lines the launcher wrote. */
    logs: any[];
    stderr: string;
}

const INVOKE = `
const modulePath = process.argv[1];
const event = JSON.parse(require("fs").readFileSync(process.argv[2], "utf8"));
const out = (tag, v) => process.stdout.write("\\n" + tag + " " + JSON.stringify(v) + "\\n");
let handler;
try { handler = require(modulePath).handler; } catch (e) { out("@@ERROR", String(e && e.message)); process.exit(2); }
handler(event, { getRemainingTimeInMillis: () => 60000 }).then(
    (r) => out("@@RESULT", r),
    (e) => { out("@@ERROR", String(e && e.message)); process.exitCode = 1; },
);
`;

/** `require` the module in a fresh `node` process and call `exports.handler(event)`. */
export async function invokeInFreshNode(modulePath: string, env: Record<string, string>, event: unknown): Promise<Invocation> {
    const eventFile = path.join(path.dirname(modulePath), `event-${process.hrtime.bigint()}.json`);
    fs.writeFileSync(eventFile, JSON.stringify(event));
    const child = spawn(process.execPath, ["-e", INVOKE, modulePath, eventFile], { env: runtimeEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    await new Promise<void>((resolve) => child.on("close", () => resolve()));
    const inv: Invocation = { logs: [], stderr };
    for (const line of stdout.split("\n")) {
        if (line.startsWith("@@RESULT ")) inv.result = JSON.parse(line.slice(9));
        else if (line.startsWith("@@ERROR ")) inv.error = JSON.parse(line.slice(8));
        else if (line.startsWith("{")) inv.logs.push(JSON.parse(line));
    }
    if (inv.result === undefined && inv.error === undefined) inv.error = `no result; stderr: ${stderr.slice(-2000)}`;
    return inv;
}
