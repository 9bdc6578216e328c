/**
 * `npm run bench`: runs every `bench/*.bench.ts` in its own Node process, one after the other, and prints their
 * `name: value` lines. Benchmarks print figures; they never pass or fail on speed.
 * `npm run bench -- launcher worker` runs only the benchmarks whose file name contains one of the words.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

const filters = process.argv.slice(2);
const dir = __dirname;
const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".bench.ts"))
    .filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)))
    .sort();

let failed = 0;
for (const f of files) {
    console.log(`# ${f}`);
    const res = spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", path.join(dir, f)], {
        stdio: "inherit",
        cwd: path.resolve(dir, ".."),
    });
    if (res.status !== 0) {
        failed++;
        console.log(`# ${f} exited with ${res.status ?? res.signal}`);
    }
}
process.exit(failed === 0 ? 0 : 1);
