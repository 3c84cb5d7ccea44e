import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  // The generated module is the client files as strings (npm run build:console).
  { ignores: ["node_modules/", ".fence-data/", "dist/", "coverage/", "artifacts/", "src/console/client/assets.generated.ts"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // Tenant data is reached only through Database.withTenant / asPlatformAdmin; a raw driver
      // import outside src/db would be a way around both.
      "no-restricted-imports": [
        "error",
        {
          paths: [
            { name: "pg", message: "Use src/db (withTenant / asPlatformAdmin) instead of a raw driver." },
            { name: "@electric-sql/pglite", message: "Use src/db (withTenant / asPlatformAdmin) instead of a raw driver." },
          ],
        },
      ],
    },
  },
  {
    files: ["src/db/**", "test/**", "bench/**", "evals/**"],
    rules: { "no-restricted-imports": "off" },
  },
  {
    // The console's own browser script: plain ES2017 in the page, no modules, no build step.
    files: ["src/console/client/**/*.js"],
    languageOptions: {
      sourceType: "script",
      globals: Object.fromEntries(
        ["window", "document", "fetch", "FormData", "URLSearchParams", "TextDecoder"].map((name) => [name, "readonly"]),
      ),
    },
    rules: { "@typescript-eslint/no-unused-vars": ["error", { caughtErrors: "none" }] },
  },
);
