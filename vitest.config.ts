import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Real sockets and child processes: give each file its own process and generous time.
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
