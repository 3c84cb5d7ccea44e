/**
 * Imported first by integration/platform/worker-contract.test.ts, before anything loads harness.ts: makes the harness's
 * backend list the Worker alone (it reads this once, when it is loaded). No effect without DATABASE_URL.
 */
process.env.FENCE_CONTRACT_TARGET = "worker";
