/**
 * Builds Fiddler SAZ archives: a zip with raw/NN_c.txt (request), raw/NN_s.txt (response) and
 * raw/NN_m.xml (session timers), as Fiddler writes them.
 */
import { createWriteStream } from "node:fs";
import yazl from "yazl";

export interface SazSession {
  /** e.g. "POST https://host/path HTTP/1.1" */
  requestLine: string;
  requestHeaders: Array<[string, string]>;
  requestBody?: Buffer | string;
  /** Write the body with Transfer-Encoding: chunked, in pieces of this size. */
  chunked?: number;
  status?: number;
  responseHeaders?: Array<[string, string]>;
  responseBody?: Buffer | string;
  /** ISO time with .NET's 7 fractional digits, e.g. 2026-11-24T08:00:00.1234567+01:00 */
  beginRequest?: string;
}

function chunk(body: Buffer, size: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) {
    const piece = body.subarray(i, i + size);
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from("\r\n"));
  }
  parts.push(Buffer.from("0\r\n\r\n"));
  return Buffer.concat(parts);
}

function message(startLine: string, headers: Array<[string, string]>, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${startLine}\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`, "latin1"), body]);
}

export async function writeSaz(file: string, sessions: SazSession[]): Promise<void> {
  const zip = new yazl.ZipFile();
  zip.addBuffer(Buffer.from("<html><body>Fiddler session archive</body></html>"), "_index.htm");
  sessions.forEach((s, i) => {
    const n = String(i + 1).padStart(2, "0");
    let body: Buffer = Buffer.from(s.requestBody ?? "");
    const headers = [...s.requestHeaders];
    if (s.chunked) {
      body = chunk(body, s.chunked);
      headers.push(["Transfer-Encoding", "chunked"]);
    }
    zip.addBuffer(message(s.requestLine, headers, body), `raw/${n}_c.txt`);
    if (s.status !== undefined) {
      zip.addBuffer(message(`HTTP/1.1 ${s.status} OK`, s.responseHeaders ?? [], Buffer.from(s.responseBody ?? "")), `raw/${n}_s.txt`);
    }
    const begin = s.beginRequest ?? "2026-11-24T08:00:00.0000000+00:00";
    zip.addBuffer(
      Buffer.from(
        `<?xml version="1.0" encoding="utf-8"?>\r\n<Session SID="${i + 1}" BitFlags="0"><SessionTimers ClientConnected="${begin}" ClientBeginRequest="${begin}" ClientDoneRequest="${begin}" ClientBeginResponse="${begin}" ClientDoneResponse="${begin}" /><SessionFlags /></Session>`,
      ),
      `raw/${n}_m.xml`,
    );
  });
  zip.end();
  await new Promise<void>((resolve, reject) =>
    zip.outputStream
      .pipe(createWriteStream(file))
      .on("close", () => resolve())
      .on("error", reject),
  );
}
