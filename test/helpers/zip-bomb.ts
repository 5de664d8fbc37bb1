/**
 * A zip bomb in a few MB: one entry of `gib` GiB (an HTTP head, then zeros), deflated. Zeros
 * compress about 1000:1; rather than run the compressor over gigabytes, one MiB of zeros is
 * deflated once as a self-contained block (a fresh stream, flushed, not final) and that block is
 * repeated, then a final empty block ends the stream. The CRC is computed like a real archiver's
 * (zlib.crc32 over the same bytes, chunk by chunk). `declare` writes another uncompressed size
 * into the headers: an entry that lies about how much it inflates to.
 */
import { writeFileSync } from "node:fs";
import zlib from "node:zlib";

const MIB = 1024 * 1024;

export function writeZipBomb(
  file: string,
  entryName: string,
  options: { head: string; gib: number; declare?: number },
): { size: number; inflated: number } {
  const head = Buffer.from(options.head, "latin1");
  const zeros = Buffer.alloc(MIB);
  const chunks = Math.round(options.gib * 1024);
  const flushed = (b: Buffer) => zlib.deflateRawSync(b, { level: 9, finishFlush: zlib.constants.Z_FULL_FLUSH });
  const headBlock = flushed(head);
  const zeroBlock = flushed(zeros);
  const finalBlock = zlib.deflateRawSync(Buffer.alloc(0));
  let crc = zlib.crc32(head);
  for (let i = 0; i < chunks; i++) crc = zlib.crc32(zeros, crc);
  const inflated = head.length + chunks * MIB;
  const compressed = headBlock.length + chunks * zeroBlock.length + finalBlock.length;
  const declared = options.declare ?? inflated;
  if (declared >= 2 ** 32 || compressed >= 2 ** 32) throw new Error("zip64 is not written here: keep the bomb under 4 GiB");

  const name = Buffer.from(entryName, "utf8");
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4); // version needed
  local.writeUInt16LE(0x0800, 6); // UTF-8 names
  local.writeUInt16LE(8, 8); // deflate
  local.writeUInt32LE(crc >>> 0, 14);
  local.writeUInt32LE(compressed, 18);
  local.writeUInt32LE(declared, 22);
  local.writeUInt16LE(name.length, 26);

  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(0x0800, 8);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(crc >>> 0, 16);
  central.writeUInt32LE(compressed, 20);
  central.writeUInt32LE(declared, 24);
  central.writeUInt16LE(name.length, 28);
  central.writeUInt32LE(0, 42); // local header offset

  const centralOffset = local.length + name.length + compressed;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + name.length, 12);
  end.writeUInt32LE(centralOffset, 16);

  const body = Buffer.concat([headBlock, Buffer.concat(Array.from({ length: chunks }, () => zeroBlock)), finalBlock]);
  writeFileSync(file, Buffer.concat([local, name, body, central, name, end]));
  return { size: local.length + name.length + body.length + central.length + name.length + end.length, inflated };
}
