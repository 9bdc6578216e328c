/**
 * What IAM sees of an HTTP request: the pure mapping from one recorded AWS API request (method, URL, headers, body)
 * to the authorizations AWS evaluates for it — action, resource ARN in AWS's format, request context keys — following
 * the Service Authorization Reference and each service's documented authorization of the call. Table-tested in
 * test/iam-units.test.ts; used by test/iam.test.ts on the requests moto_server recorded.
 *
 * One request may need several authorizations: RunTask also passes the task definition's roles (iam:PassRole with
 * iam:PassedToService) and, when the new task gets tags, tags it (ecs:TagResource with ecs:CreateAction); a batch
 * call is authorized as its single-message action (SendMessageBatch → sqs:SendMessage).
 *
 * Calls AWS authorizes on `*` are mapped to resource `"*"`: ecr:GetAuthorizationToken (no resource type), and
 * ecs:ListTasks without `containerInstance` ("not authorized to perform: ecs:ListTasks on resource: *": only a
 * ListTasks naming a container instance is authorized on that instance's ARN).
 *
 * ECS's service calls (DescribeServices, UpdateService) are authorized on `service/<cluster>/<service>`, one per
 * service named; UpdateTaskProtection (which the ECS agent makes with the task role) on each task's
 * `task/<cluster>/<task id>`; all with `ecs:cluster`.
 */

/** One HTTP request as moto's recorder (or an SDK middleware) saw it. */
export interface HttpRequest {
    method: string;
    /** Full URL, scheme included (the scheme decides aws:SecureTransport). */
    url: string;
    /** Header names in any case. */
    headers: Record<string, string>;
    /** Decoded body text ("" when none). */
    body: string;
}

/** One authorization AWS evaluates for a request. */
export interface IamRequest {
    action: string;
    /** Resource ARN, or "*" for a call AWS authorizes on `*`. */
    resource: string;
    context: Record<string, string | string[]>;
    /** Human-readable origin, e.g. "SQS SendMessageBatch". */
    call: string;
}

/** What the mapping needs to know about the account (taken from the stack under test, never from the request). */
export interface IamWorld {
    partition: string;
    region: string;
    accountId: string;
    /** Task definitions by ARN (with revision): the roles RunTask passes and whether the task definition has tags. */
    taskDefinitions: Record<string, { taskRoleArn?: string; executionRoleArn?: string; tagged: boolean }>;
}

/** The access key id of a SigV4-signed request (from `Authorization: AWS4-HMAC-SHA256 Credential=<id>/...`). */
export function accessKeyOf(req: HttpRequest): string | undefined {
    return /Credential=([^/,\s]+)\//.exec(header(req, "authorization") ?? "")?.[1];
}

/** The signing service of a SigV4-signed request (`.../<region>/<service>/aws4_request`). */
export function signingServiceOf(req: HttpRequest): string | undefined {
    return /Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\/aws4_request/.exec(header(req, "authorization") ?? "")?.[1];
}

function header(req: HttpRequest, name: string): string | undefined {
    const k = Object.keys(req.headers).find((h) => h.toLowerCase() === name);
    return k === undefined ? undefined : req.headers[k];
}

function jsonBody(req: HttpRequest): any {
    if (req.body.trim() === "") return {};
    try {
        return JSON.parse(req.body);
    } catch {
        throw new Error(`request body is not JSON: ${req.body.slice(0, 200)}`);
    }
}

/** The operation named by X-Amz-Target (`AmazonSQS.SendMessage` → `SendMessage`) or a query-protocol `Action`. */
function operationOf(req: HttpRequest): string {
    const target = header(req, "x-amz-target");
    if (target) return target.slice(target.lastIndexOf(".") + 1);
    const action = new URLSearchParams(req.body).get("Action") ?? new URL(req.url).searchParams.get("Action");
    if (action) return action;
    throw new Error(`${req.method} ${req.url}: no X-Amz-Target or Action`);
}

/** Request parameters of a JSON-protocol or query-protocol request. */
function paramsOf(req: HttpRequest): any {
    if (header(req, "x-amz-target")) return jsonBody(req);
    return Object.fromEntries(new URLSearchParams(req.body));
}

/** The ARN of a queue URL (`https://host/<account>/<name>`). */
export function queueArnFromUrl(queueUrl: string, w: Pick<IamWorld, "partition" | "region">): string {
    const parts = new URL(queueUrl).pathname.split("/").filter((p) => p !== "");
    if (parts.length !== 2 || !/^\d{12}$/.test(parts[0])) throw new Error(`not a queue URL: ${queueUrl}`);
    return `arn:${w.partition}:sqs:${w.region}:${parts[0]}:${parts[1]}`;
}

const SQS_ACTIONS: Record<string, string> = {
    SendMessage: "sqs:SendMessage",
    SendMessageBatch: "sqs:SendMessage",
    ReceiveMessage: "sqs:ReceiveMessage",
    DeleteMessage: "sqs:DeleteMessage",
    DeleteMessageBatch: "sqs:DeleteMessage",
    ChangeMessageVisibility: "sqs:ChangeMessageVisibility",
    ChangeMessageVisibilityBatch: "sqs:ChangeMessageVisibility",
    GetQueueAttributes: "sqs:GetQueueAttributes",
    GetQueueUrl: "sqs:GetQueueUrl",
};

function secureTransport(req: HttpRequest): Record<string, string> {
    return { "aws:SecureTransport": new URL(req.url).protocol === "https:" ? "true" : "false" };
}

function sqs(req: HttpRequest, w: IamWorld): IamRequest[] {
    const op = operationOf(req);
    const action = SQS_ACTIONS[op];
    if (!action) throw new Error(`unmapped SQS operation ${op}`);
    const p = paramsOf(req);
    if (typeof p.QueueUrl !== "string") throw new Error(`SQS ${op} without QueueUrl`);
    return [{ action, resource: queueArnFromUrl(p.QueueUrl, w), context: secureTransport(req), call: `SQS ${op}` }];
}

function ecsArn(w: IamWorld, what: string): string {
    return `arn:${w.partition}:ecs:${w.region}:${w.accountId}:${what}`;
}

/** A cluster given by name or ARN (ECS's `default` cluster when omitted), as its ARN and name. */
function cluster(w: IamWorld, given: unknown): { arn: string; name: string } {
    const v = typeof given === "string" && given !== "" ? given : "default";
    if (v.startsWith("arn:")) return { arn: v, name: v.slice(v.indexOf("cluster/") + "cluster/".length) };
    return { arn: ecsArn(w, `cluster/${v}`), name: v };
}

/** A service given by name or ARN, as its ARN (`service/<cluster>/<name>`, the Service Authorization Reference's format). */
function serviceArn(w: IamWorld, clusterName: string, given: string): string {
    if (given === "") throw new Error("ECS service call without a service");
    return given.startsWith("arn:") ? given : ecsArn(w, `service/${clusterName}/${given}`);
}

function ecs(req: HttpRequest, w: IamWorld): IamRequest[] {
    const op = operationOf(req);
    const p = jsonBody(req);
    const c = cluster(w, p.cluster);
    const ctx = { ...secureTransport(req), "ecs:cluster": c.arn };
    const call = `ECS ${op}`;
    switch (op) {
        case "ListTasks":
            // Only a ListTasks naming a container instance is authorized on a resource; any other on "*".
            return [
                {
                    action: "ecs:ListTasks",
                    resource: typeof p.containerInstance === "string" && p.containerInstance !== ""
                        ? p.containerInstance.startsWith("arn:") ? p.containerInstance : ecsArn(w, `container-instance/${c.name}/${p.containerInstance}`)
                        : "*",
                    context: ctx,
                    call,
                },
            ];
        case "DescribeClusters":
            // One authorization per cluster named (name or ARN), on the cluster (Service Authorization Reference).
            return (p.clusters ?? ["default"]).map((given: string) => ({ action: "ecs:DescribeClusters", resource: cluster(w, given).arn, context: secureTransport(req), call }));
        case "DescribeTasks":
            return (p.tasks ?? []).map((t: string) => ({
                action: "ecs:DescribeTasks",
                resource: t.startsWith("arn:") ? t : ecsArn(w, `task/${c.name}/${t}`),
                context: ctx,
                call,
            }));
        case "RunTask": {
            const td = String(p.taskDefinition ?? "");
            const tdArn = td.startsWith("arn:") ? td : ecsArn(w, `task-definition/${td}`);
            const def = w.taskDefinitions[tdArn];
            if (!def) throw new Error(`RunTask of an unknown task definition ${tdArn} (name it with its revision)`);
            const context: Record<string, string | string[]> = { ...ctx };
            const providers = (p.capacityProviderStrategy ?? []).map((s: any) => String(s.capacityProvider));
            if (providers.length > 0) context["ecs:capacity-provider"] = providers;
            const tags: { key: string; value: string }[] = p.tags ?? [];
            for (const t of tags) context[`aws:RequestTag/${t.key}`] = t.value;
            if (tags.length > 0) context["aws:TagKeys"] = tags.map((t) => t.key);
            const out: IamRequest[] = [{ action: "ecs:RunTask", resource: tdArn, context, call }];
            const roles = [
                p.overrides?.taskRoleArn ?? def.taskRoleArn,
                p.overrides?.executionRoleArn ?? def.executionRoleArn,
            ].filter((r): r is string => typeof r === "string" && r !== "");
            for (const role of roles) {
                out.push({
                    action: "iam:PassRole",
                    resource: role,
                    context: { ...secureTransport(req), "iam:PassedToService": "ecs-tasks.amazonaws.com" },
                    call,
                });
            }
            // Tags given, or propagated from a tagged task definition: ECS tags the new task on the caller's behalf.
            if (tags.length > 0 || (p.propagateTags === "TASK_DEFINITION" && def.tagged)) {
                out.push({
                    action: "ecs:TagResource",
                    resource: ecsArn(w, `task/${c.name}/new-task`),
                    context: { ...secureTransport(req), "ecs:CreateAction": "RunTask" },
                    call,
                });
            }
            return out;
        }
        case "DescribeServices":
            // One authorization per service named (name or ARN), on service/<cluster>/<name>.
            return (p.services ?? []).map((sv: string) => ({ action: "ecs:DescribeServices", resource: serviceArn(w, c.name, sv), context: ctx, call }));
        case "UpdateService": {
            const context: Record<string, string | string[]> = { ...ctx };
            const providers = (p.capacityProviderStrategy ?? []).map((s: any) => String(s.capacityProvider));
            if (providers.length > 0) context["ecs:capacity-provider"] = providers;
            if (typeof p.taskDefinition === "string" && p.taskDefinition !== "") {
                context["ecs:task-definition"] = p.taskDefinition.startsWith("arn:") ? p.taskDefinition : ecsArn(w, `task-definition/${p.taskDefinition}`);
            }
            return [{ action: "ecs:UpdateService", resource: serviceArn(w, c.name, String(p.service ?? "")), context, call }];
        }
        case "UpdateTaskProtection":
            // The ECS agent's call for a task's own PUT $ECS_AGENT_URI/task-protection/v1/state: one authorization per task.
            return (p.tasks ?? []).map((t: string) => ({
                action: "ecs:UpdateTaskProtection",
                resource: t.startsWith("arn:") ? t : ecsArn(w, `task/${c.name}/${t}`),
                context: ctx,
                call,
            }));
        default:
            throw new Error(`unmapped ECS operation ${op}`);
    }
}

/** Bucket and key of an S3 request, path-style (`/bucket/key`) or virtual-hosted (`bucket.s3.<region>...`). */
function s3Location(u: URL): { bucket: string; key: string } {
    const path = u.pathname.slice(1);
    const virtual = /^(.+)\.s3[.-]/.exec(u.hostname);
    if (virtual) return { bucket: virtual[1], key: decodeURIComponent(path) };
    const slash = path.indexOf("/");
    return slash < 0
        ? { bucket: decodeURIComponent(path), key: "" }
        : { bucket: decodeURIComponent(path.slice(0, slash)), key: decodeURIComponent(path.slice(slash + 1)) };
}

/** The multipart calls by method and subresources (sorted): the action each is authorized as. */
const MULTIPART: Record<string, { call: string; action: string }> = {
    "POST uploads": { call: "CreateMultipartUpload", action: "s3:PutObject" },
    "PUT partNumber&uploadId": { call: "UploadPart", action: "s3:PutObject" },
    "POST uploadId": { call: "CompleteMultipartUpload", action: "s3:PutObject" },
    "DELETE uploadId": { call: "AbortMultipartUpload", action: "s3:AbortMultipartUpload" },
};

function s3(req: HttpRequest, w: IamWorld): IamRequest[] {
    const u = new URL(req.url);
    const { bucket, key } = s3Location(u);
    const sub = [...u.searchParams.keys()].filter((k) => !k.startsWith("x-id") && !k.startsWith("x-amz-"));
    const ctx: Record<string, string | string[]> = { ...secureTransport(req) };
    const sse = header(req, "x-amz-server-side-encryption");
    if (sse) ctx["s3:x-amz-server-side-encryption"] = sse;
    const method = req.method.toUpperCase();
    const object = `arn:${w.partition}:s3:::${bucket}/${key}`;
    const call = `S3 ${method} ${key === "" ? bucket : "object"}`;
    if (key === "") {
        if (method === "GET" && (sub.length === 0 || sub.includes("list-type") || sub.includes("prefix"))) {
            const prefix = u.searchParams.get("prefix");
            return [{ action: "s3:ListBucket", resource: `arn:${w.partition}:s3:::${bucket}`, context: { ...ctx, ...(prefix !== null ? { "s3:prefix": prefix } : {}) }, call }];
        }
        throw new Error(`unmapped S3 bucket request ${method} ${u.pathname}${u.search}`);
    }
    if (sub.length > 0) {
        // A multipart upload (S3 API Reference; Service Authorization Reference: Create, UploadPart and Complete are
        // authorized as s3:PutObject, Abort as s3:AbortMultipartUpload, on the object).
        const op = MULTIPART[`${method} ${[...sub].sort().join("&")}`];
        if (op === undefined || header(req, "x-amz-copy-source")) throw new Error(`unmapped S3 object subresource ${method} ${u.pathname}?${sub.join("&")}`);
        return [{ action: op.action, resource: object, context: ctx, call: `S3 ${op.call}` }];
    }
    switch (method) {
        case "GET":
        case "HEAD":
            return [{ action: "s3:GetObject", resource: object, context: ctx, call }];
        case "PUT": {
            const out: IamRequest[] = [{ action: "s3:PutObject", resource: object, context: ctx, call }];
            const source = header(req, "x-amz-copy-source");
            if (source) {
                const s = decodeURIComponent(source.replace(/^\//, "").split("?")[0]);
                out.push({ action: "s3:GetObject", resource: `arn:${w.partition}:s3:::${s}`, context: ctx, call: "S3 copy source" });
            }
            return out;
        }
        case "DELETE":
            return [{ action: "s3:DeleteObject", resource: object, context: ctx, call }];
        default:
            throw new Error(`unmapped S3 request ${method} ${u.pathname}`);
    }
}

function logs(req: HttpRequest, w: IamWorld): IamRequest[] {
    const op = operationOf(req);
    const p = jsonBody(req);
    const group = `arn:${w.partition}:logs:${w.region}:${w.accountId}:log-group:${p.logGroupName}`;
    switch (op) {
        case "CreateLogStream":
        case "PutLogEvents":
            return [{ action: `logs:${op}`, resource: `${group}:log-stream:${p.logStreamName}`, context: secureTransport(req), call: `Logs ${op}` }];
        default:
            throw new Error(`unmapped CloudWatch Logs operation ${op}`);
    }
}

function ecr(req: HttpRequest, w: IamWorld): IamRequest[] {
    const op = operationOf(req);
    const p = jsonBody(req);
    const call = `ECR ${op}`;
    if (op === "GetAuthorizationToken") return [{ action: "ecr:GetAuthorizationToken", resource: "*", context: secureTransport(req), call }];
    if (["BatchGetImage", "GetDownloadUrlForLayer", "BatchCheckLayerAvailability"].includes(op)) {
        const account = p.registryId ?? w.accountId;
        return [{ action: `ecr:${op}`, resource: `arn:${w.partition}:ecr:${w.region}:${account}:repository/${p.repositoryName}`, context: secureTransport(req), call }];
    }
    throw new Error(`unmapped ECR operation ${op}`);
}

function events(req: HttpRequest, w: IamWorld): IamRequest[] {
    const op = operationOf(req);
    if (op !== "PutEvents") throw new Error(`unmapped EventBridge operation ${op}`);
    // One authorization per entry: on its event bus (by name or ARN, "default" when omitted), with its source and type.
    return (jsonBody(req).Entries ?? []).map((e: any) => {
        const bus = typeof e.EventBusName === "string" && e.EventBusName !== "" ? e.EventBusName : "default";
        return {
            action: "events:PutEvents",
            resource: bus.startsWith("arn:") ? bus : `arn:${w.partition}:events:${w.region}:${w.accountId}:event-bus/${bus}`,
            context: { ...secureTransport(req), "events:source": String(e.Source), "events:detail-type": String(e.DetailType) },
            call: "EventBridge PutEvents",
        };
    });
}

function dynamodb(req: HttpRequest, w: IamWorld): IamRequest[] {
    const op = operationOf(req);
    const p = jsonBody(req);
    const actions: Record<string, string> = { UpdateItem: "dynamodb:UpdateItem", GetItem: "dynamodb:GetItem", PutItem: "dynamodb:PutItem" };
    if (!actions[op]) throw new Error(`unmapped DynamoDB operation ${op}`);
    if (typeof p.TableName !== "string" || p.TableName === "") throw new Error(`DynamoDB ${op} without TableName`);
    const resource = p.TableName.startsWith("arn:") ? p.TableName : `arn:${w.partition}:dynamodb:${w.region}:${w.accountId}:table/${p.TableName}`;
    return [{ action: actions[op], resource, context: secureTransport(req), call: `DynamoDB ${op}` }];
}

const SERVICES: Record<string, (req: HttpRequest, w: IamWorld) => IamRequest[]> = { sqs, ecs, s3, logs, ecr, events, dynamodb };

/** Every authorization AWS evaluates for one request; throws naming the request when it is not mapped. */
export function iamRequestsFor(req: HttpRequest, w: IamWorld): IamRequest[] {
    const service = signingServiceOf(req);
    const map = service === undefined ? undefined : SERVICES[service];
    if (!map) throw new Error(`unmapped AWS service ${JSON.stringify(service)}: ${req.method} ${req.url}`);
    return map(req, w);
}
