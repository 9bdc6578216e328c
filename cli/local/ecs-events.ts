/**
 * ECS's task state change events, which the emulator does not emit: when a task's worker exits, AWS's ECS puts an
 * "ECS Task State Change" event (source `aws.ecs`) with the stopped task on the default event bus, where the stack's
 * rules match it (in per-job mode `<name>-task-stopped`, whose target is the launcher). The local run builds that
 * event as ECS does (Amazon ECS Developer Guide, "Amazon ECS task state change events": `detail` is the task as
 * DescribeTasks describes it, stopped) and puts it on the emulator's default bus; the rules the stack declares (applied
 * to the emulator by appliers.ts) decide where it goes, and what reaches a Lambda target's stand-in queue is handed
 * to the launcher (events.ts). Nothing here knows which rule matches.
 */
import type { Task } from "@aws-sdk/client-ecs";
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";

/** What ECS says of a task whose essential container exited (the worker's process or container ended). */
export const ESSENTIAL_CONTAINER_EXITED = { stopCode: "EssentialContainerExited", stoppedReason: "Essential container in task exited" } as const;

const iso = (d: Date | string | undefined, fallback: Date) => new Date(d ?? fallback).toISOString();

/**
 * The `detail` of ECS's event for `task` (as DescribeTasks described it while it ran) once its essential container
 * `containerName` exited with `exitCode`: lastStatus and desiredStatus STOPPED, stop code EssentialContainerExited,
 * stoppedReason "Essential container in task exited", each container STOPPED with the exit code (the others without
 * one), ISO timestamps, the RunTask overrides kept.
 */
export function taskStoppedDetail(task: Task, containerName: string, exitCode: number, now = new Date()): Record<string, unknown> {
    // An event's containers carry no environment or command (the emulator's DescribeTasks has them).
    const described = (task.containers ?? []).map(({ environment: _e, command: _c, exitCode: _x, ...c }: any) => c);
    if (!described.some((c) => c.name === containerName)) described.push({ name: containerName, taskArn: task.taskArn });
    const containers = described.map((c) => ({ ...c, lastStatus: "STOPPED", ...(c.name === containerName ? { exitCode } : {}) }));
    return {
        ...JSON.parse(JSON.stringify(task)),
        containers,
        createdAt: iso(task.createdAt, now),
        startedAt: iso(task.startedAt ?? task.createdAt, now),
        stoppingAt: now.toISOString(),
        executionStoppedAt: now.toISOString(),
        stoppedAt: now.toISOString(),
        updatedAt: now.toISOString(),
        lastStatus: "STOPPED",
        desiredStatus: "STOPPED",
        ...ESSENTIAL_CONTAINER_EXITED,
        version: (task.version ?? 1) + 3,
    };
}

/** The PutEvents entry ECS's event is (source aws.ecs, the task's ARN as its resource, on the default bus). */
export function taskStoppedEntry(task: Task, containerName: string, exitCode: number, now = new Date()) {
    return {
        Source: "aws.ecs",
        DetailType: "ECS Task State Change",
        Resources: task.taskArn ? [task.taskArn] : [],
        Detail: JSON.stringify(taskStoppedDetail(task, containerName, exitCode, now)),
        Time: now,
    };
}

/** Puts ECS's "task stopped" event of each task whose worker exited on the emulator's default bus. */
export class EcsEvents {
    /** Events put so far. */
    put = 0;
    private readonly pending = new Set<Promise<void>>();

    constructor(
        private readonly events: Pick<EventBridgeClient, "send">,
        private readonly containerName: string,
        private readonly log: (line: string) => void,
    ) {}

    /** Puts the event of `task`, whose worker exited with `exitCode`; never throws (a failure is logged). */
    taskStopped(task: Task, exitCode: number): Promise<void> {
        const p = this.emit(task, exitCode).finally(() => this.pending.delete(p));
        this.pending.add(p);
        return p;
    }

    /** Resolves once every event asked for so far has been put (or failed). */
    async idle(): Promise<void> {
        while (this.pending.size > 0) await Promise.all([...this.pending]);
    }

    private async emit(task: Task, exitCode: number): Promise<void> {
        try {
            const out = await this.events.send(new PutEventsCommand({ Entries: [taskStoppedEntry(task, this.containerName, exitCode)] }));
            if (out.FailedEntryCount) throw new Error(`${out.Entries?.[0]?.ErrorCode}: ${out.Entries?.[0]?.ErrorMessage}`);
            this.put++;
        } catch (e) {
            this.log(`could not emit ECS's task state change of ${task.taskArn}: ${e instanceof Error ? e.message : String(e)}`);
        }
    }
}
