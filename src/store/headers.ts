import type { RawHeaders } from "../types.js";

/** A stored header column (JSON [[name, value], ...]) as pairs in wire order; null stays null. */
export const parsePairs = (text: string | null): RawHeaders | null => (text === null ? null : (JSON.parse(text) as RawHeaders));
