import { spawnFence, waitUntilReady, type FenceProcess } from "../../../test/support/fence-process.js";
import { scratchDatabase } from "../../../test/support/scratch-database.js";
import { randomAdminKey, type EvalBackend } from "../instance.js";
import type { IssuedKeyJson, TenantJson } from "../../../test/support/api-types.js";

/**
 * The instance the availability section attacks: a real Fence process (`src/main.ts`, as
 * `npm start` runs it, job workers on), not the in-process instance of the leak suite. Two reasons:
 * the victim and the probe must keep their own clock while Fence's event loop is blocked — in one
 * process a frozen loop would freeze the measurement too — and a frozen instance must be
 * stoppable (SIGKILL) so the remaining attacks still run in a bounded time.
 *
 * Both tenants are on the `enterprise` plan: the victim's steady searches stay far below its
 * limits, and the attacker is a paying tenant with the most the plans allow, the worst case.
 */
export interface AvailabilityInstance {
  url: string;
  victimKey: string;
  attackerKey: string;
  /** Kills the process (it may be frozen) and starts a fresh one with fresh tenants. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

const PLAN = "enterprise";

/**
 * Victim and attacker are different clients, as they would be in production, where both reach
 * Fence through a proxy that appends the peer to X-Forwarded-For (FENCE_TRUSTED_PROXY_HOPS=1).
 * On loopback they would share 127.0.0.1, and a penalty for the address sending bogus keys
 * (issue 14, row 14) would then fall on the victim too. Documentation ranges (RFC 5737).
 */
export const VICTIM_HEADERS: Readonly<Record<string, string>> = { "x-forwarded-for": "198.51.100.10" };
export const ATTACKER_HEADERS: Readonly<Record<string, string>> = { "x-forwarded-for": "203.0.113.66" };

/** Short, distinct notes: the victim's searches find something, and embedding them is quick. */
const VICTIM_NOTES = [
  "Quarterly revenue grew eight percent, led by the northern region and the new support plans.",
  "The onboarding checklist covers laptops, badges, the security training and the first week's meetings.",
  "Incident review: the nightly export failed twice because a disk filled up; alerts now fire at 80 percent.",
  "The vendor contract renews in March; legal wants a shorter notice period and a data processing annex.",
  "Travel policy: economy for flights under six hours, and receipts within thirty days of the trip.",
  "Security training is due every year and takes about forty minutes, quizzes included.",
];

export async function startAvailabilityInstance(backend: EvalBackend): Promise<AvailabilityInstance> {
  let current = await launch(backend);
  return {
    get url() {
      return current.process.url;
    },
    get victimKey() {
      return current.victimKey;
    },
    get attackerKey() {
      return current.attackerKey;
    },
    async restart() {
      await current.kill();
      current = await launch(backend);
    },
    close: () => current.kill(),
  };
}

interface Launched {
  process: FenceProcess;
  victimKey: string;
  attackerKey: string;
  kill(): Promise<void>;
}

/** The named variables of the eval's own environment that are set. */
function passedOn(...names: string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((name) => (process.env[name] ? [[name, process.env[name]]] : [])));
}

async function launch(backend: EvalBackend): Promise<Launched> {
  // A database of its own on Postgres: a restart must not inherit the attacker's queued jobs.
  const scratch = backend.databaseUrl ? await scratchDatabase(backend.databaseUrl, "fence_avail") : undefined;
  const adminKey = randomAdminKey();
  const child = await spawnFence(
    {
      FENCE_ADMIN_KEY: adminKey,
      FENCE_DATA_DIR: "memory://",
      // Poll often, so queued hostile input is picked up inside its own window.
      FENCE_JOB_POLL_MS: "200",
      FENCE_TRUSTED_PROXY_HOPS: "1",
      // Passed on for side-by-side runs (spawnFence drops FENCE_* of its own environment):
      // FENCE_PGLITE_THREAD=false attacks PGlite in-process, FENCE_LARGE_BODY_PACE_MB=0 unpaced bodies.
      ...passedOn("FENCE_PGLITE_THREAD", "FENCE_LARGE_BODY_PACE_MB"),
      ...(scratch ? { DATABASE_URL: scratch.url } : {}),
    },
    // As npm start runs it: the default model threads, two of them reserved for light work.
    { modelThreads: "default" },
  );
  const kill = async () => {
    // SIGKILL at once: a frozen loop would not run the SIGTERM handler anyway.
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await child.exited;
    await scratch?.drop();
  };
  try {
    await waitUntilReady(child, 120_000);
    const admin = (method: string, path: string, body?: unknown) => call(child.url, adminKey, method, `/v1/admin${path}`, body);
    const tenant = async (name: string) => {
      const { id } = (await admin("POST", "/tenants", { name: `${name}-${crypto.randomUUID().slice(0, 8)}` })) as TenantJson;
      await admin("PATCH", `/tenants/${id}/config`, { plan: PLAN });
      return ((await admin("POST", `/tenants/${id}/keys`, { name: "availability-eval" })) as IssuedKeyJson).key;
    };
    const victimKey = await tenant("availability-victim");
    const attackerKey = await tenant("availability-attacker");
    for (const [i, text] of VICTIM_NOTES.entries()) {
      await call(child.url, victimKey, "POST", "/v1/documents", { text, source_id: `victim-note-${i}` });
    }
    return { process: child, victimKey, attackerKey, kill };
  } catch (error) {
    await kill();
    // The process's own last words (LOG_LEVEL=warn) say why a setup call failed.
    const output = child.output().trim().split("\n").slice(-3).join("\n").slice(-1500);
    throw new Error(`${error instanceof Error ? error.message : String(error)}${output ? `\nFence's last output:\n${output}` : ""}`, { cause: error });
  }
}

/** A setup call: any failure aborts the section with the reply in the message. */
async function call(url: string, key: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`availability setup ${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return text ? (JSON.parse(text) as unknown) : undefined;
}
