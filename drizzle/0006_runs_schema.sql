CREATE TABLE "eval_cases" (
	"tenant_id" uuid NOT NULL,
	"id" uuid DEFAULT gen_random_uuid() NOT NULL,
	"question" text NOT NULL,
	"expected_document_ids" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"must_contain" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"must_not_contain" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"source_run_id" uuid,
	"source_request_id" text,
	"reported_answer" text,
	"prompt_version" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "eval_cases_tenant_id_id_pk" PRIMARY KEY("tenant_id","id")
);
--> statement-breakpoint
CREATE TABLE "runs" (
	"tenant_id" uuid NOT NULL,
	"id" uuid DEFAULT gen_random_uuid() NOT NULL,
	"request_id" text NOT NULL,
	"kind" text NOT NULL,
	"status" text NOT NULL,
	"error_code" text,
	"error_message" text,
	"key_id" uuid,
	"project" text NOT NULL,
	"environment" text NOT NULL,
	"prompt_version" text,
	"provider" text,
	"model" text,
	"question" text,
	"answer" text,
	"steps" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"finished_at" timestamp with time zone NOT NULL,
	"latency_ms" integer NOT NULL,
	CONSTRAINT "runs_tenant_id_id_pk" PRIMARY KEY("tenant_id","id")
);
--> statement-breakpoint
ALTER TABLE "eval_cases" ADD CONSTRAINT "eval_cases_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "runs" ADD CONSTRAINT "runs_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "eval_cases_tenant_created_idx" ON "eval_cases" USING btree ("tenant_id","created_at","id");--> statement-breakpoint
CREATE INDEX "runs_tenant_started_idx" ON "runs" USING btree ("tenant_id","started_at","id");--> statement-breakpoint
CREATE INDEX "runs_tenant_request_idx" ON "runs" USING btree ("tenant_id","request_id");--> statement-breakpoint
CREATE INDEX "runs_tenant_prompt_version_idx" ON "runs" USING btree ("tenant_id","prompt_version","started_at");