/**
 * The launcher's endpoint in a local run: an HTTP stand-in in front of moto_server that forwards every request and
 * answers as AWS would where moto differs in what the launcher relies on, and counts the requests by operation:
 *  - ECS `DescribeClusters`: AWS reports `runningTasksCount` (tasks in RUNNING) and `pendingTasksCount` (tasks in
 *    PENDING) of the cluster (ECS API reference, Cluster); moto 5.2.1 updates them only for EC2 tasks placed on
 *    container instances and leaves 0 for Fargate tasks. The stand-in fills them from the cluster's tasks as moto
 *    describes them (ListTasks + DescribeTasks, made directly against moto and not counted).
 *  - DynamoDB: AWS applies a conditional write atomically; moto_server serves requests on threads and checks a
 *    ConditionExpression and writes the item without a lock between them, so two concurrent conditional writes can both
 *    pass. The stand-in forwards DynamoDB requests one at a time.
 * Everything else is forwarded unchanged.
 */
import { DescribeTasksCommand, ECSClient, ListTasksCommand } from "@aws-sdk/client-ecs";
import * as http from "http";
import { AddressInfo } from "net";

import { motoClientConfig } from "./moto";

export interface AwsStandIn {
    /** `http://127.0.0.1:<port>`: the launcher's AWS_ENDPOINT_URL. */
    endpoint: string;
    /** Requests forwarded so far, by `<service>:<operation>` (e.g. `ecs:RunTask`, `sqs:SendMessageBatch`). */
    calls: Map<string, number>;
    /** Requests of one service so far (e.g. "ecs"), or of all. */
    count(service?: string): number;
    stop(): Promise<void>;
}

/** The signing service (`.../<region>/<service>/aws4_request`) and operation (X-Amz-Target, or a query `Action`) of a request. */
export function operationOf(headers: http.IncomingHttpHeaders, url: string, body: string): { service: string; op: string } {
    const service = /Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\//.exec(String(headers.authorization ?? ""))?.[1] ?? "unknown";
    const target = String(headers["x-amz-target"] ?? "");
    const op = target ? target.slice(target.lastIndexOf(".") + 1) : new URLSearchParams(body).get("Action") ?? new URL(url, "http://x").searchParams.get("Action") ?? "unknown";
    return { service, op };
}

/** `runningTasksCount` / `pendingTasksCount` of a cluster as ECS reports them: its tasks whose lastStatus is RUNNING / PENDING. */
export async function taskCounts(ecs: ECSClient, cluster: string): Promise<{ running: number; pending: number }> {
    const arns: string[] = [];
    let nextToken: string | undefined;
    do {
        const page = await ecs.send(new ListTasksCommand({ cluster, nextToken }));
        arns.push(...(page.taskArns ?? []));
        nextToken = page.nextToken;
    } while (nextToken);
    let running = 0;
    let pending = 0;
    for (let i = 0; i < arns.length; i += 100) {
        for (const t of (await ecs.send(new DescribeTasksCommand({ cluster, tasks: arns.slice(i, i + 100) }))).tasks ?? []) {
            if (t.lastStatus === "RUNNING") running++;
            else if (t.lastStatus === "PENDING") pending++;
        }
    }
    return { running, pending };
}

export async function startAwsStandIn(motoEndpoint: string): Promise<AwsStandIn> {
    const ecs = new ECSClient({ ...motoClientConfig(motoEndpoint), maxAttempts: 3 });
    const calls = new Map<string, number>();
    let dynamodb: Promise<unknown> = Promise.resolve();
    const forward = async (req: http.IncomingMessage, body: Buffer) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !["host", "content-length", "connection"].includes(k)) headers[k] = String(v);
        const res = await fetch(motoEndpoint + req.url, { method: req.method, headers, ...(body.length > 0 ? { body } : {}) });
        return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
    };
    const server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (d) => chunks.push(d));
        req.on("end", async () => {
            const body = Buffer.concat(chunks);
            const { service, op } = operationOf(req.headers, req.url ?? "/", body.toString("utf8"));
            calls.set(`${service}:${op}`, (calls.get(`${service}:${op}`) ?? 0) + 1);
            try {
                let answer: Awaited<ReturnType<typeof forward>>;
                if (service === "dynamodb") {
                    const turn = dynamodb.then(() => forward(req, body));
                    dynamodb = turn.catch(() => undefined);
                    answer = await turn;
                } else {
                    answer = await forward(req, body);
                }
                if (service === "ecs" && op === "DescribeClusters" && answer.status === 200) {
                    const out = JSON.parse(answer.body.toString("utf8"));
                    for (const c of out.clusters ?? []) {
                        const n = await taskCounts(ecs, c.clusterArn);
                        c.runningTasksCount = n.running;
                        c.pendingTasksCount = n.pending;
                    }
                    answer.body = Buffer.from(JSON.stringify(out));
                }
                const headers: Record<string, string> = {};
                answer.headers.forEach((v, k) => {
                    if (!["content-length", "transfer-encoding", "connection", "content-encoding"].includes(k)) headers[k] = v;
                });
                res.writeHead(answer.status, { ...headers, "content-length": String(answer.body.length) });
                res.end(answer.body);
            } catch (e) {
                res.writeHead(502, { "content-type": "application/json" });
                res.end(JSON.stringify({ __type: "StandInError", message: String((e as Error)?.message ?? e) }));
            }
        });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return {
        endpoint,
        calls,
        count: (s?: string) => [...calls].filter(([k]) => s === undefined || k.startsWith(`${s}:`)).reduce((n, [, v]) => n + v, 0),
        stop: () =>
            new Promise<void>((resolve) => {
                server.closeAllConnections();
                server.close(() => resolve());
                ecs.destroy();
            }),
    };
}
