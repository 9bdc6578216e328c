/**
 * Safe zip extraction with yauzl. Rejects (PermanentError naming the entry and the rule): `..` segments, absolute
 * paths, drive letters, backslashes, NUL/control characters, symlinks and other special files (Unix mode in the
 * external attributes), more than `maxEntries` entries, and more than `maxBytes` uncompressed bytes in total,
 * counted while inflating (headers can lie), paths deeper than MAX_PATH_DEPTH components, and more directories
 * (explicit or implied by file paths) than `maxDirs` (default: maxEntries). File-system failures that say nothing
 * about the zip (ENOSPC, EMFILE, EIO, ENOMEM, ...) are rethrown as they are, for the runtime to class (errors.ts: a
 * full disk is permanent, too many open files transient); `signal` (SIGTERM) is checked between entries and rejects
 * with AbortedError. `beforeWrite` (the free-space check) is told the total size the entries declare (yauzl checks
 * each entry's inflated size against it) before anything is written.
 */
import * as fs from "fs";
import * as path from "path";
import { Transform, TransformCallback } from "stream";
import { pipeline } from "stream/promises";
import * as yauzl from "yauzl";
import { AbortedError, PermanentError } from "./errors";

export interface UnzipLimits {
    maxEntries: number;
    maxBytes: number;
    /** Directories created in total (explicit entries and parents of files). Default: maxEntries. */
    maxDirs?: number;
}

/** Most path components (directories + file name) an entry may have. */
export const MAX_PATH_DEPTH = 32;

/** errno codes of the local machine (disk full, too many open files, I/O error...): not the zip's fault. */
const LOCAL_FS_ERRORS = new Set(["ENOSPC", "EDQUOT", "EMFILE", "ENFILE", "EIO", "ENOMEM", "EAGAIN", "EBUSY", "EROFS"]);

/** True for a file-system error caused by the machine rather than by the zip's content. */
export function isLocalFsError(err: unknown): boolean {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    return typeof code === "string" && LOCAL_FS_ERRORS.has(code);
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

/** The total uncompressed size the zip's entries declare (central directory only; stops past `maxEntries`). */
async function declaredUnzippedBytes(zipPath: string, maxEntries: number): Promise<number> {
    const zip = await openZip(zipPath);
    return new Promise<number>((resolve, reject) => {
        let bytes = 0;
        let entries = 0;
        zip.on("entry", (entry: yauzl.Entry) => {
            bytes += entry.uncompressedSize;
            if (++entries > maxEntries) {
                zip.close();
                resolve(bytes);
            } else zip.readEntry();
        });
        zip.on("end", () => resolve(bytes));
        zip.on("error", (err) => reject(new PermanentError(`not a valid zip file: ${err?.message ?? "unknown error"}`)));
        zip.readEntry();
    });
}

/** Extracts `zipPath` into the existing empty directory `dest`. */
export async function extractZip(
    zipPath: string,
    dest: string,
    limits: UnzipLimits,
    signal?: AbortSignal,
    beforeWrite?: (declaredBytes: number) => Promise<void>,
): Promise<UnzipResult> {
    if (signal?.aborted) throw new AbortedError();
    if (beforeWrite) {
        const declared = await declaredUnzippedBytes(zipPath, limits.maxEntries);
        // Over MAX_UNZIPPED_BYTES the extraction below rejects the zip for that: a clearer reason than the space.
        if (declared <= limits.maxBytes) await beforeWrite(declared);
    }
    const zip = await openZip(zipPath);
    if (zip.entryCount > limits.maxEntries) {
        zip.close();
        throw new PermanentError(`zip rejected: ${zip.entryCount} entries, more than MAX_ZIP_ENTRIES=${limits.maxEntries}`);
    }
    const root = path.resolve(dest);
    let entries = 0;
    let files = 0;
    let total = 0;
    const maxDirs = limits.maxDirs ?? limits.maxEntries;
    const dirs = new Set<string>();
    /** Counts the directories `rel` (a directory path, "/"-separated, no trailing slash) and its parents add. */
    const addDirs = (name: string, rel: string) => {
        const parts = rel === "" ? [] : rel.split("/");
        for (let i = 1; i <= parts.length; i++) {
            const d = parts.slice(0, i).join("/");
            if (dirs.has(d)) continue;
            dirs.add(d);
            if (dirs.size > maxDirs) {
                throw new PermanentError(
                    `zip rejected: entry ${JSON.stringify(name)}: more than ${maxDirs} directories in total (MAX_ZIP_ENTRIES)`,
                );
            }
        }
    };

    return new Promise<UnzipResult>((resolve, reject) => {
        let done = false;
        const fail = (err: unknown) => {
            if (done) return;
            done = true;
            zip.close();
            if (err instanceof PermanentError || err instanceof AbortedError || isLocalFsError(err)) reject(err);
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
            const parts = name.split("/").filter((p) => p !== "" && p !== ".");
            if (parts.length > MAX_PATH_DEPTH) {
                throw new PermanentError(
                    `zip rejected: entry ${JSON.stringify(name.slice(0, 200))}: path deeper than ${MAX_PATH_DEPTH} components`,
                );
            }
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
            addDirs(name, isDir ? parts.join("/") : parts.slice(0, -1).join("/"));
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
                if (e instanceof PermanentError || isLocalFsError(e)) throw e;
                throw new PermanentError(`zip rejected: entry ${JSON.stringify(name)}: ${(e as Error).message}`);
            });
            files++;
        };

        zip.on("entry", (entry: yauzl.Entry) => {
            handle(entry).then(
                () => {
                    if (done) return;
                    if (signal?.aborted) fail(new AbortedError());
                    else zip.readEntry();
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
