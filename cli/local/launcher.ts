/**
 * Runs the launcher Lambda's serialized code (`__index.js` from the stack's code archive) the way Lambda would:
 * in its own Node process (a fresh module, so settings are read at this "cold start"), with the function's declared
 * environment (emulator values) + AWS_ENDPOINT_URL + fake credentials, NODE_PATH = the repo's node_modules (the
 * Lambda runtime provides the AWS SDK the same way), one invocation at a time (one Lambda instance: the run starts one
 * per intake poller and one for the schedules), with a `context.getRemainingTimeInMillis()` from the declared timeout.
 */
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";


const HOST_JS = `
const timeoutMs = Number(process.env.__LOCAL_LAMBDA_TIMEOUT_MS || 60000);
const mod = require(process.argv[2]);
process.on("message", async (m) => {
    const deadline = Date.now() + timeoutMs;
    const context = { getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()), functionName: process.env.AWS_LAMBDA_FUNCTION_NAME };
    try {
        const result = await mod.handler(m.event, context);
        process.send({ id: m.id, ok: true, result });
    } catch (e) {
        process.send({ id: m.id, ok: false, error: String((e && e.message) || e) });
    }
});
process.send({ ready: true });
`;

/**
 * The `node_modules` folder the AWS SDK v3 is installed in, for NODE_PATH: the Lambda runtime ships the SDK, so the
 * launcher's package has none and `require("@aws-sdk/...")` must resolve outside it (here: wherever this CLI's own
 * SDK is, the repository's node_modules or the installing project's).
 */
export function sdkNodePath(): string {
    const resolved = require.resolve("@aws-sdk/client-sqs");
    const at = resolved.lastIndexOf(`${path.sep}node_modules${path.sep}`);
    if (at < 0) throw new Error(`@aws-sdk/client-sqs resolved outside node_modules: ${resolved}`);
    return resolved.slice(0, at + `${path.sep}node_modules`.length);
}

export interface InvokeResult {
    ok: boolean;
    result?: any;
    error?: string;
}

export class LocalLauncher {
    private child?: ChildProcess;
    private seq = 0;
    private pending = new Map<number, (r: InvokeResult) => void>();
    private chain: Promise<unknown> = Promise.resolve();
    private log: fs.WriteStream;

    constructor(
        private readonly dir: string,
        private readonly runId: string,
        private readonly indexJs: string,
        private readonly env: Record<string, string>,
        private readonly timeoutSeconds: number,
        logFile: string,
    ) {
        this.log = fs.createWriteStream(logFile, { flags: "a" });
    }

    get pid(): number | undefined {
        return this.child?.pid;
    }

    async start(): Promise<void> {
        fs.mkdirSync(this.dir, { recursive: true });
        const index = path.join(this.dir, "__index.js");
        const host = path.join(this.dir, "host.js");
        fs.writeFileSync(index, this.indexJs);
        fs.writeFileSync(host, HOST_JS);
        const child = spawn(process.execPath, [host, index, `--lew-local-run=${this.runId}`], {
            cwd: this.dir,
            env: { NODE_NO_WARNINGS: "1", ...this.env, NODE_PATH: sdkNodePath(), __LOCAL_LAMBDA_TIMEOUT_MS: String(this.timeoutSeconds * 1000) },
            stdio: ["ignore", "pipe", "pipe", "ipc"],
        });
        this.child = child;
        child.stdout!.pipe(this.log, { end: false });
        child.stderr!.pipe(this.log, { end: false });
        await new Promise<void>((resolve, reject) => {
            const onExit = (code: number | null) => reject(new Error(`the launcher exited at cold start (code ${code}); see ${this.log.path}`));
            child.once("exit", onExit);
            child.once("message", (m: any) => {
                if (m?.ready) {
                    child.off("exit", onExit);
                    resolve();
                }
            });
        });
        child.on("message", (m: any) => {
            const done = this.pending.get(m?.id);
            if (done) {
                this.pending.delete(m.id);
                done({ ok: m.ok, result: m.result, error: m.error });
            }
        });
        child.on("exit", (code, signal) => {
            for (const done of this.pending.values()) done({ ok: false, error: `launcher process exited (${signal ?? code})` });
            this.pending.clear();
        });
    }

    /** One invocation; this instance's invocations are serialized (a Lambda instance runs one at a time). */
    invoke(event: unknown): Promise<InvokeResult> {
        const run = () =>
            new Promise<InvokeResult>((resolve) => {
                if (!this.child || this.child.exitCode !== null || !this.child.connected) {
                    resolve({ ok: false, error: "launcher process is not running" });
                    return;
                }
                const id = ++this.seq;
                this.pending.set(id, resolve);
                this.child.send({ id, event });
            });
        const p = this.chain.then(run, run);
        this.chain = p;
        return p;
    }

    async stop(): Promise<void> {
        const child = this.child;
        if (child && child.exitCode === null && child.signalCode === null) {
            const exited = new Promise((r) => child.once("exit", r));
            child.kill("SIGTERM");
            const t = setTimeout(() => child.kill("SIGKILL"), 3000);
            await exited;
            clearTimeout(t);
        }
        this.log.end();
    }

    /** Synchronous last resort (process exit). */
    killNow(): void {
        if (this.child && this.child.exitCode === null) this.child.kill("SIGKILL");
    }
}
