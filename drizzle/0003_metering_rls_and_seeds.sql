-- Cost isolation tables: the same contract as 0001 (I2). Tenant-owned tables get RLS enabled and
-- forced with a tenant policy for fence_app and an audited platform policy for fence_platform.
-- Plans and prices are platform data that tenants may read but never change.

GRANT SELECT ON plans, prices TO fence_app;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON plans, prices TO fence_platform;
--> statement-breakpoint
GRANT SELECT ON tenant_configs TO fence_app;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE ON usage_events, usage_counters TO fence_app;
--> statement-breakpoint
GRANT SELECT, INSERT, DELETE ON budget_reservations TO fence_app;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_configs, usage_events, usage_counters, budget_reservations TO fence_platform;
--> statement-breakpoint
ALTER TABLE tenant_configs ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE tenant_configs FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE usage_events ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE usage_events FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE usage_counters ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE usage_counters FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE budget_reservations ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE budget_reservations FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY tenant_isolation ON tenant_configs FOR ALL TO fence_app
  USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
  WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
--> statement-breakpoint
CREATE POLICY tenant_isolation ON usage_events FOR ALL TO fence_app
  USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
  WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
--> statement-breakpoint
CREATE POLICY tenant_isolation ON usage_counters FOR ALL TO fence_app
  USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
  WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
--> statement-breakpoint
CREATE POLICY tenant_isolation ON budget_reservations FOR ALL TO fence_app
  USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
  WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
--> statement-breakpoint
CREATE POLICY platform_all ON tenant_configs FOR ALL TO fence_platform USING (true) WITH CHECK (true);
--> statement-breakpoint
CREATE POLICY platform_all ON usage_events FOR ALL TO fence_platform USING (true) WITH CHECK (true);
--> statement-breakpoint
CREATE POLICY platform_all ON usage_counters FOR ALL TO fence_platform USING (true) WITH CHECK (true);
--> statement-breakpoint
CREATE POLICY platform_all ON budget_reservations FOR ALL TO fence_platform USING (true) WITH CHECK (true);
--> statement-breakpoint
-- Seeded plans. Budgets are tokens (input + output, all features) and money in micro-units;
-- NULL means unlimited. NULL models mean "the deployment's LLM_MODEL / LLM_FALLBACK_MODEL".
INSERT INTO plans (name, tokens_per_day, tokens_per_month, spend_per_month_micros, downgrade_allowed,
                   downgrade_threshold, requests_per_minute, tokens_per_minute, max_concurrency, scheduling_weight)
VALUES ('free',        200000,   2000000,    1000000, true, 0.9,   60,   60000,  2,  1),
       ('pro',        2000000,  40000000,  100000000, true, 0.9,  600,  600000,  8,  4),
       ('enterprise', 20000000, 400000000, 2000000000, true, 0.9, 3000, 3000000, 32, 16)
ON CONFLICT (name) DO NOTHING;
--> statement-breakpoint
-- A tenant's plan must exist. Tenants created before plans existed keep working on `free`.
UPDATE tenants SET plan = 'free' WHERE plan NOT IN (SELECT name FROM plans);
--> statement-breakpoint
ALTER TABLE tenants ADD CONSTRAINT tenants_plan_fk FOREIGN KEY (plan) REFERENCES plans(name) ON UPDATE CASCADE;
