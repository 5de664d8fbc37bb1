/**
 * A small WebSocket (RFC 6455) encoder and reader for tests: handshake keys, frames written by a
 * client (masked) or a server (not masked), and a reader that takes whole frames off a buffer.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Duplex } from "node:stream";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

export function acceptKey(key: string): string {
  return createHash("sha1")
    .update(key + GUID)
    .digest("base64");
}

export function newKey(): string {
  return randomBytes(16).toString("base64");
}

export const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9 } as const;

/** One frame; `fin: false` for all but the last frame of a fragmented message. */
export function encodeFrame(payload: Buffer | string, opts: { opcode?: number; masked: boolean; fin?: boolean }): Buffer {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const len = data.length;
  const lenBytes =
    len < 126
      ? Buffer.from([len])
      : len < 65536
        ? Buffer.from([126, len >> 8, len & 0xff])
        : Buffer.concat([Buffer.from([127]), bigLength(len)]);
  lenBytes[0] |= opts.masked ? 0x80 : 0;
  const first = Buffer.from([(opts.fin === false ? 0 : 0x80) | (opts.opcode ?? OPCODE.text)]);
  if (!opts.masked) return Buffer.concat([first, lenBytes, data]);
  const mask = randomBytes(4);
  const masked = Buffer.from(data.map((b, i) => b ^ mask[i & 3]));
  return Buffer.concat([first, lenBytes, mask, masked]);
}

function bigLength(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

export interface Frame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** Takes one whole frame off the front of `buf`, or undefined when it is not all there yet. */
export function readFrame(buf: Buffer): { frame: Frame; rest: Buffer } | undefined {
  if (buf.length < 2) return undefined;
  const masked = (buf[1] & 0x80) !== 0;
  let len = buf[1] & 0x7f;
  let at = 2;
  if (len === 126) {
    if (buf.length < 4) return undefined;
    len = buf.readUInt16BE(2);
    at = 4;
  } else if (len === 127) {
    if (buf.length < 10) return undefined;
    len = Number(buf.readBigUInt64BE(2));
    at = 10;
  }
  const mask = masked ? buf.subarray(at, at + 4) : undefined;
  if (masked) at += 4;
  if (buf.length < at + len) return undefined;
  const raw = buf.subarray(at, at + len);
  const payload = mask ? Buffer.from(raw.map((b, i) => b ^ mask[i & 3])) : Buffer.from(raw);
  return { frame: { fin: (buf[0] & 0x80) !== 0, opcode: buf[0] & 0x0f, payload }, rest: buf.subarray(at + len) };
}

/** Collects bytes from a stream and hands out the frames as they complete. */
export function frameReader(stream: Duplex, initial: Buffer = Buffer.alloc(0)): () => Promise<Frame> {
  let buf = initial;
  const waiting: Array<(f: Frame) => void> = [];
  const ready: Frame[] = [];
  const drain = () => {
    for (let r = readFrame(buf); r; r = readFrame(buf)) {
      buf = r.rest;
      const w = waiting.shift();
      if (w) w(r.frame);
      else ready.push(r.frame);
    }
  };
  stream.on("data", (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    drain();
  });
  drain();
  return () => {
    const f = ready.shift();
    return f ? Promise.resolve(f) : new Promise((resolve) => waiting.push(resolve));
  };
}

/** Reads an HTTP response head (up to the blank line) off a stream; returns it and what followed. */
export function readResponseHead(stream: Duplex): Promise<{ status: number; headers: Map<string, string>; head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf("\r\n\r\n");
      if (end === -1) return;
      stream.off("data", onData);
      stream.pause();
      const head = buf.subarray(0, end).toString("latin1");
      const [statusLine, ...lines] = head.split("\r\n");
      const headers = new Map(
        lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()] as [string, string]),
      );
      resolve({ status: Number(statusLine.split(" ")[1]), headers, head, rest: buf.subarray(end + 4) });
    };
    stream.on("data", onData);
    stream.once("error", reject);
    stream.once("close", () => reject(new Error("closed before a response head")));
  });
}
