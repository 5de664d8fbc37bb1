// ESLint with type information (typescript-eslint), run by `npm run lint` and by .ci/run before the tests.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "captures/", "certs/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // Escaping control characters for terminals and matching them in captured text is the point of those regexes.
      "no-control-regex": "off",
      // String enums compared with the literals they stand for (wire values) read best as they are.
      "@typescript-eslint/no-unsafe-enum-comparison": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      // Values from captured data are turned into text on purpose (String(v) after the type checks that matter).
      "@typescript-eslint/no-base-to-string": "off",
      // A variable assigned once, after a closure that reads it was made (the proxy's bound address), stays `let`.
      "prefer-const": ["error", { ignoreReadBeforeAssign: true }],
      // Fastify route handlers and stream sources are async by contract, whether or not they await.
      "@typescript-eslint/require-await": "off",
    },
  },
  {
    // Tests read what the CLI and the HTTP API print (JSON.parse gives `any`) and assert on it: typing every
    // such read would add casts, not safety. Everything else holds for tests too.
    files: ["test/**/*.ts", "bench/**/*.ts"],
    rules: {
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/restrict-template-expressions": "off",
      "@typescript-eslint/restrict-plus-operands": "off",
      // Small hand parsers in tests (CSV, HTTP) read best with comma expressions.
      "@typescript-eslint/no-unused-expressions": "off",
      "preserve-caught-error": "off",
    },
  },
  { files: ["**/*.js", "**/*.mjs", "**/*.cjs"], ...tseslint.configs.disableTypeChecked },
  {
    files: ["src/web/static/**/*.js"],
    languageOptions: {
      globals: {
        window: "readonly",
        document: "readonly",
        fetch: "readonly",
        EventSource: "readonly",
        navigator: "readonly",
        location: "readonly",
        history: "readonly",
        URLSearchParams: "readonly",
        console: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
        Blob: "readonly",
        URL: "readonly",
        performance: "readonly",
        Node: "readonly",
      },
    },
  },
  {
    files: ["test/helpers/*.cjs", "scripts/*.mjs"],
    languageOptions: {
      globals: {
        require: "readonly",
        module: "writable",
        process: "readonly",
        console: "readonly",
        Buffer: "readonly",
        __dirname: "readonly",
        URL: "readonly",
      },
    },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
);
