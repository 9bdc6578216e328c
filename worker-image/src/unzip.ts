/**
 * Safe zip extraction with yauzl. Rejects (PermanentError naming the entry and the rule): `..` segments, absolute
 * paths, drive letters, backslashes, NUL/control characters, symlinks and other special files (Unix mode in the
 * external attributes), more than `maxEntries` entries, and more than `maxBytes` uncompressed bytes in total,
 * counted while inflating (headers can lie).
 */
import * as fs from "fs";
import * as path from "path";
import { Transform, TransformCallback } from "stream";
import { pipeline } from "stream/promises";
import * as yauzl from "yauzl";
import { PermanentError } from "./errors";

export interface UnzipLimits {
    maxEntries: number;
    maxBytes: number;
}

export interface UnzipResult {
    files: number;
    bytes: number;
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/** Returns why an entry name is unsafe, or null. */
export function unsafeEntryName(name: string): string | null {
    if (name.length === 0) return "empty name";
    if (name.includes("\\")) return "backslash in path";
    if (/[\x00-\x1f\x7f]/.test(name)) return "control character in path";
    if (name.startsWith("/")) return "absolute path";
    if (/^[a-zA-Z]:/.test(name)) return "drive letter";
    const segments = name.split("/");
    if (segments.includes("..")) return "'..' path segment";
    return null;
}

function openZip(file: string): Promise<yauzl.ZipFile> {
    return new Promise((resolve, reject) => {
        yauzl.open(
            file,
            { lazyEntries: true, autoClose: true, decodeStrings: true, validateEntrySizes: true, strictFileNames: true },
            (err, zip) => {
                if (err || !zip) reject(new PermanentError(`not a valid zip file: ${err?.message ?? "unknown error"}`));
                else resolve(zip);
            },
        );
    });
}

function openEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<NodeJS.ReadableStream> {
    return new Promise((resolve, reject) => {
        zip.openReadStream(entry, (err, stream) => {
            if (err || !stream) reject(err ?? new Error("no stream"));
            else resolve(stream);
        });
    });
}

/** Extracts `zipPath` into the existing empty directory `dest`. */
export async function extractZip(zipPath: string, dest: string, limits: UnzipLimits): Promise<UnzipResult> {
    const zip = await openZip(zipPath);
    if (zip.entryCount > limits.maxEntries) {
        zip.close();
        throw new PermanentError(`zip rejected: ${zip.entryCount} entries, more than MAX_ZIP_ENTRIES=${limits.maxEntries}`);
    }
    const root = path.resolve(dest);
    let entries = 0;
    let files = 0;
    let total = 0;

    return new Promise<UnzipResult>((resolve, reject) => {
        let done = false;
        const fail = (err: unknown) => {
            if (done) return;
            done = true;
            zip.close();
            if (err instanceof PermanentError) reject(err);
            else reject(new PermanentError(`zip rejected: ${(err as Error)?.message ?? String(err)}`));
        };

        const handle = async (entry: yauzl.Entry): Promise<void> => {
            const name = entry.fileName;
            entries++;
            if (entries > limits.maxEntries) {
                throw new PermanentError(`zip rejected: more than MAX_ZIP_ENTRIES=${limits.maxEntries} entries`);
            }
            const why = unsafeEntryName(name);
            if (why) throw new PermanentError(`zip rejected: entry ${JSON.stringify(name)}: ${why}`);
            const mode = (entry.externalFileAttributes >>> 16) & S_IFMT;
            if (mode === S_IFLNK) throw new PermanentError(`zip rejected: entry ${JSON.stringify(name)}: symbolic link`);
            if (mode !== 0 && mode !== S_IFREG && mode !== S_IFDIR) {
                throw new PermanentError(
                    `zip rejected: entry ${JSON.stringify(name)}: special file (mode 0o${mode.toString(8)})`,
                );
            }
            const target = path.resolve(root, name);
            if (target !== root && !target.startsWith(root + path.sep)) {
                throw new PermanentError(`zip rejected: entry ${JSON.stringify(name)}: escapes the target directory`);
            }
            const isDir = name.endsWith("/") || mode === S_IFDIR;
            if (isDir) {
                await fs.promises.mkdir(target, { recursive: true });
                return;
            }
            if (total + entry.uncompressedSize > limits.maxBytes) {
                throw new PermanentError(
                    `zip rejected: entry ${JSON.stringify(name)}: total uncompressed size exceeds MAX_UNZIPPED_BYTES=${limits.maxBytes}`,
                );
            }
            await fs.promises.mkdir(path.dirname(target), { recursive: true });
            const stream = await openEntry(zip, entry);
            const counter = new Transform({
                transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
                    total += chunk.length;
                    if (total > limits.maxBytes) {
                        cb(
                            new PermanentError(
                                `zip rejected: entry ${JSON.stringify(name)}: inflated data exceeds MAX_UNZIPPED_BYTES=${limits.maxBytes}`,
                            ),
                        );
                    } else cb(null, chunk);
                },
            });
            // "wx": never follow or overwrite something already there (duplicate names are rejected).
            await pipeline(stream, counter, fs.createWriteStream(target, { flags: "wx", mode: 0o600 })).catch((e) => {
                if ((e as NodeJS.ErrnoException).code === "EEXIST") {
                    throw new PermanentError(`zip rejected: entry ${JSON.stringify(name)}: duplicate entry`);
                }
                if (e instanceof PermanentError) throw e;
                throw new PermanentError(`zip rejected: entry ${JSON.stringify(name)}: ${(e as Error).message}`);
            });
            files++;
        };

        zip.on("entry", (entry: yauzl.Entry) => {
            handle(entry).then(
                () => {
                    if (!done) zip.readEntry();
                },
                fail,
            );
        });
        zip.on("error", fail);
        zip.on("end", () => {
            if (done) return;
            done = true;
            resolve({ files, bytes: total });
        });
        zip.readEntry();
    });
}
