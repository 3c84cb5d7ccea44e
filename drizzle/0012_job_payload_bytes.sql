-- A queued upload's size wherever its bytes are kept (issue 16): in the row on Postgres, in a file
-- beside the embedded database on PGlite, whose single thread a 10 MB payload written and read in
-- one statement held for 0.2-1 s each. The queue caps sum this column; NULL once the payload is dropped.
ALTER TABLE "jobs" ADD COLUMN "payload_bytes" integer;
--> statement-breakpoint
UPDATE "jobs" SET "payload_bytes" = octet_length("payload") WHERE "payload" IS NOT NULL;
