/**
 * Fence's tables, one file per domain under src/db/schema/, re-exported here: the one import
 * point for the code, and the file drizzle-kit reads (drizzle.config.ts), so it sees every table.
 *
 * `tenant_id` is the first column of every tenant-owned key and index, so the tables can be
 * distributed by tenant (Citus) without code changes, and so the planner answers a small tenant
 * from a b-tree range instead of the shared vector index.
 *
 * Each table's row-level security is declared next to it (`<table>Rls`, see schema/rls.ts) and
 * created by the hand-written migrations in drizzle/, with the roles and grants;
 * test/integration/db/schema-row-level-security.test.ts proves the two agree.
 */
export * from "./schema/tenancy.js";
export * from "./schema/documents.js";
export * from "./schema/plans.js";
export * from "./schema/metering.js";
export * from "./schema/jobs.js";
export * from "./schema/runs.js";
export * from "./schema/audit.js";
export * from "./schema/console.js";
