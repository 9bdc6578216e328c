/**
 * Starts `moto_server` (the AWS API emulator pre-installed on these machines) on a free 127.0.0.1 port.
 * Shared by every test, benchmark and `npm run local` that talks to "AWS" on this machine.
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as net from "net";

export interface Moto {
    /** `http://127.0.0.1:<port>`: use as `AWS_ENDPOINT_URL`. */
    endpoint: string;
    port: number;
    /** Environment for a child process (SDK or CLI) that must talk to this emulator. */
    env: Record<string, string>;
    /** Forget every resource (POST /moto-api/reset). */
    reset(): Promise<void>;
    /** Stop the server and wait for it to exit. */
    stop(): Promise<void>;
    /** Kill the server at once, synchronously (for a process 'exit' handler). */
    killNow(): void;
}

/** Fake credentials and region for the emulator; never real ones. */
export const MOTO_ENV = {
    AWS_ACCESS_KEY_ID: "testing",
    AWS_SECRET_ACCESS_KEY: "testing",
    AWS_SESSION_TOKEN: "testing",
    AWS_REGION: "us-east-1",
    AWS_DEFAULT_REGION: "us-east-1",
};

/** AWS SDK client settings (endpoint, region, fake credentials) for an emulator at `endpoint`; S3 also wants `forcePathStyle`. */
export function motoClientConfig(endpoint: string) {
    return {
        endpoint,
        region: MOTO_ENV.AWS_REGION,
        credentials: {
            accessKeyId: MOTO_ENV.AWS_ACCESS_KEY_ID,
            secretAccessKey: MOTO_ENV.AWS_SECRET_ACCESS_KEY,
            sessionToken: MOTO_ENV.AWS_SESSION_TOKEN,
        },
    };
}

export function motoInstalled(): boolean {
    return spawnSync("moto_server", ["--help"], { stdio: "ignore" }).status === 0;
}

export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on("error", reject);
        srv.listen(0, "127.0.0.1", () => {
            const port = (srv.address() as net.AddressInfo).port;
            srv.close(() => resolve(port));
        });
    });
}

async function waitUntilUp(endpoint: string, proc: ChildProcess, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (proc.exitCode !== null) throw new Error(`moto_server exited with code ${proc.exitCode}`);
        try {
            const res = await fetch(`${endpoint}/moto-api/`);
            if (res.ok) return;
        } catch {
            /* not listening yet */
        }
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`moto_server did not answer on ${endpoint} within ${timeoutMs} ms`);
}

/** Start moto_server on a free loopback port; throws with the install command when it is missing. */
export async function startMoto(opts: { timeoutMs?: number } = {}): Promise<Moto> {
    if (!motoInstalled()) {
        throw new Error("moto_server not found on PATH. Install it with: pip install 'moto[server]'");
    }
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const proc = spawn("moto_server", ["-H", "127.0.0.1", "-p", String(port)], {
        stdio: ["ignore", "ignore", "pipe"],
        detached: false,
    });
    let stderr = "";
    proc.stderr?.on("data", (d) => {
        stderr = (stderr + d.toString()).slice(-4000);
    });
    try {
        await waitUntilUp(endpoint, proc, opts.timeoutMs ?? 30000);
    } catch (e) {
        proc.kill("SIGKILL");
        throw new Error(`${(e as Error).message}\n${stderr}`);
    }
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    return {
        endpoint,
        port,
        env: { ...MOTO_ENV, AWS_ENDPOINT_URL: endpoint },
        async reset() {
            await fetch(`${endpoint}/moto-api/reset`, { method: "POST" });
        },
        killNow() {
            if (proc.exitCode === null) proc.kill("SIGKILL");
        },
        async stop() {
            if (proc.exitCode === null) {
                proc.kill("SIGTERM");
                const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
                await exited;
                clearTimeout(t);
            }
        },
    };
}
