import type { Logger } from "../../worker-image/src/log";

/** A worker log line as a recorder keeps it. */
export type Line = { event: string } & Record<string, unknown>;

/** A worker Logger that keeps its lines: `lines` in order, `events()` their names. */
export function recorder(): { log: Logger; lines: Line[]; events: () => string[] } {
    const lines: Line[] = [];
    return { log: (event, fields = {}) => void lines.push({ event, ...fields }), lines, events: () => lines.map((l) => l.event) };
}

/** An AWS SDK service error as the SDK throws it: `name`, the HTTP status, server fault for 5xx. */
export function awsError(name: string, status: number): Error {
    return Object.assign(new Error(`${name} (${status})`), { name, $fault: status >= 500 ? "server" : "client", $metadata: { httpStatusCode: status } });
}
