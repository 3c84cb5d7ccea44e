-- A queued upload's bytes are read back in slices (issue 16): one 10 MB value in a single reply took
-- ~150 ms of the event loop to decode, every other tenant's wait. Stored uncompressed out of line,
-- a slice is fetched without decompressing the value from its start; an upload is usually
-- compressed already (PDF), and the payload is dropped when its job ends.
ALTER TABLE "jobs" ALTER COLUMN "payload" SET STORAGE EXTERNAL;
