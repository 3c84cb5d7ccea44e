-- Isolation contract, invariant I2: every tenant-owned table has row-level security enabled AND
-- forced (so even the table owner is filtered), and Fence runs tenant queries as `fence_app`, a role
-- that is neither superuser, owner, nor BYPASSRLS. A transaction that has not set `app.tenant_id`
-- sees no rows: the setting is NULL, and `tenant_id = NULL` is never true.
--
-- `fence_platform` is the role of explicit platform-admin operations (create tenants, issue keys,
-- authenticate a key, purge a tenant). It is reached only through `asPlatformAdmin()` in src/db.

DO $$ BEGIN CREATE ROLE fence_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
--> statement-breakpoint
DO $$ BEGIN CREATE ROLE fence_platform NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
--> statement-breakpoint
-- The connecting user must be able to SET ROLE to both (a no-op for a superuser).
DO $$ BEGIN EXECUTE format('GRANT fence_app, fence_platform TO %I', current_user);
EXCEPTION WHEN OTHERS THEN NULL; END $$;
--> statement-breakpoint
GRANT USAGE ON SCHEMA public TO fence_app, fence_platform;
--> statement-breakpoint
-- Tenants may read their own row and bump only its data version (column-level grant).
GRANT SELECT, UPDATE (data_version) ON tenants TO fence_app;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON documents, chunks TO fence_app;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, api_keys, documents, chunks TO fence_platform;
--> statement-breakpoint
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE documents FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE chunks ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE chunks FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
-- `(select …)` makes the planner evaluate the setting once per query, not once per row.
CREATE POLICY tenant_self ON tenants FOR ALL TO fence_app
  USING (id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
  WITH CHECK (id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
--> statement-breakpoint
CREATE POLICY tenant_isolation ON documents FOR ALL TO fence_app
  USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
  WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
--> statement-breakpoint
CREATE POLICY tenant_isolation ON chunks FOR ALL TO fence_app
  USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
  WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
--> statement-breakpoint
-- No policy on api_keys for fence_app: a tenant query can never read key hashes.
CREATE POLICY platform_all ON tenants FOR ALL TO fence_platform USING (true) WITH CHECK (true);
--> statement-breakpoint
CREATE POLICY platform_all ON api_keys FOR ALL TO fence_platform USING (true) WITH CHECK (true);
--> statement-breakpoint
CREATE POLICY platform_all ON documents FOR ALL TO fence_platform USING (true) WITH CHECK (true);
--> statement-breakpoint
CREATE POLICY platform_all ON chunks FOR ALL TO fence_platform USING (true) WITH CHECK (true);
