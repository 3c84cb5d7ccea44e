import { afterAll, beforeAll, describe, expect, it, vi, type MockInstance } from "vitest";
import type { BudgetGuard } from "../../../src/metering/budget-guard.js";
import { expectError } from "../../support/api-contract.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import { readJson } from "../../support/isolation-helpers.js";
import type { JobJson, JobListJson, RunJson } from "../../support/api-types.js";
import { makePdf } from "../../support/make-pdf.js";
import { documentAndChunkCounts, ledgerRows, reservationCount, setTenantOverrides } from "../../support/metering-helpers.js";

/**
 * Feature flags are checked before anything is reserved (issue #15): a PDF upload from a tenant
 * whose settings turn `ingest.pdf` off is refused (403 `feature_disabled`) before it is parsed,
 * before any budget is reserved and before it is queued — in the request, as a queued upload, in
 * a batch, and again when a job queued before the flag was turned off comes to run. It leaves no
 * reservation, no ledger row, no job and no document. No job worker runs (FENCE_JOB_WORKERS=0):
 * the one job here runs when the test says.
 */
const PDF = makePdf([["Quarterly report: revenue grew in every region."]]);
const DISABLED = { features: { "ingest.pdf": false } };

describe.each(backends)("disabled upload features on $name", (backend) => {
  let fence: TestFence;
  let tenant: TestTenant;
  let reserve: MockInstance<BudgetGuard["reserve"]>;
  /** Budget reservations this tenant asked for (each one is also released, so the table alone cannot tell). */
  const reservationsAsked = () => reserve.mock.calls.filter(([ctx]) => ctx.tenantId === tenant.id).length;

  const pdfForm = (...extra: { name: string; type: string; content: string | Uint8Array }[]) => {
    const form = new FormData();
    form.append("file", new File([PDF], "report.pdf", { type: "application/pdf" }));
    for (const file of extra) form.append("file", new File([file.content], file.name, { type: file.type }));
    return form;
  };
  const jobs = async () => (await readJson<JobListJson>(fence.request("GET", "/v1/jobs", { key: tenant.key }))).body.jobs;

  async function expectNothingLeft(): Promise<void> {
    expect(reservationsAsked()).toBe(0);
    expect(await reservationCount(fence, tenant)).toBe(0);
    expect(await ledgerRows(fence, tenant)).toEqual([]);
    expect(await documentAndChunkCounts(fence, tenant)).toEqual({ documents: 0, chunks: 0 });
  }

  beforeAll(async () => {
    fence = await TestFence.start(backend, { env: { FENCE_JOB_WORKERS: "0" } });
    tenant = await fence.createTenant("no-pdf");
    await setTenantOverrides(fence, tenant, DISABLED);
    reserve = vi.spyOn(fence.fence.budgets, "reserve");
  });
  afterAll(async () => {
    reserve?.mockRestore();
    await fence?.close();
  });

  it("refuses a PDF in the request before it is parsed or anything reserved, and records the refusal", async () => {
    const res = await fence.request("POST", "/v1/documents", { key: tenant.key, body: pdfForm() });
    await expectError(res, 403, "feature_disabled");
    await expectNothingLeft();
    const run = await readJson<RunJson>(fence.request("GET", `/v1/runs/${res.headers.get("x-request-id")}`, { key: tenant.key }));
    expect(run.body).toMatchObject({ status: "refused", error: { code: "feature_disabled" }, steps: [] });
  });

  it("refuses a queued PDF, and a batch holding one, before anything is queued", async () => {
    const queued = await fence.request("POST", "/v1/documents", { key: tenant.key, body: pdfForm(), headers: { prefer: "respond-async" } });
    await expectError(queued, 403, "feature_disabled");
    const batch = await fence.request("POST", "/v1/documents/batch", {
      key: tenant.key,
      body: pdfForm({ name: "notes.txt", type: "text/plain", content: "Plain text is allowed." }),
    });
    await expectError(batch, 403, "feature_disabled");
    expect(await jobs()).toEqual([]);
    await expectNothingLeft();
  });

  it("fails a job queued before the flag was turned off, before it parses or reserves anything", async () => {
    await setTenantOverrides(fence, tenant, {});
    const queued = await fence.request("POST", "/v1/documents", { key: tenant.key, body: pdfForm(), headers: { prefer: "respond-async" } });
    expect(queued.status).toBe(202);
    const { id } = (await queued.json()) as JobJson;
    await setTenantOverrides(fence, tenant, DISABLED);

    expect(await fence.fence.jobRunner.runAvailable(5, Number.POSITIVE_INFINITY, { tenantId: tenant.id })).toBe(1);
    const job = (await readJson<JobJson>(fence.request("GET", `/v1/jobs/${id}`, { key: tenant.key }))).body;
    expect(job).toMatchObject({ status: "failed", attempts: 1, error: { code: "feature_disabled" }, steps: [], result: null });
    await expectNothingLeft();
  });

  it("still ingests text for the same tenant, reserving its embedding once", async () => {
    const res = await fence.request("POST", "/v1/documents", { key: tenant.key, json: { title: "Notes", text: "Text uploads stay enabled." } });
    expect(res.status).toBe(201);
    expect(reservationsAsked()).toBe(1);
  });
});
