/**
 * `npm run bench -- local`: `npm run local` figures.
 *   burst_*      100 tiny scene uploads at once with --max-tasks 10: tasks started, jobs done, wall time.
 *   e2e_seconds  the sample scene (examples/spheres.zip) through the whole local pipeline (process start to exit),
 *                e2e_job_seconds from its upload to its PNG, against povray_seconds for the same render alone
 *                (povray run directly with the scene's INI and the worker's thread count).
 *   service_first_task_seconds  launchMode service, the sample scene uploaded to an idle service: seconds from the job
 *                waiting to the first task requested, and by what (the launcher's wake, or the CloudWatch path, which
 *                the local run delays by the scale-out alarm's 60 s).
 */
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yazl from "yazl";

const ROOT = path.resolve(__dirname, "..");
const BURST = 100;

function tinyZip(file: string, name: string): Promise<void> {
    const z = new yazl.ZipFile();
    z.addBuffer(Buffer.from("Input_File_Name=scene.pov\nWidth=32\nHeight=24\nAntialias=Off\n"), `${name}.ini`);
    z.addBuffer(Buffer.from("camera { location <0, 1, -3> look_at 0 }\nlight_source { <2, 4, -3> color rgb 1 }\nsphere { 0, 1 pigment { color rgb <1, 0.3, 0.1> } }\n"), "scene.pov");
    z.end();
    return new Promise((resolve, reject) => {
        z.outputStream.pipe(fs.createWriteStream(file)).on("close", () => resolve()).on("error", reject);
    });
}

function local(args: string[]): Promise<{ code: number | null; summary: any; seconds: number; stderr: string }> {
    const t0 = process.hrtime.bigint();
    return new Promise((resolve) => {
        const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", "cli/main.ts", "local", ...args, "--json"], {
            cwd: ROOT,
            stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        let err = "";
        child.stdout.on("data", (d) => (out += d));
        child.stderr.on("data", (d) => (err += d));
        child.on("exit", (code) => {
            let summary: any = undefined;
            try {
                summary = JSON.parse(out);
            } catch {}
            resolve({ code, summary, seconds: Number(process.hrtime.bigint() - t0) / 1e9, stderr: err });
        });
    });
}

const print = (name: string, value: string | number) => console.log(`${name}: ${value}`);

async function main(): Promise<void> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "local-bench-"));
    try {
        // ------------------------------------------------------------ burst
        const zips: string[] = [];
        for (let i = 0; i < BURST; i++) {
            const name = `burst-${String(i).padStart(3, "0")}`;
            const file = path.join(dir, `${name}.zip`);
            await tinyZip(file, name);
            zips.push(file);
        }
        const burst = await local([...zips, "--max-tasks", "10", "--out", path.join(dir, "burst"), "--timeout", "900"]);
        if (!burst.summary) throw new Error(`burst run printed no summary (exit ${burst.code}):\n${burst.stderr.slice(-2000)}`);
        const done = burst.summary.jobs.filter((j: any) => j.status === "done").length;
        print("burst_runner", burst.summary.runner);
        print("burst_jobs", BURST);
        print("burst_jobs_done", done);
        print("burst_tasks_started", burst.summary.tasksStarted);
        print("burst_launcher_invocations", burst.summary.launcherInvocations);
        print("burst_seconds", burst.seconds.toFixed(1));
        if (done !== BURST) {
            for (const j of burst.summary.jobs.filter((x: any) => x.status !== "done").slice(0, 5)) print("burst_failure", `${j.job}: ${j.reason}`);
        }

        // ------------------------------------------------------------ the sample scene: whole pipeline vs povray alone
        const e2e = await local([path.join(ROOT, "examples/spheres.zip"), "--out", path.join(dir, "e2e")]);
        if (!e2e.summary?.ok) throw new Error(`sample scene failed (exit ${e2e.code}):\n${e2e.stderr.slice(-2000)}`);
        print("e2e_runner", e2e.summary.runner);
        print("e2e_seconds", e2e.seconds.toFixed(2));
        print("e2e_job_seconds", e2e.summary.jobs[0].seconds.toFixed(2));
        print("e2e_setup_seconds", e2e.summary.phases.setupSeconds.toFixed(2));
        print("e2e_shutdown_seconds", e2e.summary.phases.shutdownSeconds.toFixed(2));

        const scene = path.join(dir, "povray");
        fs.cpSync(path.join(ROOT, "examples/spheres"), scene, { recursive: true });
        const t0 = process.hrtime.bigint();
        const pov = spawnSync("povray", ["spheres.ini", "+Ospheres.png", "+FN", "-D", "-P", `+WT${os.cpus().length}`], { cwd: scene, encoding: "utf8" });
        const povraySeconds = Number(process.hrtime.bigint() - t0) / 1e9;
        if (pov.status !== 0) throw new Error(`povray failed: ${pov.stderr?.slice(-1000)}`);
        print("povray_seconds", povraySeconds.toFixed(2));
        print("e2e_overhead_seconds", (e2e.seconds - povraySeconds).toFixed(2));

        // ------------------------------------------------------------ service mode: upload to an idle service
        const svc = await local([path.join(ROOT, "examples/spheres.zip"), "--out", path.join(dir, "service"), "--config", "launchMode=service"]);
        const note: string | undefined = (svc.summary?.notes ?? []).find((n: string) => n.startsWith("service: first task requested"));
        const m = note ? /requested ([\d.]+) s after jobs waited \((.+)\)/.exec(note) : null;
        print("service_first_task_seconds", m ? m[1] : `none (exit ${svc.code})`);
        print("service_first_task_by", m ? m[2] : "none");
        print("service_seconds", svc.seconds.toFixed(1));
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

main().then(
    () => process.exit(0),
    (e) => {
        console.error(e);
        process.exit(1);
    },
);
