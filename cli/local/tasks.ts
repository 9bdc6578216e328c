/**
 * The ECS tasks of the run: every task the launcher starts in the emulator (RunTask) gets a worker of its own
 * (podman container or local process, see runners.ts) with the environment ECS would give its container; when the
 * worker exits, the task is stopped in the emulator and the exit is reported to `onExit` listeners. In launchMode
 * "service" this also stands in for the ECS service's queue-depth scaling.
 */
import { DescribeServicesCommand, DescribeTasksCommand, ECSClient, ListTasksCommand, RunTaskCommand, StopTaskCommand, Task } from "@aws-sdk/client-ecs";
import * as path from "path";

import { Runner, RunningTask } from "./runners";

type Env = Record<string, string>;
const pairs = (list: any): Env => Object.fromEntries((list ?? []).map((e: any) => [e.name, e.value]));

/** A container definition's environment, each fake value of the mocks replaced by the emulator's (`[fake, real]`). */
export function containerEnvironment(container: any, replacements: [string, string][]): Env {
    const env = pairs(JSON.parse(JSON.stringify(container))?.environment);
    for (const [from, to] of replacements) for (const k of Object.keys(env)) env[k] = env[k].split(from).join(to);
    return env;
}

/** A task's container environment: the definition's, then RunTask's container overrides, then `fixed` (endpoint, credentials...). */
export function taskEnvironment(base: Env, overrides: any, containerName: string, fixed: Env): Env {
    const ov = (overrides?.containerOverrides ?? []).find((x: any) => x.name === containerName);
    return { ...base, ...pairs(ov?.environment), ...fixed };
}

/** The short task id: the last part of the task ARN. */
export function taskIdOf(arn: string): string {
    return arn.slice(arn.lastIndexOf("/") + 1);
}

/**
 * Tasks to start for launchMode "service" (the service scaling on queue depth): none while no job waits; else up to
 * maxTasks (1 when unset) for the jobs waiting or held, minus the tasks running, at most 10 per RunTask.
 */
export function serviceTasksWanted(maxTasks: string | undefined, visible: number, inFlight: number, running: number): number {
    if (visible === 0) return 0;
    const want = Math.min(Number(maxTasks) || 1, visible + inFlight) - running;
    return want <= 0 ? 0 : Math.min(10, want);
}

export interface TaskExit {
    arn: string;
    id: string;
    code: number;
    /** Whether the run was already stopping (the exit was asked for). */
    stopping: boolean;
    /** Whether the worker had taken a job before it exited (true when the runner cannot tell). */
    tookJob: boolean;
    /** The last lines of its stderr, when the runner keeps them. */
    stderr: string[];
}

export interface FleetDeps {
    ecs: Pick<ECSClient, "send">;
    clusterArn: string;
    runner: Runner;
    /** The task definition's (only) container definition. */
    container: any;
    /** Its environment with emulator values. */
    containerEnv: Env;
    /** Set last in every task's environment (emulator endpoint, credentials, WORKER_WAIT_SECONDS). */
    fixedEnv: Env;
    logsDir: string;
    log: (line: string) => void;
    /** The running tasks by ARN; shared with Cleanup, which stops them on exit. */
    tasks: Map<string, RunningTask>;
    /** True once the run stops: no new worker starts, exits are not logged. */
    stopping: () => boolean;
    /**
     * launchMode "service": how long jobs wait with no task running before the CloudWatch path (the scale-out alarm on
     * SQS's once-a-minute metrics) starts one. 0: at once.
     * @default 0
     */
    serviceAlarmDelayMs?: number;
    now?: () => number;
}

/**
 * Service mode's task starts, as AWS would make them: the launcher's wake (it raised the service's desiredCount: ECS
 * starts the missing tasks at once) and, without it, the CloudWatch path (queue-depth alarms, only after
 * `alarmDelayMs` of jobs waiting with no task).
 */
export function serviceTasksToStart(p: {
    maxTasks: string | undefined;
    visible: number;
    inFlight: number;
    running: number;
    /** The service's desiredCount in the emulator (undefined: no such service there). */
    desired?: number;
    /** Ms jobs have been waiting with no task running (0 when a task runs or nothing waits). */
    waitingMs: number;
    alarmDelayMs: number;
}): { count: number; by: "wake" | "alarm" | "none" } {
    const max = Number(p.maxTasks) || 1;
    const wake = p.desired === undefined ? 0 : Math.max(0, Math.min(10, Math.min(max, p.desired) - p.running));
    const alarm = p.running === 0 && p.waitingMs < p.alarmDelayMs ? 0 : serviceTasksWanted(p.maxTasks, p.visible, p.inFlight, p.running);
    if (wake === 0 && alarm === 0) return { count: 0, by: "none" };
    return wake >= alarm ? { count: wake, by: "wake" } : { count: alarm, by: "alarm" };
}

export class TaskFleet {
    /** Workers started so far. */
    started = 0;
    /** Service mode: when jobs first waited with no task running, and when the first service task was requested (and by what). */
    firstWaitingAt?: number;
    firstServiceTask?: { at: number; by: "wake" | "alarm" };
    private waitingSince?: number;
    /** Each task seen, as the emulator described it (ECS's task state change events carry it). */
    private readonly described = new Map<string, Task>();
    private readonly exitListeners: ((e: TaskExit) => void)[] = [];

    constructor(private readonly d: FleetDeps) {}

    get running(): number {
        return this.d.tasks.size;
    }

    /** The task as the emulator described it when its worker started (undefined: not started by poll()). */
    describedTask(arn: string): Task | undefined {
        return this.described.get(arn);
    }

    /** Called with every worker's exit, after the task is stopped in the emulator. */
    onExit(listener: (e: TaskExit) => void): void {
        this.exitListeners.push(listener);
    }

    /** Starts a worker for every RUNNING task of the cluster not seen before. */
    async poll(): Promise<void> {
        const { ecs, clusterArn } = this.d;
        const arns: string[] = [];
        let nextToken: string | undefined;
        do {
            const page = await ecs.send(new ListTasksCommand({ cluster: clusterArn, desiredStatus: "RUNNING", nextToken }));
            arns.push(...(page.taskArns ?? []));
            nextToken = page.nextToken;
        } while (nextToken);
        const fresh = arns.filter((a) => !this.described.has(a));
        for (let i = 0; i < fresh.length; i += 100) {
            const desc = await ecs.send(new DescribeTasksCommand({ cluster: clusterArn, tasks: fresh.slice(i, i + 100) }));
            for (const t of desc.tasks ?? []) {
                if (this.described.has(t.taskArn!)) continue;
                this.described.set(t.taskArn!, t);
                if (!this.d.stopping()) this.start(t.taskArn!, t.overrides);
            }
        }
    }

    /** A worker for one task; StopTask in the emulator when it exits. */
    start(arn: string, overrides: any): RunningTask {
        const { runner, container, logsDir, log, tasks } = this.d;
        const id = taskIdOf(arn);
        const env = taskEnvironment(this.d.containerEnv, overrides, container.name, this.d.fixedEnv);
        const t = runner.start({ id, env, container }, path.join(logsDir, `task-${id}.log`));
        tasks.set(arn, t);
        this.started++;
        log(`task ${id} started (${runner.kind}${t.pid ? ` pid ${t.pid}` : ""})`);
        t.exited.then(async (code) => {
            tasks.delete(arn);
            const stopping = this.d.stopping();
            if (!stopping) log(`task ${id} exited with ${code}`);
            await this.d.ecs.send(new StopTaskCommand({ cluster: this.d.clusterArn, task: arn, reason: `worker exited with ${code}` })).catch(() => undefined);
            for (const l of this.exitListeners) {
                try {
                    l({ arn, id, code, stopping, tookJob: t.tookJob?.() ?? true, stderr: t.stderrTail?.() ?? [] });
                } catch (e) {
                    log(`task ${id}: exit listener failed: ${e instanceof Error ? e.message : String(e)}`);
                }
            }
        });
        return t;
    }

    /** The service's desiredCount in the emulator; undefined when there is no such service there. */
    async serviceDesiredCount(serviceName: string): Promise<number | undefined> {
        const out = await this.d.ecs.send(new DescribeServicesCommand({ cluster: this.d.clusterArn, services: [serviceName] })).catch(() => undefined);
        return out?.services?.[0]?.desiredCount;
    }

    /**
     * launchMode "service": RunTask (startedBy ecs-svc/local) for the tasks serviceTasksToStart asks for: the launcher's
     * wake (the service's desiredCount, when `serviceName` names a service in the emulator) at once, the queue-depth
     * alarms' after `serviceAlarmDelayMs`.
     */
    async scaleService(
        s: { taskDefinitionArn: string; subnets: string[]; securityGroups: string[]; maxTasks?: string; serviceName?: string },
        visible: number,
        inFlight: number,
    ): Promise<void> {
        const now = (this.d.now ?? Date.now)();
        const waiting = visible > 0 && this.running === 0;
        this.waitingSince = waiting ? (this.waitingSince ?? now) : undefined;
        if (waiting) this.firstWaitingAt ??= now;
        const desired = s.serviceName ? await this.serviceDesiredCount(s.serviceName) : undefined;
        const { count, by } = serviceTasksToStart({
            maxTasks: s.maxTasks,
            visible,
            inFlight,
            running: this.running,
            desired,
            waitingMs: this.waitingSince === undefined ? 0 : now - this.waitingSince,
            alarmDelayMs: this.d.serviceAlarmDelayMs ?? 0,
        });
        if (count === 0) return;
        if (by !== "none") this.firstServiceTask ??= { at: now, by };
        await this.d.ecs.send(
            new RunTaskCommand({
                cluster: this.d.clusterArn,
                taskDefinition: s.taskDefinitionArn,
                count,
                launchType: "FARGATE",
                startedBy: "ecs-svc/local",
                networkConfiguration: { awsvpcConfiguration: { subnets: s.subnets, securityGroups: s.securityGroups, assignPublicIp: "ENABLED" } },
            }),
        );
    }
}
