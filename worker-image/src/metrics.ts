/**
 * Metrics as CloudWatch Embedded Metric Format (EMF) log lines: one JSON object per line on stdout, which the awslogs
 * driver ships to CloudWatch Logs, where CloudWatch extracts the metrics (no cloudwatch:PutMetricData permission; the
 * `x-amzn-logs-format: json/emf` header is optional, per CloudWatch's PutLogEvents EMF page).
 *
 * Shape (CloudWatch EMF specification):
 *   { "_aws": { "Timestamp": <epoch ms>, "CloudWatchMetrics": [ { "Namespace": ..., "Dimensions": [[...names]],
 *     "Metrics": [ { "Name": ..., "Unit": ... } ] } ] }, "<dimension>": "<value>", "<metric>": <number>, ... }
 *
 * Names (the dashboard and alarms read these; keep in sync with worker-image/README.md):
 *   namespace  METRICS_NAMESPACE (default "LambdaEcsWorker")
 *   dimension  Worker = WORKER_NAME; JobsFailed also per Worker + FailureClass
 *   metrics    JobSeconds (Seconds), JobsSucceeded (Count), JobsFailed (Count), BytesIn (Bytes), BytesOut (Bytes)
 */

/** Default CloudWatch namespace of the worker's (and the launcher's) metrics. */
export const DEFAULT_METRICS_NAMESPACE = "LambdaEcsWorker";

/** Metric and dimension names. */
export const METRIC = {
    jobSeconds: "JobSeconds",
    jobsSucceeded: "JobsSucceeded",
    jobsFailed: "JobsFailed",
    bytesIn: "BytesIn",
    bytesOut: "BytesOut",
} as const;

export const DIMENSION = { worker: "Worker", failureClass: "FailureClass" } as const;

/** CloudWatch's StandardUnit values used here. */
export type MetricUnit = "Seconds" | "Count" | "Bytes" | "Milliseconds" | "None";

export interface MetricValue {
    name: string;
    unit: MetricUnit;
    value: number;
}

/** One metric directive: these metrics, published under each of these dimension sets. */
export interface MetricDirective {
    dimensions: string[][];
    metrics: MetricValue[];
}

/**
 * One EMF record: `dimensionValues` (every dimension named by a directive must have a value) and the metric values
 * become root members; `properties` are extra root members (searchable in Logs Insights, not metrics).
 */
export function emfRecord(
    namespace: string,
    dimensionValues: Record<string, string>,
    directives: MetricDirective[],
    timestampMs: number,
    properties: Record<string, unknown> = {},
): Record<string, unknown> {
    const values: Record<string, number> = {};
    for (const d of directives) for (const m of d.metrics) values[m.name] = m.value;
    return {
        ...properties,
        _aws: {
            Timestamp: Math.floor(timestampMs),
            CloudWatchMetrics: directives.map((d) => ({
                Namespace: namespace,
                Dimensions: d.dimensions,
                Metrics: d.metrics.map((m) => ({ Name: m.name, Unit: m.unit })),
            })),
        },
        ...dimensionValues,
        ...values,
    };
}

/** How a job ended, for its metrics. */
export interface JobMetrics {
    worker: string;
    succeeded: boolean;
    /** Failed jobs: permanent | timeout | transient | interrupted. */
    failureClass?: string;
    seconds: number;
    bytesIn: number;
    bytesOut: number;
    /** Extra root members (e.g. bucket, key, jobId) for Logs Insights. */
    properties?: Record<string, unknown>;
}

/** The EMF record of one finished job. */
export function jobMetricsRecord(namespace: string, m: JobMetrics, timestampMs = Date.now()): Record<string, unknown> {
    const common: MetricValue[] = [
        { name: METRIC.jobSeconds, unit: "Seconds", value: Math.max(0, m.seconds) },
        { name: m.succeeded ? METRIC.jobsSucceeded : METRIC.jobsFailed, unit: "Count", value: 1 },
        { name: METRIC.bytesIn, unit: "Bytes", value: Math.max(0, m.bytesIn) },
        { name: METRIC.bytesOut, unit: "Bytes", value: Math.max(0, m.bytesOut) },
    ];
    const directives: MetricDirective[] = [{ dimensions: [[DIMENSION.worker]], metrics: common }];
    const dims: Record<string, string> = { [DIMENSION.worker]: m.worker };
    if (!m.succeeded) {
        directives.push({
            dimensions: [[DIMENSION.worker, DIMENSION.failureClass]],
            metrics: [{ name: METRIC.jobsFailed, unit: "Count", value: 1 }],
        });
        dims[DIMENSION.failureClass] = m.failureClass ?? "unknown";
    }
    return emfRecord(namespace, dims, directives, timestampMs, m.properties);
}

/** Writes one EMF record as one line (default: stdout, next to the worker's JSON log lines). */
export function writeEmf(record: Record<string, unknown>, write: (line: string) => void = (l) => process.stdout.write(l + "\n")): void {
    write(JSON.stringify(record));
}
