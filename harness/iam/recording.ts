/**
 * moto_server with its request recorder on (moto 5.2.1: `MOTO_RECORDER_FILEPATH`, `/moto-api/recorder/*`): every
 * request that reaches the emulator is appended to a file, headers and body included, before moto handles it — so
 * failed calls are recorded too. Each caller signs with its own access key id (see {@link ACCESS_KEYS}), which
 * attributes every recorded request to the role that would make it on AWS.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import { Moto, motoClientConfig, startMoto } from "../moto";
import { accessKeyOf, HttpRequest } from "./requests";

/** Access key ids standing for the roles' sessions ("testing", the harness default, is the test's own setup). */
export const ACCESS_KEYS = {
    launcher: "AKIALAUNCHERROLE",
    task: "AKIATASKROLE",
} as const;

export interface RecordedHttpRequest extends HttpRequest {
    accessKeyId?: string;
}

export interface RecordingMoto {
    moto: Moto;
    /** Forget what was recorded so far. */
    clear(): Promise<void>;
    /** Every request recorded since the last clear, in order. */
    requests(): Promise<RecordedHttpRequest[]>;
    stop(): Promise<void>;
}

/** Start moto_server with the recorder writing to a fresh temporary file, and start recording. */
export async function startRecordingMoto(): Promise<RecordingMoto> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "moto-recording-"));
    const file = path.join(dir, "recording.jsonl");
    // startMoto spawns moto_server with this process's environment: the recorder reads its path from there.
    const saved = process.env.MOTO_RECORDER_FILEPATH;
    process.env.MOTO_RECORDER_FILEPATH = file;
    let moto: Moto;
    try {
        moto = await startMoto();
    } finally {
        if (saved === undefined) delete process.env.MOTO_RECORDER_FILEPATH;
        else process.env.MOTO_RECORDER_FILEPATH = saved;
    }
    const api = async (what: string) => {
        const res = await fetch(`${moto.endpoint}/moto-api/recorder/${what}`, { method: "POST" });
        if (!res.ok) throw new Error(`moto recorder ${what}: HTTP ${res.status}`);
        return res.text();
    };
    await api("reset-recording");
    await api("start-recording");
    return {
        moto,
        clear: async () => void (await api("reset-recording")),
        async requests() {
            const text = await (await fetch(`${moto.endpoint}/moto-api/recorder/download-recording`)).text();
            return jsonObjects(text)
                .map((e) => {
                    const body = e.body == null ? "" : e.body_encoded ? Buffer.from(e.body, "base64").toString("utf8") : String(e.body);
                    const req: RecordedHttpRequest = { method: e.method, url: e.url, headers: e.headers ?? {}, body };
                    req.accessKeyId = accessKeyOf(req);
                    return req;
                });
        },
        async stop() {
            await moto.stop();
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}

/**
 * The JSON objects of the recording, in order. moto's recorder appends one object and a newline per request from its
 * request threads without a lock, so concurrent requests can land on one line (`{...}{...}\n\n`): split on the
 * objects themselves, not on lines. A write torn inside an object still fails JSON.parse, loudly.
 */
export function jsonObjects(text: string): any[] {
    const out: any[] = [];
    let depth = 0;
    let start = -1;
    let inString = false;
    for (let i = 0; i < text.length; i++) {
        const c = text[i];
        if (inString) {
            if (c === "\\") i++;
            else if (c === '"') inString = false;
        } else if (c === '"') inString = true;
        else if (c === "{") {
            if (depth++ === 0) start = i;
        } else if (c === "}" && --depth === 0) out.push(JSON.parse(text.slice(start, i + 1)));
    }
    if (depth !== 0) throw new Error("moto recording ends inside an object");
    return out;
}

/** SDK client settings for moto signed with a role's access key id. */
export function roleClientConfig(moto: Moto, accessKeyId: string) {
    const c = motoClientConfig(moto.endpoint);
    return { ...c, credentials: { ...c.credentials, accessKeyId } };
}

/**
 * The request as the SDK sends it to AWS: the same call to the service's regional HTTPS endpoint, S3 path-style.
 * moto_server listens on plain HTTP at 127.0.0.1 only because AWS_ENDPOINT_URL points there; without it the SDK
 * always uses TLS, so aws:SecureTransport is "true" for every real call.
 */
export function asSentToAws(req: RecordedHttpRequest, endpoint: string, region: string, service: string): RecordedHttpRequest {
    if (!req.url.startsWith(endpoint)) throw new Error(`request ${req.url} did not go to ${endpoint}`);
    return { ...req, url: `https://${service}.${region}.amazonaws.com${req.url.slice(endpoint.length)}` };
}
