import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The console's browser suite needs Chromium and runs on its own: npm run test:browser
    // (vitest.browser.config.ts).
    exclude: [...configDefaults.exclude, "test/browser/**"],
    // Integration suites load the embedding model and a database; keep them in separate workers
    // but few at a time on a 2-core machine.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
