/**
 * The package as another team uses it (issue #16): `npm pack` → a new folder outside this repository → the README's
 * "Use it from your own project" steps, with its files as written there (the `<!-- consumer:NAME -->` blocks): install
 * (the packed tarball for `lambda-ecs-worker`, this repository's versions for the rest), type-check, the stack under
 * the package's mocks (the launcher's archive is the handler alone and holds no reference to the package; the runtime
 * base image is built from the package's context and handed to the worker's build as RUNTIME_IMAGE), and
 * `npx lambda-ecs-worker local`, which runs the job with the consumer's own command and that serialized launcher.
 */
import { expect } from "chai";
import { spawnSync, SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const ROOT = path.resolve(__dirname, "..");

/** The README's consumer files and commands: `<!-- consumer:NAME -->` before a fenced block. */
export function readmeBlocks(readme: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const m of readme.matchAll(/<!-- consumer:(\S+) -->\n```[\w-]*\n([\s\S]*?)```/g)) out[m[1]] = m[2];
    return out;
}

/** This repository's installed version of a package (what the consumer pins). */
function installedVersion(pkg: string): string {
    return JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules", pkg, "package.json"), "utf8")).version;
}

describe("the npm package, used from a new project outside this repository (README: Use it from your own project)", function () {
    this.timeout(900000);
    const blocks = readmeBlocks(fs.readFileSync(path.join(ROOT, "README.md"), "utf8"));
    let parent: string;
    let dir: string;
    let tarball: string;
    // Node.js 22 (this repository's, first on PATH as `npm run` puts it) for every command, as CI runs them.
    const env = { ...process.env, PATH: `${path.join(ROOT, "node_modules", ".bin")}${path.delimiter}${process.env.PATH}`, CI: "true" };
    const sh = (command: string, cwd: string): SpawnSyncReturns<string> => {
        const r = spawnSync("bash", ["-euo", "pipefail", "-c", command], { cwd, env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
        if (r.status !== 0) throw new Error(`${command}\nexited ${r.status}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
        return r;
    };

    before(() => {
        parent = fs.mkdtempSync(path.join(os.tmpdir(), "lew-consumer-"));
        expect(path.relative(ROOT, parent).startsWith("..")).to.equal(true);
        const packed = sh(`npm pack --silent --pack-destination ${JSON.stringify(parent)}`, ROOT).stdout.trim().split("\n").pop()!;
        tarball = path.join(parent, packed);
        // The README's install lines, with the tarball and this repository's versions.
        const pins: Record<string, string> = { "lambda-ecs-worker": tarball };
        for (const p of ["@pulumi/pulumi", "@pulumi/aws", "@pulumi/awsx", "typescript", "ts-node", "@types/node"]) pins[p] = `${p}@${installedVersion(p)}`;
        const install = blocks.install
            .split("\n")
            .map((line) => (line.startsWith("npm install") ? `${line.replace(/(?<=\s)(@?[\w/.-]+)(?=\s|$)/g, (w) => pins[w] ?? w)} --no-audit --no-fund --prefer-offline` : line))
            .join("\n");
        sh(install, parent);
        dir = path.join(parent, "wordcount");
        for (const f of ["Pulumi.yaml", "tsconfig.json", "index.ts", "Dockerfile", "count.js", "check.ts"]) {
            expect(blocks[f], `README block consumer:${f}`).to.be.a("string");
            fs.writeFileSync(path.join(dir, f), blocks[f]);
        }
    });

    after(() => {
        if (parent) fs.rmSync(parent, { recursive: true, force: true });
    });

    it("installs the packed package: compiled library, types, CLI and the runtime's image context; no tests, harness or benches", () => {
        const pkg = path.join(dir, "node_modules", "lambda-ecs-worker");
        const manifest = JSON.parse(fs.readFileSync(path.join(pkg, "package.json"), "utf8"));
        expect(manifest).to.include({ name: "lambda-ecs-worker", version: "0.2.0", main: "dist/components/index.js", types: "dist/components/index.d.ts" });
        expect(manifest.private).to.equal(undefined);
        expect(Object.keys(manifest.peerDependencies).sort()).to.deep.equal(["@pulumi/aws", "@pulumi/awsx", "@pulumi/pulumi"]);
        for (const f of ["dist/components/index.js", "dist/components/index.d.ts", "dist/cli/main.js", "dist/worker-image/src/main.js", "worker-image/Dockerfile.runtime", "worker-image/src/main.ts", "PulumiPlugin.yaml", "CHANGELOG.md", "README.md"]) {
            expect(fs.existsSync(path.join(pkg, f)), f).to.equal(true);
        }
        for (const f of ["test", "harness", "bench", "examples", "index.ts", "dist/test", "dist/harness", "node_modules/@pulumi/pulumi"]) {
            expect(fs.existsSync(path.join(pkg, f)), f).to.equal(false);
        }
        // One copy of Pulumi in the program: the peers resolve to the consumer's own.
        expect(fs.existsSync(path.join(dir, "node_modules", "@pulumi", "pulumi"))).to.equal(true);
        expect(fs.readFileSync(path.join(dir, "node_modules", ".bin", "lambda-ecs-worker"), "utf8")).to.match(/^#!\/usr\/bin\/env node/);
    });

    it("type-checks the consumer's program and its mocks test against the package's declarations", () => {
        sh("npx tsc --noEmit -p tsconfig.json", dir);
    });

    it("runs the README's mocks test: two images, the launcher's archive the handler alone", () => {
        expect(sh("npx ts-node check.ts", dir).stdout.trim()).to.equal("ok");
    });

    it("builds under mocks from node_modules: the launcher archive is __index.js alone (≤ 32 KiB, no require of the package), the runtime base image comes from the package's context and reaches the worker's build as RUNTIME_IMAGE", () => {
        fs.writeFileSync(
            path.join(dir, "probe.ts"),
            `import { launcherArchive, recorded, registrationsSettled } from "lambda-ecs-worker/mocks";
import "./index";
(async () => {
    await registrationsSettled();
    const images = recorded.filter((r) => r.type === "awsx:ecr:Image").map((r) => ({ name: r.name, inputs: r.inputs, imageUri: r.outputs.imageUri }));
    console.log(JSON.stringify({ archive: await launcherArchive(recorded), images }));
})();
`,
        );
        const { archive, images } = JSON.parse(sh("npx ts-node --transpile-only probe.ts", dir).stdout.trim().split("\n").pop()!);
        expect(archive.paths).to.deep.equal(["__index.js"]);
        expect(archive.bytes).to.be.at.most(32 * 1024);
        const requires = [...new Set([...(archive.indexJs as string).matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]))].sort();
        expect(requires).to.deep.equal(["@aws-sdk/client-dynamodb", "@aws-sdk/client-ecs", "@aws-sdk/client-eventbridge", "@aws-sdk/client-sqs", "crypto"]);
        const context = path.join(fs.realpathSync(dir), "node_modules", "lambda-ecs-worker", "worker-image");
        const [runtime, worker] = images;
        expect(runtime.name).to.equal("wordcount-runtime-image");
        expect(runtime.inputs).to.include({ context, dockerfile: path.join(context, "Dockerfile.runtime"), platform: "linux/amd64" });
        expect(worker.name).to.equal("wordcount-image");
        expect(worker.inputs.context).to.equal(fs.realpathSync(dir));
        expect(worker.inputs.args).to.deep.equal({ RUNTIME_IMAGE: runtime.imageUri });
    });

    it("documents the command: npx lambda-ecs-worker --help and local --help", () => {
        expect(sh("npx lambda-ecs-worker --help", dir).stdout).to.match(/^usage: lambda-ecs-worker <command>[\s\S]*\n {2}local \[--stack DIR\] \[--out DIR\] \[--json\] \[--config KEY=VALUE\]\.\.\. FILE\.\.\./);
        expect(sh("npx lambda-ecs-worker local --help", dir).stdout).to.match(/^usage: lambda-ecs-worker local \[options\] FILE\.\.\.[\s\S]*--stack DIR[\s\S]*--config KEY=VALUE/);
        expect(spawnSync("npx", ["lambda-ecs-worker", "deploy"], { cwd: dir, env, encoding: "utf8" }).status).to.equal(2);
    });

    it("runs a job offline with the consumer's own command: npx lambda-ecs-worker local, as in the README", () => {
        const r = sh(blocks.local, dir);
        expect(r.stdout).to.match(/hello +ok +out\/hello\.counts\.json/);
        expect(r.stdout).to.match(/1 of 1 job\(s\) done/);
        expect(JSON.parse(fs.readFileSync(path.join(dir, "out", "hello.counts.json"), "utf8"))).to.deep.equal({ lines: 2, words: 5, characters: 32 });
        expect(fs.readFileSync(path.join(dir, "out", "hello.log"), "utf8")).to.match(/counted \{ lines: 2, words: 5, characters: 32 \}/);
    });
});
