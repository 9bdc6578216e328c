/**
 * The worker container's contract with the component: its name in the task definition, its user, its scratch
 * mount, and the environment variables the component sets on it (which `environment` may not redefine).
 */

/** Name of the worker container in the task definition. */
export const WORKER_CONTAINER_NAME = "worker";
/** Where the task mounts its writable scratch volume; the root file system is read-only. */
export const SCRATCH_DIR = "/scratch";
/** Non-root user the container runs as (the `node` user of the worker image). */
export const WORKER_USER = "1000:1000";

/** Container environment variables the component sets itself; `environment` may not redefine them. */
export const RESERVED_ENVIRONMENT = [
    "QUEUE_URL",
    "DLQ_URL",
    "AWS_REGION",
    "INPUT_PREFIX",
    "OUTPUT_PREFIX",
    "OUTPUT_SUFFIXES",
    "JOB_TIMEOUT_SECONDS",
    // The worker still reads this former name of JOB_TIMEOUT_SECONDS: reserved so that it cannot override it.
    "RENDER_TIMEOUT_SECONDS",
    "WORKER_IDLE_EXIT",
    "WORKER_MAX_RECEIVE_COUNT",
    "WORKER_VISIBILITY_TIMEOUT",
    "WORKER_SCRATCH_DIR",
    "WORKER_STOP_TIMEOUT_SECONDS",
    "JOB_BUCKET",
    "JOB_KEY",
    "JOB_ETAG",
    // Job events and metrics (worker-image/src/events.ts, metrics.ts), task protection (protection.ts).
    "EVENT_BUS_NAME",
    "EVENT_SOURCE",
    "WORKER_NAME",
    "METRICS_NAMESPACE",
    "TASK_PROTECTION",
];
