/** Step "cluster": the ECS cluster and its Fargate capacity providers, with the default strategy from `capacity`. */
import * as aws from "@pulumi/aws";

import { ChildOptions, LambdaEcsWorkerCapacity, ResolvedLambdaEcsWorkerArgs } from "./args";

export type CapacityProviderStrategy = { capacityProvider: string; weight: number; base?: number }[];

export interface ClusterResources {
    cluster: aws.ecs.Cluster;
    /** Tasks and the service start only once the capacity providers are attached: depend on this. */
    capacityProviders: aws.ecs.ClusterCapacityProviders;
    /** The strategy of `capacity`: the cluster's default, the launcher's RunTask and the service's. */
    strategy: CapacityProviderStrategy;
}

/** The capacity provider strategy for a capacity setting. */
export function capacityProviderStrategy(capacity: LambdaEcsWorkerCapacity): CapacityProviderStrategy {
    if (capacity === "FARGATE" || capacity === "FARGATE_SPOT") return [{ capacityProvider: capacity, weight: 1 }];
    const out: CapacityProviderStrategy = [];
    if (capacity.fargateWeight > 0 || (capacity.fargateBase ?? 0) > 0) {
        out.push({ capacityProvider: "FARGATE", weight: capacity.fargateWeight, base: capacity.fargateBase ?? 0 });
    }
    if (capacity.spotWeight > 0) out.push({ capacityProvider: "FARGATE_SPOT", weight: capacity.spotWeight });
    return out;
}

export function createCluster(name: string, r: ResolvedLambdaEcsWorkerArgs, { parent }: ChildOptions): ClusterResources {
    const cluster = new aws.ecs.Cluster(
        `${name}-cluster`,
        { settings: [{ name: "containerInsights", value: r.containerInsights ? "enabled" : "disabled" }], tags: r.tags },
        { parent },
    );
    const strategy = capacityProviderStrategy(r.capacity);
    const capacityProviders = new aws.ecs.ClusterCapacityProviders(
        `${name}-capacity-providers`,
        { clusterName: cluster.name, capacityProviders: ["FARGATE", "FARGATE_SPOT"], defaultCapacityProviderStrategies: strategy },
        { parent },
    );
    return { cluster, capacityProviders, strategy };
}
