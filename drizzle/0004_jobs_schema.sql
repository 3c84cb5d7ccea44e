CREATE TABLE "job_clock" (
	"id" integer PRIMARY KEY DEFAULT 1 NOT NULL,
	"virtual_time" double precision DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "job_tenants" (
	"tenant_id" uuid PRIMARY KEY NOT NULL,
	"pass" double precision DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "jobs" (
	"tenant_id" uuid NOT NULL,
	"id" uuid DEFAULT gen_random_uuid() NOT NULL,
	"batch_id" uuid,
	"batch_index" integer DEFAULT 0 NOT NULL,
	"request_hash" text,
	"kind" text NOT NULL,
	"requires" text DEFAULT '' NOT NULL,
	"priority" integer NOT NULL,
	"status" text DEFAULT 'queued' NOT NULL,
	"serial_key" text,
	"input" jsonb NOT NULL,
	"payload" "bytea",
	"key_id" uuid NOT NULL,
	"project" text NOT NULL,
	"environment" text NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer DEFAULT 5 NOT NULL,
	"run_after" timestamp with time zone DEFAULT now() NOT NULL,
	"locked_by" text,
	"locked_until" timestamp with time zone,
	"steps" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"result" jsonb,
	"error_code" text,
	"error_message" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	CONSTRAINT "jobs_tenant_id_id_pk" PRIMARY KEY("tenant_id","id")
);
--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "requests_per_minute" integer;--> statement-breakpoint
ALTER TABLE "plans" ADD COLUMN "max_running_jobs" integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "job_tenants" ADD CONSTRAINT "job_tenants_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "jobs_tenant_runnable_idx" ON "jobs" USING btree ("tenant_id","status","priority","created_at");--> statement-breakpoint
CREATE INDEX "jobs_tenant_batch_idx" ON "jobs" USING btree ("tenant_id","batch_id");--> statement-breakpoint
CREATE INDEX "jobs_running_lease_idx" ON "jobs" USING btree ("locked_until") WHERE "jobs"."status" = 'running';--> statement-breakpoint
CREATE UNIQUE INDEX "jobs_one_running_per_serial_key_idx" ON "jobs" USING btree ("tenant_id","serial_key") WHERE "jobs"."status" = 'running' AND "jobs"."serial_key" IS NOT NULL;