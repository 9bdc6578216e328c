/**
 * AWS's own rules the arguments must follow: Fargate's valid sizes, CloudWatch's retention values, and the ECR
 * ARN of an image URI. Pure: no Pulumi resources here, so they can be table-tested directly.
 */

/** Fargate's valid memory sizes (MiB) for each CPU size (CPU units). */
export const FARGATE_SIZES: Record<number, number[]> = {
    256: [512, 1024, 2048],
    512: range(1024, 4096, 1024),
    1024: range(2048, 8192, 1024),
    2048: range(4096, 16384, 1024),
    4096: range(8192, 30720, 1024),
    8192: range(16384, 61440, 4096),
    16384: range(32768, 122880, 8192),
};

/** The values CloudWatch Logs accepts for `retentionInDays`. */
export const LOG_RETENTION_DAYS = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

function range(from: number, to: number, step: number): number[] {
    const out: number[] = [];
    for (let v = from; v <= to; v += step) out.push(v);
    return out;
}

/** Human-readable list of Fargate's valid memory sizes for a CPU size, e.g. "2048-8192 in steps of 1024". */
export function describeMemoryFor(cpu: number): string {
    const sizes = FARGATE_SIZES[cpu];
    if (!sizes) return "";
    if (cpu === 256) return sizes.join(", ");
    return `${sizes[0]}-${sizes[sizes.length - 1]} in steps of ${sizes[1] - sizes[0]}`;
}

export function isInteger(v: unknown): v is number {
    return typeof v === "number" && Number.isInteger(v);
}

/**
 * The ECR repository ARN an image URI pulls from, or `undefined` when the image is not in ECR
 * (e.g. a public registry image, which needs no ECR permission).
 * `123456789012.dkr.ecr.us-east-1.amazonaws.com/render:tag` → `arn:aws:ecr:us-east-1:123456789012:repository/render`.
 */
export function ecrRepositoryArn(imageUri: string): string | undefined {
    const m = /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?\/([^:@]+)(?:[:@].*)?$/.exec(imageUri);
    if (!m) return undefined;
    const [, account, region, cn, repository] = m;
    const partition = cn ? "aws-cn" : region.startsWith("us-gov-") ? "aws-us-gov" : "aws";
    return `arn:${partition}:ecr:${region}:${account}:repository/${repository}`;
}
