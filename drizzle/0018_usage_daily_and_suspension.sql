-- On a Citus cluster whose tables are already distributed, this migration reads shards of the
-- ledger and the runs and then changes co-located tables in one transaction: Citus allows that only
-- if the reads went over one connection per node (a setting without effect elsewhere).
SET LOCAL citus.multi_shard_modify_mode TO 'sequential';
--> statement-breakpoint
-- The daily rollups of the ledger (metering/usage-daily.ts) and of the runs (runs/run-daily.ts).
CREATE TABLE "usage_daily" (
	"tenant_id" uuid NOT NULL,
	"day" date NOT NULL,
	"model" text NOT NULL,
	"project" text NOT NULL,
	"environment" text NOT NULL,
	"feature" text NOT NULL,
	"key_id" uuid NOT NULL,
	"events" bigint NOT NULL,
	"input_tokens" bigint NOT NULL,
	"output_tokens" bigint NOT NULL,
	"cached_tokens" bigint NOT NULL,
	"cost_micros" bigint NOT NULL,
	"failed_events" bigint DEFAULT 0 NOT NULL,
	"duplicated_events" bigint DEFAULT 0 NOT NULL,
	"duplicates_prevented" bigint DEFAULT 0 NOT NULL,
	"retries" bigint DEFAULT 0 NOT NULL,
	"internal_rate_events" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "usage_daily_pk" PRIMARY KEY("tenant_id","day","model","project","environment","feature","key_id")
);
--> statement-breakpoint
CREATE TABLE "runs_daily" (
	"tenant_id" uuid NOT NULL,
	"day" date NOT NULL,
	"kind" text NOT NULL,
	"status" text NOT NULL,
	"error_code" text NOT NULL,
	"latency_bucket" smallint NOT NULL,
	"runs" bigint NOT NULL,
	CONSTRAINT "runs_daily_pk" PRIMARY KEY("tenant_id","day","kind","status","error_code","latency_bucket")
);
--> statement-breakpoint
-- Backfilled from what exists. The connecting role owns the tables, and FORCE ROW LEVEL SECURITY
-- would hide every row from an owner that is not a superuser: lifted for the owner (only:
-- fence_app and fence_platform are not owners) for these reads, within this transaction. The same
-- sums as rebuildUsageDaily() and rebuildRunsDaily().
ALTER TABLE usage_events NO FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE runs NO FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
INSERT INTO usage_daily (tenant_id, day, model, project, environment, feature, key_id, events, input_tokens, output_tokens,
    cached_tokens, cost_micros, failed_events, duplicated_events, duplicates_prevented, retries, internal_rate_events)
  SELECT tenant_id, (occurred_at AT TIME ZONE 'UTC')::date, model, project, environment, feature,
    coalesce(key_id, '00000000-0000-0000-0000-000000000000'::uuid),
    count(*) FILTER (WHERE status = 'charged'),
    coalesce(sum(input_tokens) FILTER (WHERE status = 'charged'), 0),
    coalesce(sum(output_tokens) FILTER (WHERE status = 'charged'), 0),
    coalesce(sum(cached_tokens) FILTER (WHERE status = 'charged'), 0),
    coalesce(sum(cost_micros) FILTER (WHERE status = 'charged'), 0),
    count(*) FILTER (WHERE status = 'failed'),
    count(*) FILTER (WHERE duplicate_count > 0),
    coalesce(sum(duplicate_count), 0),
    count(*) FILTER (WHERE retry_of IS NOT NULL),
    count(*) FILTER (WHERE status = 'charged' AND price_version IS NULL)
  FROM usage_events
  GROUP BY 1, 2, 3, 4, 5, 6, 7;
--> statement-breakpoint
INSERT INTO runs_daily (tenant_id, day, kind, status, error_code, latency_bucket, runs)
  SELECT tenant_id, (started_at AT TIME ZONE 'UTC')::date, kind, status, coalesce(error_code, ''),
    floor(ln(1 + greatest(latency_ms, 0)::float8) / ln(1.1::float8))::smallint, count(*)
  FROM runs
  GROUP BY 1, 2, 3, 4, 5, 6;
--> statement-breakpoint
ALTER TABLE usage_events FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE runs FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
-- Both rollups are tenant-owned like the rows they count. fence_app adds to its own tenant's rows in
-- the statement or transaction that writes an event or a run, and reads them; fence_platform reads
-- every tenant's (the admin report), rebuilds them, trims runs_daily with the retention sweep and
-- purges a tenant's. The own-rows policies are in their per-row form (no subquery), so the tables
-- can be distributed on a Citus cluster after this migration (db/citus.ts does).
GRANT SELECT, INSERT, UPDATE ON usage_daily, runs_daily TO fence_app;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON usage_daily, runs_daily TO fence_platform;
--> statement-breakpoint
ALTER TABLE usage_daily ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE usage_daily FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY tenant_isolation ON usage_daily FOR ALL TO fence_app
  USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
--> statement-breakpoint
CREATE POLICY platform_all ON usage_daily FOR ALL TO fence_platform USING (true) WITH CHECK (true);
--> statement-breakpoint
ALTER TABLE runs_daily ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE runs_daily FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY tenant_isolation ON runs_daily FOR ALL TO fence_app
  USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
--> statement-breakpoint
CREATE POLICY platform_all ON runs_daily FOR ALL TO fence_platform USING (true) WITH CHECK (true);
--> statement-breakpoint
-- Last: on Citus these change distributed tables, which the reads above make possible only in
-- sequential mode (the first statement).
-- Suspension (tenancy/tenant-admin.ts).
ALTER TABLE "tenants" ADD COLUMN "suspended_at" timestamp with time zone;
--> statement-breakpoint
-- The platform's reports over every tenant's ledger in a time window (db/schema/metering.ts).
CREATE INDEX "usage_events_time_brin_idx" ON "usage_events" USING brin ("occurred_at");
--> statement-breakpoint
-- The job list's order (jobs/job-queue.ts): newest first, a batch in its order.
CREATE INDEX "jobs_tenant_listing_idx" ON "jobs" USING btree ("tenant_id","created_at" DESC NULLS LAST,"batch_index","id" DESC NULLS LAST);
--> statement-breakpoint
-- Suspension changes what authentication answers, so the key change feed (0011) announces it too,
-- whoever writes it (SQL typed by hand included). On Citus the triggers are gone (db/citus.ts:
-- Fence announces there itself), so the trigger is replaced only where it exists.
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'tenants_announce_change' AND tgrelid = 'tenants'::regclass) THEN
    DROP TRIGGER tenants_announce_change ON tenants;
    CREATE TRIGGER tenants_announce_change AFTER UPDATE OF plan, cache_secret, suspended_at ON tenants
      FOR EACH ROW WHEN (OLD.plan IS DISTINCT FROM NEW.plan OR OLD.cache_secret IS DISTINCT FROM NEW.cache_secret
                         OR OLD.suspended_at IS DISTINCT FROM NEW.suspended_at)
      EXECUTE FUNCTION fence_announce_key_change();
  END IF;
END $$;
