import { defineConfig } from "vitest/config";

/**
 * The console's real-browser suite (`npm run test:browser`): Chromium driven by playwright-core
 * against a Fence served on loopback. Kept out of `npm test` (vitest.config.ts excludes
 * test/browser) because it needs a browser on the machine (scripts/setup-chromium.sh).
 */
export default defineConfig({
  test: {
    include: ["test/browser/**/*.test.ts"],
    // One file at a time, each with one browser and one Fence: two Chromiums and two Fences on a
    // 2-core machine would make every timing below a guess.
    pool: "forks",
    maxWorkers: 1,
    // A browser launch and a Fence start (migrations on PGlite) are the slow part: the hooks.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // A browser that cannot start must fail the run, never pass it with nothing run.
    passWithNoTests: false,
  },
});
