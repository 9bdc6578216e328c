/** One JSON line per event on stdout. */
export type Fields = Record<string, unknown>;

export interface Logger {
    (event: string, fields?: Fields): void;
}

export function createLogger(base: Fields = {}, write: (line: string) => void = (l) => process.stdout.write(l + "\n")): Logger {
    return (event, fields = {}) => {
        write(JSON.stringify({ time: new Date().toISOString(), event, ...base, ...fields }));
    };
}
