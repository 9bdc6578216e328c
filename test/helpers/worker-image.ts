/** Running the worker's container image (built by scripts/build-image.sh) with podman, as CI and developers do. */
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as os from "os";

export const WORKER_IMAGE = process.env.WORKER_IMAGE ?? "lambda-ecs-worker/povray:dev";
/** The GeoJSON worker (examples/geojson/Dockerfile) and the runtime base both images build FROM. */
export const GEOJSON_IMAGE = process.env.GEOJSON_IMAGE ?? "lambda-ecs-worker/geojson:dev";
export const RUNTIME_IMAGE = process.env.RUNTIME_IMAGE ?? "lambda-ecs-worker/runtime:dev";

/** The flags scripts/build-image.sh uses (rootful podman with runc + cgroupfs on these machines). */
export const PODMAN = ["--runtime", "runc", "--cgroup-manager=cgroupfs"];

function nofile(): string {
    const r = spawnSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" });
    const n = (r.stdout ?? "").trim() || "1024";
    return `${n}:${n}`;
}

/** The production run flags: read-only root, writable /scratch and /tmp only, uid 1000, host network (for moto). */
export function runFlags(): string[] {
    return [
        "--network",
        "host",
        "--ulimit",
        `nofile=${nofile()}`,
        "--ulimit",
        "nproc=20000:20000",
        "--read-only",
        "--tmpfs",
        "/scratch",
        "--tmpfs",
        "/tmp",
        "--user",
        "1000:1000",
    ];
}

export function imageBuilt(image = WORKER_IMAGE): boolean {
    const r = spawnSync("podman", [...PODMAN, "image", "exists", image], { stdio: "ignore" });
    return r.status === 0;
}

/** True when the image test must run (and fail if the image is missing) instead of being pending. */
export function runImage(name: string, env: Record<string, string>, image = WORKER_IMAGE): ChildProcess {
    const envArgs = Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
    return spawn("podman", [...PODMAN, "run", "--rm", "--name", name, ...runFlags(), ...envArgs, image], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, HOME: process.env.HOME ?? os.tmpdir() },
    });
}

export function podman(args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync("podman", [...PODMAN, ...args], { encoding: "utf8" });
    return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** `process.versions.node` inside the image, read-only and as uid 1000 like a task (e.g. "22.23.3"). */
export function imageNodeVersion(): string {
    const r = podman(["run", "--rm", ...runFlags(), "--entrypoint", "node", WORKER_IMAGE, "-p", "process.versions.node"]);
    if (r.status !== 0) throw new Error(`podman run ${WORKER_IMAGE} node failed (${r.status}): ${r.stderr}`);
    return r.stdout.trim();
}
