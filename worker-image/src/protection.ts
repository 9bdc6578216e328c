/**
 * ECS task scale-in protection through the container agent's endpoint, for tasks of an ECS service (service mode):
 * protected while the worker has a message in flight, so that scale-in stops only idle tasks; unprotected when idle,
 * so that idle tasks do get stopped. Standalone tasks (drain, per-job) answer TASK_NOT_VALID: the component enables
 * this only in service mode (TASK_PROTECTION=on).
 *
 * The agent's endpoint (ECS developer guide, "task scale-in protection endpoint"):
 *   PUT $ECS_AGENT_URI/task-protection/v1/state  {"ProtectionEnabled":true,"ExpiresInMinutes":N}  (N: 1..2880)
 *   → {"protection":{"ExpirationDate":..,"ProtectionEnabled":..,"TaskArn":..}}
 *   | {"failure":{"Arn":..,"Detail":..,"Reason":"TASK_NOT_VALID"}}
 *   | {"requestID":..,"error":{"Arn":..,"Code":"AccessDeniedException"|"ThrottlingException"|"RequestCanceled",..,"Message":..}}
 * The agent calls ecs:UpdateTaskProtection with the task role's credentials.
 *
 * Calls: one when the worker goes from idle to busy, one when it goes idle; while it stays busy, one more only when
 * the protection would expire before a job started now could finish. The expiry covers a whole job (JOB_TIMEOUT_SECONDS
 * plus a margin for download and upload). A failed call is logged; the job goes on (unprotected).
 */
import { errorMessage } from "./errors";
import { Logger } from "./log";

export interface ProtectionSettings {
    /** ECS_AGENT_URI (the agent injects it). */
    agentUri: string;
    /** Minutes each protection lasts (1..2880). */
    expiresInMinutes: number;
}

/** The agent's limits on ExpiresInMinutes. */
export const MAX_PROTECTION_MINUTES = 2880;
/** Minutes added to the job timeout (download, unpack, upload, settling). */
export const PROTECTION_MARGIN_MINUTES = 10;

/** The protection length covering one job: the job timeout plus the margin, in whole minutes, within the agent's limits. */
export function protectionMinutes(jobTimeoutSeconds: number): number {
    return Math.min(MAX_PROTECTION_MINUTES, Math.max(1, Math.ceil(jobTimeoutSeconds / 60) + PROTECTION_MARGIN_MINUTES));
}

type Env = Record<string, string | undefined>;

/**
 * TASK_PROTECTION: `on` / `true` / `1` enables it (service mode), unset / `off` / `false` / `0` not. Anything else is
 * a configuration error naming the variable. Enabled without ECS_AGENT_URI: undefined, with a log line.
 */
export function protectionFromEnv(env: Env, jobTimeoutSeconds: number, log: Logger): ProtectionSettings | undefined {
    const v = (env.TASK_PROTECTION ?? "").trim().toLowerCase();
    if (v === "" || v === "off" || v === "false" || v === "0") return undefined;
    if (v !== "on" && v !== "true" && v !== "1") throw new Error(`TASK_PROTECTION must be on or off (got ${JSON.stringify(env.TASK_PROTECTION)})`);
    const agentUri = (env.ECS_AGENT_URI ?? "").trim();
    if (agentUri === "") {
        log("task_protection_unavailable", { reason: "TASK_PROTECTION is on but ECS_AGENT_URI is not set (not an ECS task)" });
        return undefined;
    }
    return { agentUri: agentUri.replace(/\/+$/, ""), expiresInMinutes: protectionMinutes(jobTimeoutSeconds) };
}

/** What the agent answered, normalised. */
export type ProtectionAnswer =
    | { ok: true; enabled: boolean; expiresAt?: number }
    | { ok: false; reason: string };

/** Reads the agent's answer (status and body): `protection` is success; `failure`, `error` or anything else is not. */
export function parseProtectionAnswer(status: number, body: string): ProtectionAnswer {
    let json: any;
    try {
        json = JSON.parse(body);
    } catch {
        return { ok: false, reason: `HTTP ${status}: ${body.slice(0, 200) || "(empty body)"}` };
    }
    if (json?.failure) return { ok: false, reason: `failure ${json.failure.Reason ?? "?"}${json.failure.Detail ? `: ${json.failure.Detail}` : ""}` };
    if (json?.error) return { ok: false, reason: `error ${json.error.Code ?? "?"}: ${json.error.Message ?? ""}` };
    if (status >= 200 && status < 300 && json?.protection && typeof json.protection.ProtectionEnabled === "boolean") {
        const expiresAt = json.protection.ExpirationDate ? Date.parse(json.protection.ExpirationDate) : NaN;
        return { ok: true, enabled: json.protection.ProtectionEnabled, ...(Number.isFinite(expiresAt) && { expiresAt }) };
    }
    return { ok: false, reason: `HTTP ${status}: unexpected answer ${body.slice(0, 200)}` };
}

export interface TaskProtectionDeps {
    log: Logger;
    fetch?: typeof fetch;
    now?: () => number;
    /** Per call (default 5 s): a slow agent must not hold a job up. */
    timeoutMs?: number;
}

/** Busy/idle bookkeeping and the agent calls (serialized, so that a clear never overtakes a set). */
export class TaskProtection {
    private busyCount = 0;
    /** Epoch ms until which the agent confirmed protection; 0: not protected (as far as we know). */
    private protectedUntil = 0;
    private chain: Promise<void> = Promise.resolve();
    /** Agent calls made (for tests and the bench). */
    calls = 0;

    constructor(
        private readonly settings: ProtectionSettings,
        private readonly deps: TaskProtectionDeps,
    ) {}

    private now(): number {
        return (this.deps.now ?? Date.now)();
    }

    /** A message is in flight: make sure the task is protected for long enough to finish a job started now. */
    busy(): Promise<void> {
        this.busyCount++;
        return this.serial(async () => {
            if (this.busyCount === 0) return;
            const needed = this.now() + (this.settings.expiresInMinutes - PROTECTION_MARGIN_MINUTES / 2) * 60000;
            if (this.protectedUntil >= needed) return;
            await this.put(true);
        });
    }

    /** A message has settled: clear the protection once nothing is in flight. */
    idle(): Promise<void> {
        this.busyCount = Math.max(0, this.busyCount - 1);
        return this.serial(async () => {
            if (this.busyCount > 0 || this.protectedUntil === 0) return;
            await this.put(false);
        });
    }

    private serial(fn: () => Promise<void>): Promise<void> {
        const next = this.chain.then(fn, fn);
        this.chain = next.catch(() => undefined);
        return next.catch(() => undefined);
    }

    private async put(enabled: boolean): Promise<void> {
        const body = enabled ? { ProtectionEnabled: true, ExpiresInMinutes: this.settings.expiresInMinutes } : { ProtectionEnabled: false };
        const started = this.now();
        let answer: ProtectionAnswer;
        this.calls++;
        try {
            const res = await (this.deps.fetch ?? fetch)(`${this.settings.agentUri}/task-protection/v1/state`, {
                method: "PUT",
                headers: { "Content-Type": "application/json" },
                body: JSON.stringify(body),
                signal: AbortSignal.timeout(this.deps.timeoutMs ?? 5000),
            });
            answer = parseProtectionAnswer(res.status, await res.text());
        } catch (err) {
            answer = { ok: false, reason: errorMessage(err) };
        }
        if (!answer.ok) {
            // Unknown state: a set is tried again at the next job; a clear is tried again at the next idle.
            if (enabled) this.protectedUntil = 0;
            this.deps.log("task_protection_failed", { protectionEnabled: enabled, reason: answer.reason });
            return;
        }
        this.protectedUntil = answer.enabled ? (answer.expiresAt ?? started + this.settings.expiresInMinutes * 60000) : 0;
        this.deps.log("task_protection", {
            protectionEnabled: answer.enabled,
            ...(answer.enabled && { expiresInMinutes: this.settings.expiresInMinutes, expiresAt: new Date(this.protectedUntil).toISOString() }),
        });
    }
}
