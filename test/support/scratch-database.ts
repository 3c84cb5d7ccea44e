import { randomUUID } from "node:crypto";

/**
 * A database of its own on the same Postgres server, dropped afterwards. For suites that must not
 * share rows with others running at the same time: the isolation eval's weakened-lock modes (with
 * RLS and the tenant filter both removed, a shared database would let them touch other suites'
 * tenants), tests that rebuild indexes, and tests that need queued jobs to stay queued (any other
 * instance's job workers on a shared database would run them).
 */
export async function scratchDatabase(baseUrl: string, prefix = "fence_scratch"): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
  const workers = await citusWorkers(baseUrl);
  // On a Citus cluster the database is made on every node, and the coordinator told of its workers.
  const nodes = [baseUrl, ...workers.map((worker) => nodeUrl(baseUrl, worker.host, worker.port))];
  for (const node of nodes) await run(node, `CREATE DATABASE ${name}`);
  const url = withDatabase(baseUrl, name);
  if (workers.length > 0) {
    for (const node of nodes) await run(withDatabase(node, name), "CREATE EXTENSION citus; CREATE EXTENSION vector");
    const coordinator = new URL(baseUrl);
    await run(url, `SELECT citus_set_coordinator_host('${coordinator.hostname}', ${Number(coordinator.port || 5432)})`);
    for (const worker of workers) await run(url, `SELECT citus_add_node('${worker.host}', ${worker.port})`);
  }
  return {
    url,
    drop: async () => {
      for (const node of nodes) await run(node, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

async function run(url: string, statement: string): Promise<{ rows: Record<string, unknown>[] }> {
  const { default: pg } = await import("pg");
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(statement);
  } finally {
    await client.end();
  }
}

/** The worker nodes when `baseUrl` is a Citus coordinator; none on a plain Postgres. */
async function citusWorkers(baseUrl: string): Promise<{ host: string; port: number }[]> {
  const { rows } = await run(baseUrl, "SELECT 1 FROM pg_extension WHERE extname = 'citus'");
  if (rows.length === 0) return [];
  const workers = await run(baseUrl, "SELECT nodename AS host, nodeport AS port FROM pg_dist_node WHERE groupid <> 0 ORDER BY nodeid");
  return workers.rows as { host: string; port: number }[];
}

function withDatabase(baseUrl: string, name: string): string {
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

function nodeUrl(baseUrl: string, host: string, port: number): string {
  const url = new URL(baseUrl);
  url.hostname = host;
  url.port = String(port);
  return url.toString();
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

