// The proxy clients live in src/demo/ (exhaust demo sends its corpus with them); tests import them from here.
export * from "../../src/demo/client.js";
