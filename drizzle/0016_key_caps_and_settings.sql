ALTER TABLE "api_keys" ADD COLUMN "tokens_per_month" bigint;--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "spend_per_month_micros" bigint;--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "last_used_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "plans" ADD COLUMN "features" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "budget_reservations" ADD COLUMN "key_id" uuid;--> statement-breakpoint
-- Self-service (issue 18), continued. An owner key edits a key's name, description and limits
-- (PATCH /v1/keys/:id) under the api_keys policy of 0015; last_used_at is written by the platform
-- role only (tenancy/key-use.ts), so a tenant cannot forge it.
GRANT UPDATE (name, description, requests_per_minute, tokens_per_month, spend_per_month_micros) ON api_keys TO fence_app;
--> statement-breakpoint
-- The owner's settings (PATCH /v1/settings) are written as fence_app under the tenant_configs
-- policy of 0003 (own rows only, for reading and writing); no DELETE.
GRANT INSERT, UPDATE (overrides, updated_at) ON tenant_configs TO fence_app;
--> statement-breakpoint
-- last_used_at changes nothing that authentication reads, so writing it must not tell every
-- instance to drop its verified keys (drizzle/0011): the trigger fires only when another column
-- changes. On Citus the trigger does not exist (db/citus.ts drops it: Fence announces changes
-- itself there), and there is nothing to replace.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'api_keys_announce_change' AND tgrelid = 'api_keys'::regclass) THEN
    DROP TRIGGER api_keys_announce_change ON api_keys;
    CREATE TRIGGER api_keys_announce_change AFTER INSERT OR DELETE ON api_keys
      FOR EACH ROW EXECUTE FUNCTION fence_announce_key_change();
    CREATE TRIGGER api_keys_announce_update AFTER UPDATE ON api_keys
      FOR EACH ROW WHEN ((to_jsonb(OLD) - 'last_used_at') IS DISTINCT FROM (to_jsonb(NEW) - 'last_used_at'))
      EXECUTE FUNCTION fence_announce_key_change();
  END IF;
END $$;
