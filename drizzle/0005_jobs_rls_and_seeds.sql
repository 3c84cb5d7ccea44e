-- Durable jobs: the same contract as 0001 (I2). `jobs` is tenant-owned: RLS enabled and forced,
-- a tenant policy for fence_app (a request enqueues and reads its own jobs; a worker acting for
-- the job's tenant records steps), and the audited platform policy for the scheduler's claims.
-- The scheduler's state (job_tenants, job_clock) is for fence_platform only: tenants never see it.

GRANT SELECT, INSERT, UPDATE ON jobs TO fence_app;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON jobs, job_tenants, job_clock TO fence_platform;
--> statement-breakpoint
ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE jobs FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE job_tenants ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE job_tenants FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY tenant_isolation ON jobs FOR ALL TO fence_app
  USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
  WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
--> statement-breakpoint
CREATE POLICY platform_all ON jobs FOR ALL TO fence_platform USING (true) WITH CHECK (true);
--> statement-breakpoint
CREATE POLICY platform_all ON job_tenants FOR ALL TO fence_platform USING (true) WITH CHECK (true);
--> statement-breakpoint
INSERT INTO job_clock (id, virtual_time) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
--> statement-breakpoint
-- Jobs of one tenant running at once, over all instances; weights (1 / 4 / 16) were seeded in 0003.
UPDATE plans SET max_running_jobs = CASE name WHEN 'pro' THEN 2 WHEN 'enterprise' THEN 4 ELSE max_running_jobs END;
