/** Pure parts of `npm run local`. */
import { expect } from "chai";

import { deadLetteredJobs } from "../scripts/local/run";

describe("npm run local: reading the dead-letter queue (deadLetteredJobs)", () => {
    const s3Event = (...keys: string[]) => ({
        Records: keys.map((key) => ({ eventSource: "aws:s3", eventName: "ObjectCreated:Put", s3: { bucket: { name: "b" }, object: { key } } })),
    });
    const cases: [string, string, string | undefined, { keys: string[]; reason: string }][] = [
        [
            "a job a worker dead-lettered, with its reason",
            JSON.stringify({ bucket: "b", key: "in/a b.zip", reason: "no scene" }),
            "no scene",
            { keys: ["in/a b.zip"], reason: "no scene" },
        ],
        [
            "Lambda's on-failure record of a launcher invocation: keys from requestPayload, reason from responsePayload",
            JSON.stringify({
                version: "1.0",
                requestContext: { condition: "RetriesExhausted", approximateInvokeCount: 3 },
                requestPayload: s3Event("in/x+y.zip", "in/caf%C3%A9.zip"),
                responsePayload: { errorType: "Error", errorMessage: "1 of 2 message(s) not sent" },
            }),
            undefined,
            { keys: ["in/x y.zip", "in/café.zip"], reason: "launcher failed: 1 of 2 message(s) not sent" },
        ],
        [
            "an S3 event SQS redrove after maxReceiveCount (no reason anywhere)",
            JSON.stringify(s3Event("in/%ZZ.zip", "in/ok.zip")),
            undefined,
            { keys: ["in/ok.zip"], reason: "dead-lettered (maxReceiveCount reached)" },
        ],
        ["a body that is not JSON, with a reason attribute", "not json", "unreadable", { keys: [], reason: "unreadable" }],
    ];
    for (const [title, body, attribute, expected] of cases) {
        it(title, () => {
            expect(deadLetteredJobs(body, attribute)).to.deep.equal(expected);
        });
    }
});
