/**
 * Where this package's own files are: the folder holding its package.json (name `lambda-ecs-worker`), found by walking
 * up from this module. The same answer from the TypeScript sources of this repository (`components/...`) and from
 * the compiled package in another project's `node_modules` (`dist/components/...`). The worker runtime's image
 * context (`worker-image/`) ships there.
 */
import * as fs from "fs";
import * as path from "path";

/** The package's name (also the Pulumi package name in the type token `lambda-ecs-worker:index:LambdaEcsWorker`). */
export const PACKAGE_NAME = "lambda-ecs-worker";

/** The first folder at or above `from` whose package.json is named `name`; throws naming `from` when there is none. */
export function findPackageRoot(from: string, name = PACKAGE_NAME): string {
    for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
        const file = path.join(dir, "package.json");
        if (fs.existsSync(file)) {
            try {
                if (JSON.parse(fs.readFileSync(file, "utf8")).name === name) return dir;
            } catch {
                // Not JSON: keep looking above.
            }
        }
        if (path.dirname(dir) === dir) throw new Error(`no package.json named "${name}" at or above ${from}`);
    }
}

/** This package's root folder. */
export const PACKAGE_ROOT = findPackageRoot(__dirname);

/** The worker runtime base image's build context (`Dockerfile.runtime` in it), shipped with the package. */
export const RUNTIME_IMAGE_CONTEXT = path.join(PACKAGE_ROOT, "worker-image");
