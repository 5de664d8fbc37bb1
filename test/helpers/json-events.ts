// The encoders live in src/demo/ (exhaust demo builds its corpus with them); tests import them from here.
export * from "../../src/demo/json-events.js";
