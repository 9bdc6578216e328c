/**
 * Step "image": build and push `image.context` to a new ECR repository, or take `image.imageUri` as is. With a build
 * context, the worker runtime base image is built first from the package's own `worker-image/Dockerfile.runtime`
 * (shipped with the package) and pushed to the same repository; its URI reaches the worker's Dockerfile as the build
 * arg `RUNTIME_IMAGE` (`ARG RUNTIME_IMAGE` then `FROM ${RUNTIME_IMAGE}`), so a worker is one `pulumi up` away.
 */
import * as awsx from "@pulumi/awsx";
import * as pulumi from "@pulumi/pulumi";
import * as path from "path";

import { ChildOptions, ResolvedLambdaEcsWorkerArgs } from "./args";
import { RUNTIME_IMAGE_CONTEXT } from "./package-root";

/** The build arg that carries the runtime base image's URI to the worker's Dockerfile. */
export const RUNTIME_IMAGE_BUILD_ARG = "RUNTIME_IMAGE";

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
    const runtime = r.buildRuntimeImage
        ? new awsx.ecr.Image(
              `${name}-runtime-image`,
              {
                  repositoryUrl: repository.url,
                  context: RUNTIME_IMAGE_CONTEXT,
                  dockerfile: path.join(RUNTIME_IMAGE_CONTEXT, "Dockerfile.runtime"),
                  platform: r.platform,
              },
              { parent },
          )
        : undefined;
    const image = new awsx.ecr.Image(
        `${name}-image`,
        {
            repositoryUrl: repository.url,
            context: r.image.context,
            dockerfile: r.image.dockerfile,
            platform: r.platform,
            ...(runtime ? { args: { [RUNTIME_IMAGE_BUILD_ARG]: runtime.imageUri } } : {}),
        },
        { parent },
    );
    return { imageUri: image.imageUri, cpuArchitecture };
}
