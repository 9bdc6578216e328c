/**
 * AWS requests per job, launcher + worker, in each launch mode (issue #11): the IAM test's scenario (harness/iam/
 * scenarios.ts: the serialized launcher and the worker against a recording moto_server, four jobs — one that
 * renders, one that fails for good, one whose worker is stopped mid-job, one whose input was deleted — plus the mode's
 * reconcile/wake steps; in drain and service modes a fifth job, which the work queue refuses on its intake record's
 * last receive and the launcher dead-letters), uploads delivered through the intake (the event source mapping's
 * receive and delete count as the launcher's: Lambda makes them with its role), with every request attributed to its
 * role by its access key. Prints figures; never passes or fails.
 *
 *   requests_per_job_<mode>: (launcher + worker requests) / jobs
 *   launcher_requests_<mode>, worker_requests_<mode>: the totals behind it
 */
import "../harness/mocks";

import { LambdaEcsWorkerArgs } from "../components";
import { startRecordingMoto } from "../harness/iam/recording";
import { runScenario } from "../harness/iam/scenarios";
import { stackPolicies } from "../harness/iam/stack-policies";
import { IMAGE_URI } from "../harness/launcher-package";


async function main(): Promise<void> {
    const rec = await startRecordingMoto();
    try {
        for (const mode of ["drain", "per-job", "service"] as const) {
            const name = `bench${mode.replace("-", "")}`;
            const sp = await stackPolicies(name, { image: { imageUri: IMAGE_URI }, launchMode: mode } as LambdaEcsWorkerArgs);
            // Without the scenario's multipart jobs: four (a render, a permanent failure, a job stopped mid-run, a deleted
            // input), and in drain and service modes a fifth the launcher dead-letters on its intake record's last receive.
            const run = await runScenario(rec, sp, { multipart: false });
            const key = mode.replace("-", "");
            console.log(`launcher_requests_${key}: ${run.launcher.length}`);
            console.log(`worker_requests_${key}: ${run.worker.length}`);
            const jobs = mode === "per-job" ? 4 : 5;
            console.log(`requests_per_job_${key}: ${((run.launcher.length + run.worker.length) / jobs).toFixed(1)}`);
        }
    } finally {
        await rec.stop();
    }
}

main().then(
    () => process.exit(0),
    (e) => {
        console.error(e);
        process.exit(1);
    },
);
