/**
 * The launch modes' own resources, one file per mode behind one interface, chosen from {@link LAUNCH_MODE_STEPS}
 * (a `Record<LaunchMode, ...>`: a new mode in `functions/launcher-settings.ts` fails to compile until it has an entry).
 * A mode adds resources at up to two points of the constructor: before the launcher (service: the service the
 * launcher leaves the work to and wakes; per-job: the rule matching tasks that fail to start, which the dead-letter
 * queue's policy names) and after it (drain: the schedule that invokes it; per-job: that rule's targets).
 */
import * as aws from "@pulumi/aws";

import { LaunchMode } from "../../../functions/launcher-settings";
import { ChildOptions, ResolvedLambdaEcsWorkerArgs } from "../args";
import { ClusterResources } from "../cluster";
import { JobEventResources } from "../job-events";
import { LauncherResources } from "../launcher";
import { NetworkResources } from "../network";
import { QueueResources } from "../queues";
import { TaskResources } from "../task";
import { drain } from "./drain";
import { perJob } from "./per-job";
import { service } from "./service";

/** What a mode's steps may read: the resolved arguments and the resources of the steps before it. */
export interface ModeContext {
    r: ResolvedLambdaEcsWorkerArgs;
    queues: QueueResources;
    network: NetworkResources;
    cluster: ClusterResources;
    task: TaskResources;
}

/** What a mode may hand back to the component (for its public properties and the later steps). */
export interface ModeResources {
    /** The ECS service, in service mode. */
    service?: aws.ecs.Service;
    /** Per-job: the rule matching ECS's TaskFailedToStart events of this worker's tasks (it sends to the DLQ). */
    startFailureRule?: aws.cloudwatch.EventRule;
}

/** A launch mode's resources, at the two points of the constructor where a mode may add any. */
export interface LaunchModeSteps {
    /** Before the launcher is created. */
    beforeLauncher?(name: string, ctx: ModeContext, opts: ChildOptions): ModeResources;
    /** Once the launcher exists (and before the bucket notification). */
    afterLauncher?(
        name: string,
        ctx: ModeContext & { launcher: LauncherResources; jobEvents: JobEventResources; beforeLauncher: ModeResources },
        opts: ChildOptions,
    ): ModeResources;
}

export const LAUNCH_MODE_STEPS: Record<LaunchMode, LaunchModeSteps> = {
    drain,
    "per-job": perJob,
    service,
};
