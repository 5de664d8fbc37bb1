/**
 * Reads the client's side of a relayed WebSocket (RFC 6455 §5) into whole messages, so each one
 * can be stored and decoded like an upload. It only watches a copy of the bytes: the relay passes
 * them on unchanged. Compression (permessage-deflate) is never negotiated through exhaust, because
 * the relay leaves `Sec-WebSocket-Extensions` out of the handshake it forwards, so payloads are
 * plain; a frame that still says compressed (RSV1) is kept as it came, with a note.
 */
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

export class WebSocketMessageReader {
  private buf: Buffer = Buffer.alloc(0);
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
    if (this.failed) return;
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      const fin = (b[0] & 0x80) !== 0;
      const rsv1 = (b[0] & 0x40) !== 0;
      const opcode = b[0] & 0x0f;
      const masked = (b[1] & 0x80) !== 0;
      let len = b[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        const big = b.readBigUInt64BE(2);
        if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
          this.failed = "frame length out of range";
          return;
        }
        len = Number(big);
        at = 10;
      }
      const maskAt = at;
      if (masked) at += 4;
      if (b.length < at + len) return;
      this.buf = b.subarray(at + len);
      this.frame(fin, rsv1, opcode, b.subarray(at, at + len), masked ? b.subarray(maskAt, maskAt + 4) : undefined);
    }
  }

  /** `payload` is a view of bytes the relay passes on: it is copied before it is unmasked. */
  private frame(fin: boolean, rsv1: boolean, opcode: number, payload: Buffer, mask: Buffer | undefined): void {
    if (opcode >= 0x8) return; // close, ping, pong: control frames, not messages
    if (opcode === OP_TEXT || opcode === OP_BINARY) {
      this.parts = [];
      this.kept = 0;
      this.size = 0;
      this.opcode = opcode;
      this.compressed = rsv1;
    } else if (opcode !== OP_CONTINUATION || this.opcode === 0) {
      this.failed = `unexpected opcode ${opcode}`;
      return;
    }
    this.size += payload.length;
    const room = this.maxBytes - this.kept;
    if (room > 0) {
      const part = Buffer.from(payload.subarray(0, room));
      if (mask) for (let i = 0; i < part.length; i++) part[i] ^= mask[i & 3];
      this.parts.push(part);
      this.kept += part.length;
    }
    if (!fin) return;
    const message: WebSocketMessage = {
      opcode: this.opcode,
      payload: Buffer.concat(this.parts),
      size: this.size,
      truncated: this.size > this.kept,
      compressed: this.compressed,
    };
    this.opcode = 0;
    this.parts = [];
    this.onMessage(message);
  }
}
