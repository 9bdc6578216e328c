/**
 * `npm run local -- --stack DIR`: which Pulumi program a run evaluates, and how its worker runs here.
 *
 * A stack dir holds a Pulumi program (`index.ts`, exporting the component's outputs as the root `index.ts` does), its
 * `Pulumi.yaml` (config keys with defaults) and the worker's `Dockerfile`. The root of the repository is the default
 * (the POV-Ray stack); `examples/geojson` is the second. Its worker image is `lambda-ecs-worker/<dir name>:dev`
 * (built by scripts/build-image.sh). Without the image, a local worker process stands in for the container: it gets
 * the `ENV` the Dockerfile sets, with each path the Dockerfile `COPY`s a file of the stack dir to replaced by that
 * file's path here (so `WORKER_COMMAND`'s script is the stack's own).
 */
import * as fs from "fs";
import * as path from "path";

import { DEFAULT_IMAGE } from "./runners";
import { PACKAGE_ROOT as ROOT } from "../../components/lambda-ecs-worker/package-root";

/** The stack dir `arg` names (absolute; default: `cwd`), or throws naming what is missing. */
export function resolveStackDir(arg: string | undefined, cwd = process.cwd()): string {
    const dir = path.resolve(cwd, arg ?? ".");
    const what = arg === undefined ? `the current folder (${dir})` : `--stack ${arg} (${dir})`;
    if (!fs.existsSync(path.join(dir, "Pulumi.yaml"))) {
        throw new Error(`${what} holds no Pulumi.yaml: run in a Pulumi project's folder or give --stack DIR (a stack dir holds Pulumi.yaml, its program and the worker's Dockerfile)`);
    }
    const program = programFile(dir);
    if (!fs.existsSync(program)) throw new Error(`${what}: its program ${path.relative(dir, program)} does not exist (Pulumi.yaml's main, else index.ts)`);
    return dir;
}

/** The stack's program: Pulumi.yaml's `main` (a file, or a folder holding index.ts), else `index.ts`. */
export function programFile(stackDir: string): string {
    const yaml = fs.readFileSync(path.join(stackDir, "Pulumi.yaml"), "utf8");
    const main = /^main:\s*["']?([^"'#\n]+?)["']?\s*(?:#.*)?$/m.exec(yaml)?.[1];
    const target = path.resolve(stackDir, main ?? "index.ts");
    return fs.existsSync(target) && fs.statSync(target).isDirectory() ? path.join(target, "index.ts") : target;
}

/** The worker image of a stack dir: the POV-Ray image for the root, else `lambda-ecs-worker/<dir name>:dev`. */
export function stackImage(stackDir: string): string {
    return path.resolve(stackDir) === ROOT ? DEFAULT_IMAGE : `lambda-ecs-worker/${path.basename(stackDir).toLowerCase()}:dev`;
}

/** Dockerfile words of one instruction's arguments, split on blanks outside quotes, quotes removed (as ENV and COPY read them). */
export function words(s: string): string[] {
    const out: string[] = [];
    let cur: string | undefined;
    let quote: string | undefined;
    for (let i = 0; i < s.length; i++) {
        const c = s[i];
        if (quote) {
            if (c === quote) quote = undefined;
            else if (c === "\\" && quote === '"' && i + 1 < s.length) cur += s[++i];
            else cur += c;
        } else if (c === "'" || c === '"') {
            quote = c;
            cur ??= "";
        } else if (/\s/.test(c)) {
            if (cur !== undefined) out.push(cur);
            cur = undefined;
        } else {
            cur = (cur ?? "") + c;
        }
    }
    if (cur !== undefined) out.push(cur);
    return out;
}

/**
 * The environment a local process of the stack's worker gets in place of its image's: the `ENV KEY=VALUE` of
 * `<stackDir>/Dockerfile` (after its last FROM), with every `COPY <file> <abs path>` destination in the values
 * replaced by the file in the stack dir. The root stack (the POV-Ray image) gets none: the worker's defaults are its.
 */
export function localWorkerEnv(stackDir: string): Record<string, string> {
    const file = path.join(stackDir, "Dockerfile");
    if (path.resolve(stackDir) === ROOT || !fs.existsSync(file)) return {};
    const text = fs.readFileSync(file, "utf8").replace(/\\\n/g, " ");
    const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
    const lastFrom = lines.map((l) => /^FROM\s/i.test(l)).lastIndexOf(true);
    const env: Record<string, string> = {};
    const copies: Array<[string, string]> = [];
    for (const line of lines.slice(lastFrom + 1)) {
        const m = /^(ENV|COPY)\s+(.*)$/i.exec(line);
        if (!m) continue;
        const args = words(m[2]);
        if (m[1].toUpperCase() === "COPY") {
            const plain = args.filter((a) => !a.startsWith("--"));
            if (plain.length === 2 && plain[1].startsWith("/")) copies.push([path.join(stackDir, plain[0]), plain[1]]);
        } else if (args.length >= 1 && args.every((a) => a.includes("="))) {
            for (const a of args) env[a.slice(0, a.indexOf("="))] = a.slice(a.indexOf("=") + 1);
        } else if (args.length >= 2) {
            env[args[0]] = args.slice(1).join(" ");
        }
    }
    for (const [k, v] of Object.entries(env)) {
        env[k] = copies.reduce((acc, [local, dest]) => acc.split(dest).join(local), v);
    }
    return env;
}
