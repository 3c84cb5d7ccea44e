-- Console sign-outs, remembered until the session would have expired (db/schema/console.ts). The
-- platform's own table: fence_platform reads, adds and deletes rows; no policy for fence_app, so
-- no tenant role reads it. Not tenant-owned: on Citus a reference table (db/citus.ts).
CREATE TABLE "console_sessions_ended" (
	"session_id" text PRIMARY KEY NOT NULL,
	"ended_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
GRANT SELECT, INSERT, DELETE ON console_sessions_ended TO fence_platform;
--> statement-breakpoint
ALTER TABLE console_sessions_ended ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE console_sessions_ended FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY platform_all ON console_sessions_ended FOR ALL TO fence_platform USING (true) WITH CHECK (true);
