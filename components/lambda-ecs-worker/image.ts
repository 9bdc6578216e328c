/** Step "image": build and push `image.context` to a new ECR repository, or take `image.imageUri` as is. */
import * as awsx from "@pulumi/awsx";
import * as pulumi from "@pulumi/pulumi";

import { ChildOptions, ResolvedLambdaEcsWorkerArgs } from "./args";

export interface ImageResources {
    imageUri: pulumi.Output<string>;
    /** The task's CPU architecture, from `image.platform`. */
    cpuArchitecture: "ARM64" | "X86_64";
}

export function createImage(name: string, r: ResolvedLambdaEcsWorkerArgs, { parent }: ChildOptions): ImageResources {
    const cpuArchitecture = r.platform === "linux/arm64" ? "ARM64" : "X86_64";
    if (r.image.context === undefined) {
        return { imageUri: pulumi.output(r.image.imageUri!), cpuArchitecture };
    }
    const repository = new awsx.ecr.Repository(`${name}-repo`, { forceDelete: true, tags: r.tags }, { parent });
    const image = new awsx.ecr.Image(
        `${name}-image`,
        { repositoryUrl: repository.url, context: r.image.context, dockerfile: r.image.dockerfile, platform: r.platform },
        { parent },
    );
    return { imageUri: image.imageUri, cpuArchitecture };
}
