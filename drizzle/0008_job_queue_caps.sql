ALTER TABLE "plans" ADD COLUMN "max_queued_jobs" integer DEFAULT 1000;--> statement-breakpoint
ALTER TABLE "plans" ADD COLUMN "max_queued_bytes" bigint DEFAULT 1073741824;