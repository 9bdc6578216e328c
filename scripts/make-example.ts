/**
 * Rebuilds the example scene zips: every folder under examples/ becomes examples/<folder>.zip with the folder's
 * files at the top level of the zip (the worker looks for `<zip name>.ini` or a single `.pov` there).
 *
 *   npx ts-node --transpile-only scripts/make-example.ts [examples/spheres ...]
 */
import * as fs from "fs";
import * as path from "path";
import * as yazl from "yazl";

export const EXAMPLES = path.resolve(__dirname, "../examples");

/** Zips the regular files of `dir` (top level only, sorted, fixed timestamps so the zip is reproducible). */
export function zipDirectory(dir: string, outFile: string): Promise<void> {
    const zip = new yazl.ZipFile();
    const mtime = new Date("2026-01-01T00:00:00Z");
    for (const name of fs.readdirSync(dir).sort()) {
        const file = path.join(dir, name);
        if (fs.statSync(file).isFile()) zip.addBuffer(fs.readFileSync(file), name, { mtime, mode: 0o100644 });
    }
    zip.end();
    return new Promise((resolve, reject) => {
        const out = fs.createWriteStream(outFile);
        zip.outputStream.pipe(out).on("close", () => resolve()).on("error", reject);
    });
}

async function main(): Promise<void> {
    const args = process.argv.slice(2);
    const dirs = args.length > 0
        ? args.map((a) => path.resolve(a))
        : fs.readdirSync(EXAMPLES).map((n) => path.join(EXAMPLES, n)).filter((d) => fs.statSync(d).isDirectory());
    for (const dir of dirs) {
        const out = `${dir.replace(/\/+$/, "")}.zip`;
        await zipDirectory(dir, out);
        console.log(`wrote ${path.relative(process.cwd(), out)}`);
    }
}

if (require.main === module) {
    main().catch((e) => {
        console.error(e);
        process.exit(1);
    });
}
