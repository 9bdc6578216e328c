/**
 * Step "bucket": the given bucket, or a new private, encrypted, TLS-only one whose lifecycle rule aborts incomplete
 * multipart uploads after INCOMPLETE_UPLOAD_DAYS.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

import { ChildOptions, ResolvedLambdaEcsWorkerArgs } from "./args";
import { bucketPolicy } from "./policies";

/** Days after which the created bucket's lifecycle rule aborts an incomplete multipart upload (and frees its parts). */
export const INCOMPLETE_UPLOAD_DAYS = 1;

export interface BucketResources {
    bucketName: pulumi.Output<string>;
    bucketArn: pulumi.Output<string>;
    /** The bucket, when this step created it. */
    bucket?: aws.s3.Bucket;
}

export function createBucket(
    name: string,
    r: ResolvedLambdaEcsWorkerArgs,
    deps: { partition: pulumi.Input<string> },
    { parent }: ChildOptions,
): BucketResources {
    if (r.bucketName !== undefined) {
        const bucketName = pulumi.output(r.bucketName);
        return { bucketName, bucketArn: pulumi.interpolate`arn:${deps.partition}:s3:::${bucketName}` };
    }
    const bucket = new aws.s3.Bucket(`${name}-bucket`, { forceDestroy: r.forceDestroyBucket, tags: r.tags }, { parent });
    const publicAccessBlock = new aws.s3.BucketPublicAccessBlock(
        `${name}-bucket-public-access`,
        {
            bucket: bucket.id,
            blockPublicAcls: true,
            blockPublicPolicy: true,
            ignorePublicAcls: true,
            restrictPublicBuckets: true,
        },
        { parent },
    );
    new aws.s3.BucketOwnershipControls(
        `${name}-bucket-ownership`,
        { bucket: bucket.id, rule: { objectOwnership: "BucketOwnerEnforced" } },
        { parent },
    );
    new aws.s3.BucketServerSideEncryptionConfiguration(
        `${name}-bucket-encryption`,
        {
            bucket: bucket.id,
            rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" }, bucketKeyEnabled: true }],
        },
        { parent },
    );
    // A multipart upload the worker could not abort (a killed task) would keep its parts, billed, forever.
    new aws.s3.BucketLifecycleConfiguration(
        `${name}-bucket-lifecycle`,
        {
            bucket: bucket.id,
            rules: [
                {
                    id: "abort-incomplete-multipart-uploads",
                    status: "Enabled",
                    filter: {},
                    abortIncompleteMultipartUpload: { daysAfterInitiation: INCOMPLETE_UPLOAD_DAYS },
                },
            ],
        },
        { parent },
    );
    new aws.s3.BucketPolicy(
        `${name}-bucket-policy`,
        { bucket: bucket.id, policy: pulumi.jsonStringify(bucketPolicy(bucket.arn)) },
        { parent, dependsOn: [publicAccessBlock] },
    );
    return { bucket, bucketName: bucket.bucket, bucketArn: bucket.arn };
}
