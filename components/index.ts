export * from "./lambda-ecs-worker";
