-- The key change feed (issue 16): every instance keeps verified API keys in memory, so that a
-- refused request costs no database round trip. What can make a cached key wrong is announced
-- here, by the database itself, on commit: a trigger fires whoever writes (the admin API, the CLI,
-- SQL typed by hand), so no code path can forget to announce a change.
--   tenant:<id>  a key of the tenant was added, changed or removed; the tenant's plan or cache
--                secret changed; or the tenant was deleted
--   plan:<name>  a plan's numbers changed
-- Identical payloads in one transaction are delivered once (Postgres folds them), so a purge of a
-- tenant with many keys sends one notification.
CREATE FUNCTION fence_announce_key_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  changed record;
BEGIN
  IF TG_OP = 'DELETE' THEN changed := OLD; ELSE changed := NEW; END IF;
  IF TG_TABLE_NAME = 'plans' THEN
    PERFORM pg_notify('fence_key_changes', 'plan:' || changed.name);
  ELSIF TG_TABLE_NAME = 'tenants' THEN
    PERFORM pg_notify('fence_key_changes', 'tenant:' || changed.id);
  ELSE
    PERFORM pg_notify('fence_key_changes', 'tenant:' || changed.tenant_id);
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER api_keys_announce_change AFTER INSERT OR UPDATE OR DELETE ON api_keys
  FOR EACH ROW EXECUTE FUNCTION fence_announce_key_change();
--> statement-breakpoint
-- data_version is bumped by every upload: only what authentication reads is announced.
CREATE TRIGGER tenants_announce_change AFTER UPDATE OF plan, cache_secret ON tenants
  FOR EACH ROW WHEN (OLD.plan IS DISTINCT FROM NEW.plan OR OLD.cache_secret IS DISTINCT FROM NEW.cache_secret)
  EXECUTE FUNCTION fence_announce_key_change();
--> statement-breakpoint
CREATE TRIGGER tenants_announce_delete AFTER DELETE ON tenants
  FOR EACH ROW EXECUTE FUNCTION fence_announce_key_change();
--> statement-breakpoint
CREATE TRIGGER plans_announce_change AFTER UPDATE OR DELETE ON plans
  FOR EACH ROW EXECUTE FUNCTION fence_announce_key_change();
