/**
 * Reads the client's side of a relayed WebSocket (RFC 6455 §5) into whole messages, so each one
 * can be stored and decoded like an upload. It only watches a copy of the bytes: the relay passes
 * them on unchanged. Compression (permessage-deflate) is never negotiated through exhaust, because
 * the relay leaves `Sec-WebSocket-Extensions` out of the handshake it forwards, so payloads are
 * plain; a frame that still says compressed (RSV1) is kept as it came, with a note.
 */
import { bodyBytes } from "../store/capture-bytes.js";

export interface WebSocketMessage {
  /** 1 text, 2 binary. */
  opcode: number;
  /** The payload, unmasked; at most the capture cap. */
  payload: Buffer;
  /** Payload bytes in all, which exceeds payload.length when the cap cut it. */
  size: number;
  truncated: boolean;
  /** The frames said compressed (RSV1): the payload is as sent, not inflated. */
  compressed: boolean;
}

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;

/**
 * A streaming state machine: a frame's header is gathered in a small buffer (at most 14 bytes),
 * its payload is consumed from each chunk as it arrives, so a message costs time linear in its
 * size and memory bounded by the capture cap, however it is split into chunks.
 */
export class WebSocketMessageReader {
  /** Header bytes of the frame being read (2..14). */
  private head = Buffer.alloc(14);
  private headLength = 0;
  /** Payload bytes still to come in the current frame; -1 while reading a header. */
  private remaining = -1;
  private frameFin = false;
  private frameControl = false;
  private mask: Buffer | undefined;
  private maskAt = 0;
  private parts: Buffer[] = [];
  private kept = 0;
  private size = 0;
  private opcode = 0;
  private compressed = false;
  /** Set when the byte stream stops being valid framing; the relay goes on, reading stops. */
  failed?: string;

  constructor(
    private readonly maxBytes: number,
    private readonly onMessage: (m: WebSocketMessage) => void,
  ) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (!this.failed && at < chunk.length) {
      if (this.remaining < 0) {
        at = this.readHead(chunk, at);
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - at);
      this.payload(chunk.subarray(at, at + take));
      at += take;
      this.remaining -= take;
      if (this.remaining === 0) this.frameEnd();
    }
  }

  /** Gathers header bytes; returns where the chunk's unread part starts. */
  private readHead(chunk: Buffer, at: number): number {
    const h = this.head;
    while (at < chunk.length) {
      const need = this.headNeed();
      if (this.headLength >= need) break;
      h[this.headLength++] = chunk[at++];
    }
    const need = this.headNeed();
    if (this.headLength < need) return at;
    const rsv1 = (h[0] & 0x40) !== 0;
    const opcode = h[0] & 0x0f;
    const masked = (h[1] & 0x80) !== 0;
    let len = h[1] & 0x7f;
    let pos = 2;
    if (len === 126) {
      len = h.readUInt16BE(2);
      pos = 4;
    } else if (len === 127) {
      const big = h.readBigUInt64BE(2);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
        this.failed = "frame length out of range";
        return at;
      }
      len = Number(big);
      pos = 10;
    }
    this.mask = masked ? Buffer.from(h.subarray(pos, pos + 4)) : undefined;
    this.maskAt = 0;
    this.frameFin = (h[0] & 0x80) !== 0;
    this.headLength = 0;
    this.remaining = len;
    this.frameControl = opcode >= 0x8;
    if (!this.frameControl) this.frameStart(rsv1, opcode);
    if (len === 0 && !this.failed) this.frameEnd();
    return at;
  }

  /** Header bytes needed so far: 2, then what the length and mask bits ask for. */
  private headNeed(): number {
    if (this.headLength < 2) return 2;
    const len = this.head[1] & 0x7f;
    const masked = (this.head[1] & 0x80) !== 0;
    return 2 + (len === 126 ? 2 : len === 127 ? 8 : 0) + (masked ? 4 : 0);
  }

  private frameStart(rsv1: boolean, opcode: number): void {
    if (opcode === OP_TEXT || opcode === OP_BINARY) {
      this.parts = [];
      this.kept = 0;
      this.size = 0;
      this.opcode = opcode;
      this.compressed = rsv1;
    } else if (opcode !== OP_CONTINUATION || this.opcode === 0) {
      this.failed = `unexpected opcode ${opcode}`;
    }
  }

  /** `bytes` is a view of bytes the relay passes on: it is copied before it is unmasked. */
  private payload(bytes: Buffer): void {
    const mask = this.mask;
    const maskAt = this.maskAt;
    this.maskAt = (this.maskAt + bytes.length) & 3;
    if (this.frameControl) return; // close, ping, pong: control frames, not messages
    this.size += bytes.length;
    const room = this.maxBytes - this.kept;
    if (room <= 0) return;
    const part = Buffer.from(bytes.subarray(0, room));
    if (mask) for (let i = 0; i < part.length; i++) part[i] ^= mask[(maskAt + i) & 3];
    this.parts.push(part);
    this.kept += part.length;
  }

  private frameEnd(): void {
    this.remaining = -1;
    if (this.frameControl || !this.frameFin) return;
    const message: WebSocketMessage = {
      opcode: this.opcode,
      // In a body's memory, like every body the proxy keeps (body.ts): shared with the writer thread from 64 KiB on.
      payload: bodyBytes(this.parts, this.kept),
      size: this.size,
      truncated: this.size > this.kept,
      compressed: this.compressed,
    };
    this.opcode = 0;
    this.parts = [];
    this.kept = 0;
    this.onMessage(message);
  }
}
