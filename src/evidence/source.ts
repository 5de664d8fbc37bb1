/**
 * Reads an evidence bundle that is either a directory or a .zip, the same way: list the files,
 * read one, stream one. Used by `bundle verify` and by the bundle importer.
 */
import { createReadStream, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import type { Readable } from "node:stream";
import yauzl from "yauzl";
import { exhaustError } from "../errors.js";

export interface BundleSource {
  readonly path: string;
  /** Bundle-relative paths with `/` separators. */
  files(): string[];
  has(name: string): boolean;
  /**
   * The whole file. With `maxBytes`, a file that declares more (zip entry size, file size) is
   * refused before it is read, and one that turns out longer is cut off at the bound with an error.
   */
  read(name: string, maxBytes?: number): Promise<Buffer>;
  /** The size the file declares (a zip entry's uncompressed size), without reading it. */
  size(name: string): number | undefined;
  stream(name: string): Promise<Readable>;
  close(): void;
}

function listDir(root: string, dir = root, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, e.name);
    if (e.isDirectory()) listDir(root, full, out);
    else out.push(relative(root, full).split(sep).join("/"));
  }
  return out;
}

function directorySource(path: string): BundleSource {
  const files = listDir(path).sort();
  const set = new Set(files);
  return {
    path,
    files: () => files,
    has: (n) => set.has(n),
    async read(n, maxBytes) {
      if (maxBytes !== undefined) {
        const size = statSync(join(path, n)).size;
        if (size > maxBytes) throw new EntryTooLargeError(n, `is ${size} bytes`, maxBytes);
      }
      return readFileSync(join(path, n));
    },
    size: (n) => (set.has(n) ? statSync(join(path, n)).size : undefined),
    stream: async (n) => createReadStream(join(path, n)),
    close() {},
  };
}

async function zipSource(path: string): Promise<BundleSource> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(path, { lazyEntries: true, autoClose: false, validateEntrySizes: true }, (err, z) => (err ? reject(err) : resolve(z))),
  );
  const entries = new Map<string, yauzl.Entry>();
  await new Promise<void>((resolve, reject) => {
    zip.on("entry", (e: yauzl.Entry) => {
      if (!e.fileName.endsWith("/")) entries.set(e.fileName, e);
      zip.readEntry();
    });
    zip.once("end", () => resolve());
    zip.once("error", reject);
    zip.readEntry();
  });
  const stream = (n: string) =>
    new Promise<Readable>((resolve, reject) => {
      const e = entries.get(n);
      if (!e) return reject(new Error(`${n} is not in the bundle`));
      zip.openReadStream(e, (err, s) => (err ? reject(err) : resolve(s)));
    });
  return {
    path,
    files: () => [...entries.keys()].sort(),
    has: (n) => entries.has(n),
    stream,
    async read(n, maxBytes) {
      const declared = entries.get(n)?.uncompressedSize;
      if (maxBytes !== undefined && declared !== undefined && declared > maxBytes) {
        throw new EntryTooLargeError(n, `declares ${declared} bytes`, maxBytes);
      }
      const chunks: Buffer[] = [];
      let total = 0;
      const s = await stream(n);
      try {
        for await (const c of s) {
          total += (c as Buffer).length;
          // yauzl already stops an entry at its declared size; this holds for any source.
          if (maxBytes !== undefined && total > maxBytes) {
            s.destroy();
            throw new EntryTooLargeError(n, "inflates beyond its bound", maxBytes);
          }
          chunks.push(c as Buffer);
        }
      } catch (e) {
        // yauzl's validateEntrySizes: the entry inflates to more than it declares; it stopped there.
        if (/^too many bytes in the stream/.test((e as Error).message)) {
          throw new Error(
            `${n} inflates to more than the ${declared} bytes it declares (a corrupt or hostile archive); read stopped there`,
            { cause: e },
          );
        }
        throw e;
      }
      return Buffer.concat(chunks);
    },
    size: (n) => entries.get(n)?.uncompressedSize,
    close: () => zip.close(),
  };
}

/** A file of a bundle or archive larger than the reader allowed (BundleSource.read with maxBytes). */
export class EntryTooLargeError extends Error {
  constructor(
    readonly entry: string,
    readonly detail: string,
    readonly limit: number,
  ) {
    super(`${entry} ${detail}, above the limit of ${limit} bytes`);
    this.name = "EntryTooLargeError";
  }
}

/** Opens a bundle directory or zip; EXH_BUNDLE_INVALID when it is neither. */
export async function openBundle(path: string): Promise<BundleSource> {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (e) {
    throw exhaustError("EXH_BUNDLE_INVALID", { path, reason: (e as Error).message }, e);
  }
  if (isDir) return directorySource(path);
  try {
    return await zipSource(path);
  } catch (e) {
    throw exhaustError("EXH_BUNDLE_INVALID", { path, reason: `not a bundle directory or zip: ${(e as Error).message}` }, e);
  }
}

/** Whether `path` looks like a bundle: a directory or zip holding manifest.json. */
export async function isBundle(path: string): Promise<boolean> {
  try {
    const source = await openBundle(path);
    try {
      return source.has("manifest.json");
    } finally {
      source.close();
    }
  } catch {
    return false;
  }
}
