import type { IsolationMutations } from "../../src/db/database.js";

/**
 * Defence in depth, proven by mutation. The same attack suite runs with each lock removed in
 * turn: each remaining lock must hold alone (modes 2 and 3), and with both removed (mode 4) the
 * eval must see a leak — otherwise it would be blind, and its zeros in modes 1–3 would mean
 * nothing. The assembly assertion (I4) stays on in modes 1–4: in mode 4 it turns search and chat
 * into errors, while the document routes, which it does not guard, leak.
 *
 * Mode 5 (opt-in, `--modes 5`) also turns the assertion off. It proves the detector is not blind
 * on the paths the assertion guards in mode 4 — search, chat, SSE and the LLM prompt — by
 * requiring a detected leak from each attack listed in `mustLeak`, in every chat variant.
 */
export interface Mode {
  id: number;
  name: string;
  mutations: IsolationMutations;
  /** True for the modes whose purpose is to show the eval can see a leak. */
  expectLeak: boolean;
  /** Attacks that must each be seen leaking (mode 5); otherwise one leak anywhere suffices. */
  mustLeak?: readonly string[];
  /** Not part of the default run. */
  optIn?: boolean;
}

export const MODES: readonly Mode[] = [
  { id: 1, name: "all locks on", mutations: {}, expectLeak: false },
  { id: 2, name: "RLS only (app filter off)", mutations: { disableApplicationFilter: true }, expectLeak: false },
  { id: 3, name: "app filter only (RLS off)", mutations: { disableRowLevelSecurity: true }, expectLeak: false },
  {
    id: 4,
    name: "no locks (RLS + app filter off)",
    mutations: { disableRowLevelSecurity: true, disableApplicationFilter: true },
    expectLeak: true,
  },
  {
    id: 5,
    name: "no locks, no assertion",
    mutations: { disableRowLevelSecurity: true, disableApplicationFilter: true, disableAssemblyAssertion: true },
    expectLeak: true,
    mustLeak: [
      "search for A's canaries verbatim",
      "chat asks for A's canaries and secrets",
      "chat asks for A's secrets, streamed",
      "identical question by A then B (answer cache)",
    ],
    optIn: true,
  },
];

/**
 * On Citus the application filter cannot be switched off: it is what lets Citus plan a tenant's
 * statements at all. Without the tenant predicate a locking read (an upload's `FOR UPDATE` on its
 * source id) and a join between tenant tables span every shard, which Citus refuses, so an
 * instance with that mutation cannot even seed its tenants. Modes 2, 4 and 5 therefore do not run
 * there; row-level security alone is proven on Citus by the I2 suite (fence_app's queries reach every
 * shard and see only their tenant's rows), and the eval's power to see a leak by the other backends.
 */
export const CITUS_NEEDS_THE_FILTER =
  "the application filter is what lets Citus plan a tenant's statements (without it, locking reads and joins span every shard, which Citus refuses)";

/** Whether a mode can run on a backend (see CITUS_NEEDS_THE_FILTER). */
export function modeRunsOn(mode: Mode, backend: string): boolean {
  return backend !== "citus" || !mode.mutations.disableApplicationFilter;
}
