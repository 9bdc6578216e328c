/**
 * Everything `npm run local` must undo on exit, whatever the reason (normal end, error, SIGINT/SIGTERM): the worker
 * tasks, the launcher process, the emulator, stray processes of the run and its temp dirs. One instance per process
 * (`cleanup`), shared by the run and the CLI's signal handlers.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";

import type { RunningTask } from "./runners";

/** What Cleanup stops: a worker task, the launcher process, the emulator. */
export interface Stoppable {
    stop(): Promise<unknown>;
    killNow(): void;
}

export class Cleanup {
    /** Set on SIGINT/SIGTERM: the run loop stops and reports unfinished jobs as "interrupted". */
    interrupted?: string;
    moto?: Stoppable;
    launcher?: Stoppable;
    /** The running worker tasks by ARN. */
    tasks = new Map<string, RunningTask>();
    /** Temp dirs of the run (launcher code, local workers' scratch), removed last. */
    dirs: string[] = [];
    /**
     * Text in the command line of every process of the run (the run's temp dir prefix): a worker killed outright
     * leaves its POV-Ray (its own process group) behind, and this finds it.
     */
    marker?: string;
    private done?: Promise<void>;

    /** Stops everything once (tasks first, then the launcher, then the emulator); later calls get the same promise. */
    run(): Promise<void> {
        this.done ??= (async () => {
            await Promise.all([...this.tasks.values()].map((t) => t.stop(5).catch(() => undefined)));
            await this.launcher?.stop().catch(() => undefined);
            await this.moto?.stop().catch(() => undefined);
            this.killStragglers();
            this.removeDirs();
        })();
        return this.done;
    }

    /** Synchronous last resort (process 'exit'): kill what is still alive. */
    killNow(): void {
        for (const t of this.tasks.values()) t.killNow();
        this.launcher?.killNow();
        this.moto?.killNow();
        this.killStragglers();
        this.removeDirs();
    }

    private killStragglers(): void {
        if (this.marker) spawnSync("pkill", ["-KILL", "-f", this.marker], { stdio: "ignore" });
    }

    private removeDirs(): void {
        for (const d of this.dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
    }
}

export const cleanup = new Cleanup();
