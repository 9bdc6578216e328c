/**
 * Launcher package size and cold init, measured on the exact code Pulumi packages for the component's launcher.
 *   launcher_package_bytes: bytes of every entry of the launcher's code archive (capped at 32 KiB by test/component.test.ts).
 *   launcher_cold_init_ms: a fresh `node` requiring the serialized module (which runs the factory: settings, SDK
 *     clients) minus a bare `node -e 0`; median of several runs.
 */
import "../harness/mocks";

import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

import { buildLauncherPackage, runtimeEnv, writeLauncherModule } from "../harness/launcher-package";

const RUNS = 9;

function wallMs(args: string[], env: Record<string, string>): number {
    const t0 = process.hrtime.bigint();
    const res = spawnSync(process.execPath, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (res.status !== 0) throw new Error(`node ${args.join(" ")} failed: ${res.stderr}`);
    return ms;
}

function median(xs: number[]): number {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
    const pkg = await buildLauncherPackage("render", { inputPrefix: "inbox/", inputSuffixes: [".zip"], maxTasks: 10 });
    console.log(`launcher_package_bytes: ${pkg.bytes}`);
    console.log(`launcher_package_target_bytes: 32768`);
    console.log(`launcher_package_entries: ${pkg.paths.length}`);

    const file = writeLauncherModule(pkg.indexJs);
    try {
        // The component's environment (values from the mocks) and fake credentials: the factory only builds clients.
        const env = runtimeEnv({
            ...pkg.env,
            AWS_REGION: "us-east-1",
            AWS_ACCESS_KEY_ID: "testing",
            AWS_SECRET_ACCESS_KEY: "testing",
        });
        const load = ["-e", `if (typeof require(${JSON.stringify(file)}).handler !== "function") process.exit(3)`];
        wallMs(load, env); // warm the file system cache
        const init: number[] = [];
        const bare: number[] = [];
        for (let i = 0; i < RUNS; i++) {
            bare.push(wallMs(["-e", "0"], env));
            init.push(wallMs(load, env));
        }
        console.log(`launcher_cold_init_ms: ${Math.max(0, median(init) - median(bare)).toFixed(1)}`);
        console.log(`launcher_cold_init_runs: ${RUNS}`);
    } finally {
        fs.rmSync(path.dirname(file), { recursive: true, force: true });
    }
}

main().then(
    () => process.exit(0),
    (e) => {
        console.error(e);
        process.exit(1);
    },
);
