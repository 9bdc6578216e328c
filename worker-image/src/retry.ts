/** Abortable sleep and the runtime's retry-with-backoff for transient failures (on top of the SDK's own retries). */
import { errorMessage, isTransient } from "./errors";
import { Logger } from "./log";

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
        if (signal?.aborted) return resolve();
        const t = setTimeout(done, ms);
        function done() {
            clearTimeout(t);
            signal?.removeEventListener("abort", done);
            resolve();
        }
        signal?.addEventListener("abort", done, { once: true });
    });
}

/**
 * Calls `fn` up to `attempts` times while it fails transiently (isTransient), with jittered exponential backoff
 * (250 ms, 500 ms, 1 s ... x 0.5-1.5), logging `retrying`. Rethrows at once when `signal` is aborted or the error is
 * not transient.
 */
export async function retry<T>(log: Logger, what: string, signal: AbortSignal, fn: () => Promise<T>, attempts = 4): Promise<T> {
    for (let i = 1; ; i++) {
        try {
            return await fn();
        } catch (err) {
            if (signal.aborted || i >= attempts || !isTransient(err)) throw err;
            const delay = Math.round(250 * 2 ** (i - 1) * (0.5 + Math.random()));
            log("retrying", { what, attempt: i, reason: errorMessage(err), retryInMs: delay });
            await sleep(delay, signal);
        }
    }
}
