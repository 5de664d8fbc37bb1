import http from "node:http";

/**
 * One plain proxy request (absolute-form `http://…` or origin-form with a Host header) on a fresh
 * connection to the proxy: the answer's status and text.
 */
export function plainProxyRequest(proxyPort: number, path: string, host: string, body = "{}"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: proxyPort, method: "POST", path, headers: { host }, agent: false });
    req.on("response", (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}
