import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prices } from "../../../src/db/schema.js";
import { recordUsage } from "../../../src/metering/ledger.js";
import { rebuildUsageDaily } from "../../../src/metering/usage-daily.js";
import type { UsageRecord } from "../../../src/metering/usage-event.js";
import { expectError } from "../../support/api-contract.js";
import { parseCsv } from "../../support/csv.js";
import { ADMIN_KEY, backends, TestFence, type TestTenant } from "../../support/harness.js";
import { contextFor, readJson } from "../../support/isolation-helpers.js";
import type { AdminUsageReportJson, IssuedKeyJson, ReconciliationJson, UsageReportJson } from "../../support/api-types.js";

/**
 * Showback over HTTP: a tenant reads its own metered usage (never another's), grouped six ways (by key too)
 * with exact totals and windows; the admin reads everyone's, as JSON or CSV, and a reconciliation
 * of failures, refused duplicates, retries and internal-rate usage. Usage rows are written through
 * the real ledger (`recordUsage` in a tenant transaction), then dated into a window of their own:
 * a random day decades ago, so other suites sharing the Postgres database cannot add rows to it.
 */

type Totals = UsageReportJson["totals"];

const DAY = 24 * 60 * 60 * 1000;
const run = randomBytes(4).toString("hex");
const CHAT_MODEL = `showback-chat-${run}`;
const EMBED_MODEL = `showback-embed-${run}`;
const B_MODEL = `showback-b-${run}`;
/** Per million tokens, in micro-units: input 2, cached input 0.5, output 8 (money units). */
const PRICE = { input: 2_000_000, cached: 500_000, output: 8_000_000 };

/** Midnight UTC of a random day in 1990–2019: a window no other suite writes into. */
const day0 = Date.UTC(1990 + Math.floor(Math.random() * 30), Math.floor(Math.random() * 12), 1 + Math.floor(Math.random() * 27));
const isoDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const at = (day: number, hour: number) => new Date(day0 + day * DAY + hour * 3600_000);

/** A's events. `cost` is what the price above must give: (input − cached)·2 + cached·0.5 + output·8, per token in micro-units. */
interface Fixture extends Omit<UsageRecord, "eventId"> {
  id: string;
  when: Date;
  key: "main" | "mobile";
  project: string;
  environment: string;
  cost: number;
  times?: number;
}
const A_EVENTS: Fixture[] = [
  { id: "e1", when: at(0, 1), key: "main", project: "default", environment: "prod", feature: "chat", provider: "test", model: CHAT_MODEL, inputTokens: 100, outputTokens: 50, cachedTokens: 20, status: "charged", cost: 570, times: 2 },
  { id: "e2", when: at(1, 2), key: "main", project: "default", environment: "prod", feature: "embed_documents", provider: "test", model: EMBED_MODEL, inputTokens: 1000, outputTokens: 0, status: "charged", cost: 0 },
  { id: "e3", when: at(1, 5), key: "mobile", project: "mobile", environment: "test", feature: "chat", provider: "test", model: CHAT_MODEL, inputTokens: 200, outputTokens: 80, status: "charged", cost: 1040 },
  { id: "e4", when: at(2, 3), key: "main", project: "default", environment: "prod", feature: "chat", provider: "test", model: CHAT_MODEL, inputTokens: 300, outputTokens: 0, status: "failed", error: "provider answered 500", cost: 0 },
  { id: "e6", when: at(2, 4), key: "main", project: "default", environment: "prod", feature: "chat", provider: "test", model: CHAT_MODEL, inputTokens: 300, outputTokens: 60, status: "charged", retryOf: `${run}-e4`, cost: 1080 },
  // Just before the window: never in it.
  { id: "e5", when: new Date(day0 - 3600_000), key: "main", project: "default", environment: "prod", feature: "chat", provider: "test", model: CHAT_MODEL, inputTokens: 9999, outputTokens: 9999, status: "charged", cost: 99_990 },
];
const B_EVENT: Fixture = { id: "b1", when: at(0, 6), key: "main", project: "default", environment: "prod", feature: "chat", provider: "test", model: B_MODEL, inputTokens: 7, outputTokens: 3, status: "charged", cost: 0, times: 3 };

const WINDOW = `from=${isoDate(day0)}&to=${isoDate(day0 + 3 * DAY)}`;

/** The report the ledger must give for `events`, computed here independently of the service. */
function expected(events: Fixture[], keyOf: (e: Fixture) => string): Pick<UsageReportJson, "rows" | "totals"> {
  const zero = (): Totals => ({ events: 0, input_tokens: 0, output_tokens: 0, cached_tokens: 0, total_tokens: 0, cost_micros: 0 });
  const groups = new Map<string, Totals>();
  const totals = zero();
  for (const e of events.filter((x) => x.status === "charged" && x.when.getTime() >= day0 && x.when.getTime() < day0 + 3 * DAY)) {
    const key = keyOf(e);
    const g = groups.get(key) ?? zero();
    for (const t of [g, totals]) {
      t.events += 1;
      t.input_tokens += e.inputTokens;
      t.output_tokens += e.outputTokens;
      t.cached_tokens += e.cachedTokens ?? 0;
      t.total_tokens += e.inputTokens + e.outputTokens;
      t.cost_micros += e.cost;
    }
    groups.set(key, g);
  }
  const rows = [...groups].map(([key, t]) => ({ key, ...t })).sort((x, y) => (x.key < y.key ? -1 : 1));
  return { rows, totals };
}

/** A's key ids, known once the suite has issued them. */
const keyIds = { main: "", mobile: "" };

const GROUPINGS: Record<string, (e: Fixture) => string> = {
  key: (e) => keyIds[e.key],
  day: (e) => isoDate(e.when.getTime()),
  model: (e) => e.model,
  project: (e) => e.project,
  environment: (e) => e.environment,
  feature: (e) => e.feature,
};

describe.each(backends)("showback on $name", (backend) => {
  let fence: TestFence;
  let a: TestTenant;
  let b: TestTenant;
  let aMobileKey: string;
  const aName = `Acme, "Showback" ${run}`;
  const bName = `=Globex+${run}`;

  async function write(tenant: TestTenant, key: string, fixture: Fixture): Promise<void> {
    const ctx = await contextFor(fence, { ...tenant, key }, `req-${run}-${fixture.id}`);
    const { id, when: _when, key: _key, project: _p, environment: _e, cost: _c, times = 1, ...record } = fixture;
    for (let i = 0; i < times; i++) {
      await fence.fence.db.withTenant(ctx, (scope) => recordUsage(scope, { ...record, eventId: `${run}-${id}` }, 0));
    }
    await fence.fence.db.asOwner((tx) =>
      tx.execute(sql`UPDATE usage_events SET occurred_at = ${fixture.when.toISOString()}::timestamptz
                     WHERE tenant_id = ${tenant.id}::uuid AND event_id = ${`${run}-${id}`}`),
    );
  }

  const usage = (tenant: TestTenant | string, query: string, headers: Record<string, string> = {}) =>
    readJson<UsageReportJson>(fence.request("GET", `/v1/usage?${query}`, { key: typeof tenant === "string" ? tenant : tenant.key, headers }));

  beforeAll(async () => {
    fence = await TestFence.start(backend);
    a = await fence.createTenant(aName);
    b = await fence.createTenant(bName);
    const issued = await fence.admin("POST", `/tenants/${a.id}/keys`, { name: "mobile", project: "mobile", environment: "test" });
    const mobile = (await issued.json()) as IssuedKeyJson;
    aMobileKey = mobile.key;
    keyIds.main = a.keyId;
    keyIds.mobile = mobile.id;
    await fence.fence.db.asPlatformAdmin("test-price", (tx) =>
      tx.insert(prices).values({ provider: "test", model: CHAT_MODEL, version: 1, inputMicrosPerMTok: PRICE.input, outputMicrosPerMTok: PRICE.output, cachedMicrosPerMTok: PRICE.cached }),
    );
    for (const e of A_EVENTS) await write(a, e.key === "mobile" ? aMobileKey : a.key, e);
    await write(b, b.key, B_EVENT);
    // The events were moved to other days by hand: the daily rollup the reports read follows them.
    await fence.fence.db.asPlatformAdmin("test-rollup", async (tx) => {
      for (const t of [a, b]) await rebuildUsageDaily(tx, t.id);
    });
  });
  afterAll(async () => {
    for (const t of [a, b]) if (t) await fence.admin("DELETE", `/tenants/${t.id}`);
    await fence?.fence.db.asPlatformAdmin("test-price", (tx) => tx.delete(prices).where(sql`${prices.model} = ${CHAT_MODEL}`));
    await fence?.close();
  });

  it.each(Object.keys(GROUPINGS))("gives a tenant its own usage grouped by %s, with exact totals", async (groupBy) => {
    const got = await usage(a, `${WINDOW}&group_by=${groupBy}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual({
      from: new Date(day0).toISOString(),
      to: new Date(day0 + 3 * DAY).toISOString(),
      group_by: groupBy,
      ...expected(A_EVENTS, GROUPINGS[groupBy]!),
    });
  });

  it("counts only charged events, each once, priced by the versioned price table", async () => {
    const got = await usage(a, `${WINDOW}&group_by=day`);
    // Anchored by hand, not only by the helper: e1 (recorded twice) once, e4 (failed) and e5 (outside) never.
    expect(got.body.rows).toEqual([
      { key: isoDate(day0), events: 1, input_tokens: 100, output_tokens: 50, cached_tokens: 20, total_tokens: 150, cost_micros: 570 },
      { key: isoDate(day0 + DAY), events: 2, input_tokens: 1200, output_tokens: 80, cached_tokens: 0, total_tokens: 1280, cost_micros: 1040 },
      { key: isoDate(day0 + 2 * DAY), events: 1, input_tokens: 300, output_tokens: 60, cached_tokens: 0, total_tokens: 360, cost_micros: 1080 },
    ]);
    expect(got.body.totals).toEqual({ events: 4, input_tokens: 1600, output_tokens: 190, cached_tokens: 20, total_tokens: 1790, cost_micros: 2690 });
  });

  it("never shows a tenant another tenant's usage, whatever it puts in the query or headers", async () => {
    const onlyB = { key: B_MODEL, events: 1, input_tokens: 7, output_tokens: 3, cached_tokens: 0, total_tokens: 10, cost_micros: 0 };
    for (const groupBy of Object.keys(GROUPINGS)) {
      const plain = await usage(b, `${WINDOW}&group_by=${groupBy}`);
      const smuggled = await usage(b, `${WINDOW}&group_by=${groupBy}&tenant_id=${a.id}&tenant=${a.id}`, { "x-tenant-id": a.id });
      for (const got of [plain, smuggled]) {
        expect(got.status).toBe(200);
        const { key: _key, ...onlyBTotals } = onlyB;
        expect(got.body.totals).toEqual(onlyBTotals);
        expect(got.body.rows).toHaveLength(1);
        for (const needle of [a.id, keyIds.main, keyIds.mobile, CHAT_MODEL, EMBED_MODEL, "mobile", "1600", "2690"]) expect(got.text).not.toContain(needle);
      }
      if (groupBy === "model") expect(plain.body.rows).toEqual([onlyB]);
      if (groupBy === "key") expect(plain.body.rows).toEqual([{ ...onlyB, key: b.keyId }]);
    }
    // And A, symmetrically, never sees B's model.
    expect((await usage(a, `${WINDOW}&group_by=model`)).text).not.toContain(B_MODEL);
  });

  it("filters by from (inclusive) and to (exclusive), dates or timestamps", async () => {
    const day1Only = await usage(a, `from=${isoDate(day0 + DAY)}&to=${isoDate(day0 + 2 * DAY)}&group_by=day`);
    expect(day1Only.body.rows.map((r) => r.key)).toEqual([isoDate(day0 + DAY)]);
    expect(day1Only.body.totals.events).toBe(2);
    // e1 is at 01:00 on day 0: a window starting at 01:00:00.001 leaves it out, one starting at 01:00 keeps it.
    const after = await usage(a, `from=${encodeURIComponent(new Date(at(0, 1).getTime() + 1).toISOString())}&to=${isoDate(day0 + DAY)}`);
    expect(after.body.totals.events).toBe(0);
    const onIt = await usage(a, `from=${encodeURIComponent(at(0, 1).toISOString())}&to=${isoDate(day0 + DAY)}`);
    expect(onIt.body.totals.events).toBe(1);
    // A zone offset is honoured: 02:00+01:00 is 01:00Z.
    const offset = await usage(a, `from=${isoDate(day0)}T02:00:00%2B01:00&to=${isoDate(day0 + DAY)}`);
    expect(offset.body.totals.events).toBe(1);
  });

  it("defaults to the current UTC month so far", async () => {
    const c = await fence.createTenant();
    const now = new Date();
    const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
    const thisMonth: Fixture = { ...B_EVENT, id: "now", when: new Date(), times: 1 };
    await write(c, c.key, thisMonth);
    await write(c, c.key, { ...thisMonth, id: "last-month", when: new Date(monthStart - 1000) });
    const got = await usage(c, "");
    expect(got.status).toBe(200);
    expect(got.body.from).toBe(new Date(monthStart).toISOString());
    expect(Date.parse(got.body.to)).toBeGreaterThanOrEqual(now.getTime());
    expect(got.body.group_by).toBe("day");
    expect(got.body.totals.events).toBe(1);
    await fence.admin("DELETE", `/tenants/${c.id}`);
  });

  it("refuses invalid windows and groupings with 400", async () => {
    const bad = [
      "from=yesterday",
      "from=2020-13-01",
      "from=2021-02-29",
      "to=2020-01-01T25:00:00Z",
      "from=2020-01-01T10:00:00", // no zone: ambiguous
      `from=${isoDate(day0 + DAY)}&to=${isoDate(day0)}`,
      `from=${isoDate(day0)}&to=${isoDate(day0)}`,
      `from=${isoDate(day0)}&to=${isoDate(day0 + 401 * DAY)}`,
      "group_by=tenant", // admin only
      "group_by=week",
    ];
    for (const query of bad) {
      const res = await fence.request("GET", `/v1/usage?${query}`, { key: a.key });
      await expectError(res, 400, "validation_error");
    }
    expect((await usage(a, `from=${isoDate(day0)}&to=${isoDate(day0 + 400 * DAY)}`)).status).toBe(200);
  });

  it("gives the admin every tenant's usage, and the same numbers as CSV", async () => {
    const json = await readJson<AdminUsageReportJson>(fence.admin("GET", `/usage?${WINDOW}&group_by=tenant`));
    expect(json.status).toBe(200);
    const aTotals = expected(A_EVENTS, () => "all").totals;
    expect(json.body.rows).toEqual(
      [
        { key: a.id, tenant_name: aName, ...aTotals },
        { key: b.id, tenant_name: bName, events: 1, input_tokens: 7, output_tokens: 3, cached_tokens: 0, total_tokens: 10, cost_micros: 0 },
      ].sort((x, y) => (x.key < y.key ? -1 : 1)),
    );
    expect(json.body.totals.events).toBe(aTotals.events + 1);

    const csvRes = await fence.admin("GET", `/usage?${WINDOW}&group_by=tenant&format=csv`);
    expect(csvRes.status).toBe(200);
    expect(csvRes.headers.get("content-type")).toMatch(/^text\/csv/);
    expect(csvRes.headers.get("content-disposition")).toMatch(/^attachment; filename="fence-usage-tenant-/);
    const text = await csvRes.text();
    expect(text).toContain(`"Acme, ""Showback"" ${run}"`);
    const [header, ...lines] = parseCsv(text);
    expect(header).toEqual(["tenant", "tenant_name", "events", "input_tokens", "output_tokens", "cached_tokens", "total_tokens", "cost_micros"]);
    const parsed = lines.map(([key, name, ...numbers]) => ({ key, name, numbers: numbers.map(Number) }));
    expect(parsed).toEqual(
      json.body.rows.map((r) => ({
        key: r.key,
        // A name a spreadsheet would run as a formula is exported inert.
        name: r.tenant_name === bName ? `'${bName}` : r.tenant_name,
        numbers: [r.events, r.input_tokens, r.output_tokens, r.cached_tokens, r.total_tokens, r.cost_micros],
      })),
    );

    const byModel = parseCsv(await (await fence.admin("GET", `/usage?${WINDOW}&group_by=model&format=csv`)).text());
    expect(byModel[0]![0]).toBe("model");
    expect(byModel.slice(1).map((r) => [r[0], Number(r[1])]).sort()).toEqual([
      [B_MODEL, 1],
      [CHAT_MODEL, 3],
      [EMBED_MODEL, 1],
    ].sort());
  });

  it("lists failures, refused duplicates, retries and internal-rate usage for reconciliation", async () => {
    const got = await readJson<ReconciliationJson>(fence.admin("GET", `/usage/reconciliation?${WINDOW}`));
    expect(got.status).toBe(200);
    expect(got.body.summary).toEqual({ failed_events: 1, duplicated_events: 2, duplicates_prevented: 3, retries: 1, internal_rate_events: 2 });
    expect(got.body.failed).toEqual([
      expect.objectContaining({ tenant_id: a.id, feature: "chat", model: CHAT_MODEL, events: 1, input_tokens: 300, last_error: "provider answered 500" }),
    ]);
    expect(got.body.duplicates.map((d) => [d.tenant_id, d.event_id, d.duplicate_count]).sort()).toEqual(
      [
        [a.id, `${run}-e1`, 1],
        [b.id, `${run}-b1`, 2],
      ].sort(),
    );
    expect(got.body.retries).toEqual([
      expect.objectContaining({ tenant_id: a.id, event_id: `${run}-e6`, retry_of: `${run}-e4`, status: "charged", original_status: "failed" }),
    ]);
    expect(got.body.internal_rate.map((r) => [r.tenant_id, r.model, r.events, r.total_tokens]).sort()).toEqual(
      [
        [a.id, EMBED_MODEL, 1, 1000],
        [b.id, B_MODEL, 1, 10],
      ].sort(),
    );
    await expectError(await fence.admin("GET", `/usage/reconciliation?from=${isoDate(day0)}&to=${isoDate(day0 - DAY)}`), 400, "validation_error");
    await expectError(await fence.admin("GET", `/usage?${WINDOW}&format=xml`), 400, "validation_error");
  });

  it("keeps the usage routes behind the right key: tenant keys on admin routes and the admin key on /v1/usage are 401", async () => {
    for (const path of [`/v1/admin/usage?${WINDOW}`, `/v1/admin/usage?${WINDOW}&format=csv`, `/v1/admin/usage/reconciliation?${WINDOW}`]) {
      for (const key of [a.key, b.key, undefined]) await expectError(await fence.request("GET", path, { key }), 401, "unauthorized");
    }
    await expectError(await fence.request("GET", `/v1/usage?${WINDOW}`, { key: ADMIN_KEY }), 401, "unauthorized");
    await expectError(await fence.request("GET", `/v1/usage?${WINDOW}`), 401, "unauthorized");
  });
});
