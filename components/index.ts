export * from "./lambda-ecs-worker";
export { ecrRepositoryArn, FARGATE_SIZES, LOG_RETENTION_DAYS } from "./validation";
