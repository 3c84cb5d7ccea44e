-- Queued uploads' bytes on Postgres, written and read by a Node instance on a thread of its own
-- (issue 16: 10 MB sent and read back on the event loop's thread took it 0.1-0.2 s each way).
-- Tenant-owned, the same contract as 0005's jobs: RLS enabled and forced, the tenant policy for
-- fence_app, the audited platform policy for the sweep.
CREATE TABLE "job_payloads" (
	"tenant_id" uuid NOT NULL,
	"job_id" uuid NOT NULL,
	"bytes" "bytea" NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "job_payloads_tenant_id_job_id_pk" PRIMARY KEY("tenant_id","job_id")
);
--> statement-breakpoint
ALTER TABLE "job_payloads" ADD CONSTRAINT "job_payloads_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
GRANT SELECT, INSERT, DELETE ON job_payloads TO fence_app;
--> statement-breakpoint
GRANT SELECT, INSERT, DELETE ON job_payloads TO fence_platform;
--> statement-breakpoint
ALTER TABLE job_payloads ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE job_payloads FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY tenant_isolation ON job_payloads FOR ALL TO fence_app
  USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
  WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
--> statement-breakpoint
CREATE POLICY platform_all ON job_payloads FOR ALL TO fence_platform USING (true) WITH CHECK (true);
