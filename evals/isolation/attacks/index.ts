import type { Attack } from "../attack.js";
import { consoleAttacks } from "./console.js";
import { closingControls, openingControls } from "./controls.js";
import { documentAttacks } from "./documents.js";
import { identityAttacks } from "./identity.js";
import { jobAttacks } from "./jobs.js";
import { keyCacheAttacks } from "./key-cache.js";
import { keyAttacks } from "./keys.js";
import { limitAttacks } from "./limits.js";
import { metricsAttacks } from "./metrics.js";
import { retrievalAttacks } from "./retrieval.js";
import { runAttacks } from "./runs.js";
import { scopeAttacks } from "./scopes.js";
import { settingsAttacks } from "./settings.js";
import { smugglingAttacks } from "./smuggling.js";
import { usageAttacks } from "./usage.js";

/**
 * The suite, in order. Order matters only where an attack could succeed destructively: with
 * every lock off (mode 4), B really can overwrite and delete A's documents, so those attacks
 * run last and every read-only attack sees A's corpus whole. The job attacks that need A's jobs
 * still queued come before the ones that run them (see jobs.ts); the run attacks follow them,
 * so A's job attempts are among the runs B goes after. The key-cache attacks revoke a key of A's
 * and make and delete tenants of their own, so they come after every attack that counts A's runs,
 * usage or keys. The scope attacks issue and revoke keys of B's own and read A's runs by id, so
 * they follow the run attacks too. The self-service key attacks (keys.ts) follow the scope attacks:
 * they make, rotate and revoke keys of B's own, and with every lock off B really revokes a spare
 * key of A's and rotates A's own key (with an hour's grace, so A's key works for every later attack).
 * The settings attacks (settings.ts) follow them: they move B between plans and put a canary persona
 * on A, restoring both configurations afterwards, and with every lock off B really renames A's own
 * key and changes a spare key of A's (revoked again), which no later attack depends on. The console
 * attacks (console.ts) come last: through B's console sessions they write only to objects made for
 * them (a spare document and key of A's, B's scratch documents and keys), never to what the
 * attacks above rely on.
 */
export const ATTACKS: readonly Attack[] = [
  ...openingControls,
  ...identityAttacks,
  ...smugglingAttacks,
  ...retrievalAttacks,
  ...usageAttacks,
  ...jobAttacks,
  ...runAttacks,
  ...limitAttacks,
  ...keyCacheAttacks,
  ...scopeAttacks,
  ...keyAttacks,
  ...settingsAttacks,
  ...consoleAttacks,
  ...metricsAttacks,
  ...documentAttacks,
  ...closingControls,
];
