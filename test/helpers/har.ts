/**
 * A HAR 1.2 file of POST uploads, as a browser's or Fiddler's export writes them: what the HAR
 * importer reads (src/import). Each upload gets a 200 with an empty body.
 */
export interface HarUpload {
  url: string;
  /** The request body, as text. */
  body: string;
  mimeType: string;
  startedDateTime?: string;
}

export function harOfUploads(uploads: HarUpload[]): object {
  return {
    log: {
      version: "1.2",
      creator: { name: "test", version: "1" },
      entries: uploads.map((u) => ({
        startedDateTime: u.startedDateTime ?? "2026-11-24T08:00:00.000Z",
        time: 10,
        request: {
          method: "POST",
          url: u.url,
          httpVersion: "HTTP/1.1",
          headers: [{ name: "Content-Type", value: u.mimeType }],
          queryString: [],
          cookies: [],
          headersSize: -1,
          bodySize: -1,
          postData: { mimeType: u.mimeType, text: u.body },
        },
        response: {
          status: 200,
          statusText: "OK",
          httpVersion: "HTTP/1.1",
          headers: [],
          cookies: [],
          content: { size: 0, mimeType: "application/json", text: "" },
          redirectURL: "",
          headersSize: -1,
          bodySize: -1,
        },
        cache: {},
        timings: { send: 0, wait: 10, receive: 0 },
      })),
    },
  };
}
