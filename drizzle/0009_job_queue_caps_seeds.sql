-- Caps on a tenant's unfinished jobs and on the bytes of their kept uploads, checked when an upload
-- is queued (plans.max_queued_jobs, plans.max_queued_bytes). Plans made later take the column
-- defaults (1,000 jobs, 1 GiB); the seeded ones: free 200 jobs / 256 MiB, pro 2,000 / 2 GiB,
-- enterprise 10,000 / 10 GiB.
UPDATE plans SET
  max_queued_jobs = CASE name WHEN 'free' THEN 200 WHEN 'pro' THEN 2000 WHEN 'enterprise' THEN 10000 ELSE max_queued_jobs END,
  max_queued_bytes = CASE name
    WHEN 'free' THEN 268435456
    WHEN 'pro' THEN 2147483648
    WHEN 'enterprise' THEN 10737418240
    ELSE max_queued_bytes END;
