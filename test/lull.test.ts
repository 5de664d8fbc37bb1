/**
 * The processing thread decodes in the lulls of capture traffic (src/pipeline/lull.ts): the gate's
 * decisions against a real WriterPriority, whose capture side counts its batches in shared memory.
 */
import { describe, expect, it } from "vitest";
import { LullGate } from "../src/pipeline/lull.js";
import { WriterPriority } from "../src/store/writer-priority.js";

describe("LullGate", () => {
  it("lets the thread decode at once while the capture side is quiet", () => {
    const priority = new WriterPriority();
    const gate = new LullGate(priority, 25, 1000);
    expect(gate.wait(0)).toBe(0);
    expect(gate.wait(1)).toBe(0);
  });

  it("waits one quiet window after capture traffic, then decodes once the window passed without any", () => {
    const priority = new WriterPriority();
    const gate = new LullGate(priority, 25, 1000);
    priority.raise();
    expect(gate.wait(0)).toBe(25);
    // Nothing captured during the window: a lull.
    expect(gate.wait(25)).toBe(0);
  });

  it("under traffic that never pauses, decodes one exchange per longest deferral, no more", () => {
    const priority = new WriterPriority();
    const gate = new LullGate(priority, 25, 1000);
    const decodedAt: number[] = [];
    for (let now = 0; now <= 3000;) {
      priority.raise(); // a capture batch in every window
      const wait = gate.wait(now);
      if (wait === 0) {
        decodedAt.push(now);
        now += 1;
      } else now += wait;
    }
    expect(decodedAt).toEqual([1000, 2001]);
  });

  it("counts the capture side's batches in the signal another thread reads", () => {
    const a = new WriterPriority();
    const b = new WriterPriority(a.signal);
    const before = b.captureBatches();
    a.raise();
    a.lower();
    a.raise();
    expect(b.captureBatches() - before).toBe(2);
  });
});
