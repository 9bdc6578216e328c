/**
 * The LambdaEcsWorker component, one concern per file: `args.ts` (arguments, defaults, `resolveArgs`), `validate.ts`,
 * `policies.ts` (IAM documents), the steps `bucket.ts`, `queues.ts`, `image.ts`, `network.ts`, `cluster.ts`,
 * `task.ts`, `launcher.ts`, the launch modes' own resources in `modes/`, and `component.ts`, which runs them in order.
 */
export { CapacityKind, LAMBDA_ECS_WORKER_DEFAULTS, Platform } from "./args";
export type { LambdaEcsWorkerArgs, LambdaEcsWorkerCapacity, LambdaEcsWorkerImageArgs } from "./args";
export { LaunchMode } from "../../functions/launcher-settings";
export { ecrRepositoryArn, FARGATE_SIZES, LOG_RETENTION_DAYS } from "./aws-rules";
export { capacityProviderStrategy } from "./cluster";
export { LambdaEcsWorker } from "./component";
export { RESERVED_ENVIRONMENT, SCRATCH_DIR, WORKER_CONTAINER_NAME, WORKER_USER } from "./container";
export { validateLambdaEcsWorkerArgs } from "./validate";
