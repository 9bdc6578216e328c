/** Step "cluster": the ECS cluster and its Fargate capacity providers, with the default strategy from `capacity`. */
import * as aws from "@pulumi/aws";

import { CapacityKind, ChildOptions, LambdaEcsWorkerCapacity, ResolvedLambdaEcsWorkerArgs } from "./args";

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
    if (capacity.kind !== CapacityKind.Mixed) return [{ capacityProvider: capacity.kind, weight: 1 }];
    const [fargateWeight, spotWeight, fargateBase] = [capacity.fargateWeight ?? 0, capacity.spotWeight ?? 0, capacity.fargateBase ?? 0];
    const out: CapacityProviderStrategy = [];
    if (fargateWeight > 0 || fargateBase > 0) out.push({ capacityProvider: "FARGATE", weight: fargateWeight, base: fargateBase });
    if (spotWeight > 0) out.push({ capacityProvider: "FARGATE_SPOT", weight: spotWeight });
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
