/**
 * The contract between the LambdaEcsWorker component and its launcher Lambda: the environment variables the
 * component sets on the function. Runtime values reach the launcher only through these (never through `.get()`).
 */

/** How the launcher gets work done once a job is queued. */
export type LaunchMode =
    /** Start just enough tasks (up to `maxTasks`) to drain the queue; each task exits when the queue is empty. */
    | "drain"
    /** One task per job, with the job passed as container environment overrides (`JOB_BUCKET`, `JOB_KEY`). */
    | "per-job"
    /** Start no task: an ECS service scaled on queue depth (down to zero) consumes the queue. */
    | "service";

/** Every {@link LaunchMode}, in the order error messages list them (the launcher and the component both check against it). */
export const LAUNCH_MODES: readonly LaunchMode[] = ["drain", "per-job", "service"];

/** Names of the launcher's environment variables. */
export const LAUNCHER_ENV = {
    queueUrl: "QUEUE_URL",
    deadLetterQueueUrl: "DLQ_URL",
    cluster: "CLUSTER",
    taskDefinition: "TASK_DEFINITION",
    containerName: "CONTAINER_NAME",
    /** Comma-separated subnet ids. */
    subnets: "SUBNETS",
    /** Comma-separated security group ids. */
    securityGroups: "SECURITY_GROUPS",
    /** `ENABLED` or `DISABLED`. */
    assignPublicIp: "ASSIGN_PUBLIC_IP",
    /** JSON array of `{ capacityProvider, weight, base? }`. */
    capacityProviderStrategy: "CAPACITY_PROVIDER_STRATEGY",
    maxTasks: "MAX_TASKS",
    /** A {@link LaunchMode}. */
    launchMode: "LAUNCH_MODE",
    inputPrefix: "INPUT_PREFIX",
    /** JSON array of suffixes, matched case-insensitively. */
    inputSuffixes: "INPUT_SUFFIXES",
    /** Where outputs go: "" = next to the input. */
    outputPrefix: "OUTPUT_PREFIX",
    /** The `startedBy` the launcher stamps on its tasks and counts running tasks by. */
    startedBy: "STARTED_BY",
} as const;

/** Suffixes of the files a worker writes; the launcher never treats them as inputs. */
export const OUTPUT_SUFFIXES = [".png", ".log", ".error.json"] as const;
