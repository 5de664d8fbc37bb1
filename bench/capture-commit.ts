/**
 * The capture commit's cost on the thread that hands it over (`--only capture`): 20 KB uploads
 * stored as the capture addon stores them (the durable point, then the completion), through a
 * CaptureStore on this thread ("inline", how the proxy committed before issue 19's fifth round) and
 * through the capture writer thread ("thread", how it commits now), `perTurn` exchanges at a time.
 * The figure is this process's main-thread CPU per exchange, from /proc: what the proxy's event loop
 * pays per exchange for its capture, without the network's noise.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exhaustError } from "../src/errors.js";
import { CaptureStore, completionOf, type CaptureSink } from "../src/store/capture-store.js";
import { CaptureWriterThread } from "../src/store/capture-writer.js";
import { openDatabase } from "../src/store/database.js";
import { WriterPriority } from "../src/store/writer-priority.js";
import type { Exchange } from "../src/types.js";
import { makeExchange } from "../test/helpers/exchange.js";
import { round, telemetryUploadBody } from "./load.js";
import { cpuTicks } from "../test/helpers/proc.js";

type Mode = "inline" | "thread";

async function run(mode: Mode, exchanges: number, perTurn: number): Promise<{ loopCpuMsPerExchange: number; wallMsPerExchange: number }> {
  const dir = mkdtempSync(join(tmpdir(), "exhaust-bench-capture-"));
  const file = join(dir, "capture.db");
  const db = openDatabase(file);
  const priority = new WriterPriority();
  const local = new CaptureStore(db, mode === "inline" ? priority : undefined);
  const session = local.openSession("bench", { toolVersion: "bench" });
  const sink: CaptureSink & { close(): Promise<void> } =
    mode === "inline"
      ? local
      : await CaptureWriterThread.start({
          dbFile: file,
          priority,
          autoCheckpoint: true,
          onStoreGone: () => exhaustError("EXH_STORE_GONE", { file }),
        });
  const body = telemetryUploadBody();
  const headers: Array<[string, string]> = [
    ["Host", "mobile.events.data.microsoft.com"],
    ["Content-Type", "application/x-json-stream"],
    ["Content-Length", String(body.length)],
    ["Client-Id", "NO_AUTH"],
    ["Client-Version", "1DS-Web-JS-3.2.13"],
    ["Apikey", "0123456789abcdef0123456789abcdef-01234567-89ab-cdef-0123-456789abcdef-0123"],
    ["Upload-Time", "1764720000000"],
    ["Time-Delta-To-Apply-Millis", "use-collector-delta"],
  ];
  const exchange = (i: number): Exchange => {
    const now = Date.now();
    // A distinct body per exchange (its own blob), in a buffer of its own as a socket read hands it over.
    return makeExchange(Buffer.concat([body, Buffer.from(String(i))]), {
      connectionId: "c1",
      requestHeaders: headers,
      mode: "forward",
      outcome: "ok",
      requestEndedAt: now,
      respondedAt: now,
      response: { status: 200, headers: [["Content-Type", "application/json"]], source: "upstream", body: Buffer.from('{"acc":1}') },
    });
  };
  const t0 = cpuTicks(process.pid, process.pid);
  const w0 = performance.now();
  for (let i = 0; i < exchanges; i += perTurn) {
    const xs = Array.from({ length: perTurn }, (_, j) => exchange(i + j));
    await Promise.all(xs.map((x) => sink.commitExchange(session, x)));
    await Promise.all(xs.map((x) => sink.completeExchange(completionOf(x))));
  }
  const cpuMs = (cpuTicks(process.pid, process.pid) - t0) * 10;
  const wallMs = performance.now() - w0;
  await sink.close();
  if (sink !== local) await local.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
  return { loopCpuMsPerExchange: round(cpuMs / exchanges, 4), wallMsPerExchange: round(wallMs / exchanges, 4) };
}

/** Alternates the two ways twice per grouping, so that a busy moment of the machine hits both. */
export async function captureCommitCost(say: (m: string) => void, exchanges = 4000) {
  const result: Record<string, Record<Mode, Array<{ loopCpuMsPerExchange: number; wallMsPerExchange: number }>>> = {};
  for (const perTurn of [1, 4]) {
    const r: Record<Mode, Array<{ loopCpuMsPerExchange: number; wallMsPerExchange: number }>> = { inline: [], thread: [] };
    for (let round_ = 0; round_ < 2; round_++) {
      for (const mode of ["inline", "thread"] as const) {
        say(`capture commit: ${exchanges} exchanges, ${perTurn} per turn, ${mode}`);
        r[mode].push(await run(mode, exchanges, perTurn));
      }
    }
    result[`perTurn${perTurn}`] = r;
  }
  const best = (k: string, mode: Mode) => Math.min(...result[k][mode].map((x) => x.loopCpuMsPerExchange));
  return {
    workload: {
      bodyBytes: telemetryUploadBody().length,
      exchanges,
      note: "main-thread CPU per exchange (commit + completion), lower of two runs",
    },
    runs: result,
    loopCpuMsPerExchange: {
      inline: { perTurn1: best("perTurn1", "inline"), perTurn4: best("perTurn4", "inline") },
      thread: { perTurn1: best("perTurn1", "thread"), perTurn4: best("perTurn4", "thread") },
    },
  };
}
