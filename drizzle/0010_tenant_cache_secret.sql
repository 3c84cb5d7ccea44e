-- Issue 14, row 12: cache keys are an HMAC under a per-tenant secret (no guessable hashes of
-- questions in Redis), and a document delete rotates it, so every cached entry of the tenant is
-- unreachable at once on every instance. gen_random_uuid() draws from the server's strong random
-- source; two of them give 244 random bits. A volatile default fills each existing row with its own.
ALTER TABLE "tenants" ADD COLUMN "cache_secret" text DEFAULT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '') NOT NULL;
--> statement-breakpoint
-- The tenant role rotates its own secret (row-level security limits it to its own row), in the
-- same transaction as the delete.
GRANT UPDATE (cache_secret) ON tenants TO fence_app;
