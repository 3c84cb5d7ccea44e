-- Run records and eval cases: the same contract as 0001 (I2). Both are tenant-owned: RLS enabled
-- and forced, a tenant policy for fence_app and the audited platform policy for fence_platform.
-- A tenant writes and reads its own runs and cases but never changes or deletes a run (a record
-- is evidence); only the platform deletes runs, in the retention sweep.

GRANT SELECT, INSERT ON runs, eval_cases TO fence_app;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON runs, eval_cases TO fence_platform;
--> statement-breakpoint
ALTER TABLE runs ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE runs FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE eval_cases ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE eval_cases FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY tenant_isolation ON runs FOR ALL TO fence_app
  USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
  WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
--> statement-breakpoint
CREATE POLICY tenant_isolation ON eval_cases FOR ALL TO fence_app
  USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
  WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
--> statement-breakpoint
CREATE POLICY platform_all ON runs FOR ALL TO fence_platform USING (true) WITH CHECK (true);
--> statement-breakpoint
CREATE POLICY platform_all ON eval_cases FOR ALL TO fence_platform USING (true) WITH CHECK (true);
