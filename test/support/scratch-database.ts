import { randomUUID } from "node:crypto";

/**
 * A database of its own on the same Postgres server, dropped afterwards. For suites that must not
 * share rows with others running at the same time: the isolation eval's weakened-lock modes (with
 * RLS and the tenant filter both removed, a shared database would let them touch other suites'
 * tenants), tests that rebuild indexes, and tests that need queued jobs to stay queued (any other
 * instance's job workers on a shared database would run them).
 */
export async function scratchDatabase(baseUrl: string, prefix = "fence_scratch"): Promise<{ url: string; drop(): Promise<void> }> {
  const { default: pg } = await import("pg");
  const name = `${prefix}_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
  const run = async (statement: string) => {
    const client = new pg.Client({ connectionString: baseUrl });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };
  await run(`CREATE DATABASE ${name}`);
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/** The backend itself on PGlite (in memory, private already); on Postgres, a scratch database of its own. */
export async function isolatedBackend<B extends { name: string; databaseUrl?: string | undefined }>(
  backend: B,
  prefix: string,
): Promise<{ backend: B; drop(): Promise<void> }> {
  if (!backend.databaseUrl) return { backend, drop: async () => undefined };
  const scratch = await scratchDatabase(backend.databaseUrl, prefix);
  return { backend: { ...backend, databaseUrl: scratch.url }, drop: scratch.drop };
}

