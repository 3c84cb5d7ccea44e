CREATE TABLE "audit_events" (
	"tenant_id" uuid NOT NULL,
	"id" uuid DEFAULT gen_random_uuid() NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"actor" text NOT NULL,
	"actor_key_id" uuid,
	"action" text NOT NULL,
	"target_id" text,
	"before" jsonb,
	"after" jsonb,
	"request_id" text,
	CONSTRAINT "audit_events_tenant_id_id_pk" PRIMARY KEY("tenant_id","id")
);
--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "created_by_key_id" uuid;--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "prior_key_hash" text;--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "prior_key_expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "secret_set_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
CREATE INDEX "audit_events_tenant_at_idx" ON "audit_events" USING btree ("tenant_id","at","id");--> statement-breakpoint
CREATE INDEX "api_keys_prior_key_hash_idx" ON "api_keys" USING btree ("prior_key_hash");--> statement-breakpoint
-- Self-service (issue 18): a tenant's owner key manages the tenant's keys as fence_app, under the
-- same contract as every tenant table (I2): RLS enabled and forced (since 0001), an own-rows policy.
-- fence_app may read its tenant's keys, issue them and change only what revoking and rotating
-- change; it holds no DELETE, so a key is revoked, never erased. The policy is in its per-row form
-- (no subquery), so this migration also applies to an api_keys table already distributed on Citus.
-- SELECT includes key_hash: a rotation moves the current hash to prior_key_hash in one statement.
-- A tenant can thus read its own keys' SHA-256 hashes, which authenticate nothing (a key is 238
-- random bits; the hash of a hash is not a key) and which no route returns.
GRANT SELECT, INSERT ON api_keys TO fence_app;
--> statement-breakpoint
GRANT UPDATE (revoked_at, key_hash, prefix, prior_key_hash, prior_key_expires_at, secret_set_at) ON api_keys TO fence_app;
--> statement-breakpoint
CREATE POLICY tenant_isolation ON api_keys FOR ALL TO fence_app
  USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
--> statement-breakpoint
-- The audit trail: append-only for both roles (no UPDATE, no DELETE, not even for the platform),
-- RLS forced, an owner reads only its own tenant's events.
GRANT SELECT, INSERT ON audit_events TO fence_app, fence_platform;
--> statement-breakpoint
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY tenant_isolation ON audit_events FOR ALL TO fence_app
  USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
--> statement-breakpoint
CREATE POLICY platform_all ON audit_events FOR ALL TO fence_platform USING (true) WITH CHECK (true);
