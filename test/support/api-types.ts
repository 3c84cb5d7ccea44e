import type { z } from "zod";
import type { LimitsResponse } from "../../src/http/routes/limits.js";
import type {
  ChatResponse,
  Document,
  DocumentList,
  ErrorResponse,
  IngestedDocument,
  ApiKey,
  IssuedKey,
  SearchResults,
  Tenant,
  TenantList,
} from "../../src/http/schemas.js";
import type { AdminUsageReport, Plan, PlanList, Reconciliation, TenantConfig, TenantUsageReport } from "../../src/http/schemas-cost.js";
import type { BatchAccepted, Job, JobList, JobStep } from "../../src/http/schemas-jobs.js";
import type { AdminAuditEventList, AuditEventList, OwnerSettingsView } from "../../src/http/schemas-keys.js";
import type { AdminRun, AdminRunList, EvalCase, EvalCaseList, Run, RunList, RunStep } from "../../src/http/schemas-runs.js";

/**
 * The v1 API's response bodies as tests, evals and benches read them: each inferred from the zod
 * schema the API itself declares (src/http/schemas*.ts, which also generate the OpenAPI
 * document), so a client-side shape cannot drift from the server's. Type-only: importing this
 * module loads nothing at run time. Declare a response shape here, once, never by hand elsewhere.
 */

/** `{ error: { code, message, request_id, details? } }` of every refusal. */
export type ErrorBody = z.output<typeof ErrorResponse>;
/**
 * An error whose `details` (free-form in the schema: each error of the catalogue has its own) the
 * reader knows, e.g. a budget refusal's `{ budget, plan, limit, … }`.
 */
export type ErrorBodyWith<Details> = ErrorBody & { error: { details: Details } };

// Tenants and keys (admin API).
export type TenantJson = z.output<typeof Tenant>;
export type TenantListJson = z.output<typeof TenantList>;
export type IssuedKeyJson = z.output<typeof IssuedKey>;
/** A key without its secret: GET /v1/keys, and the audit trail's before and after. */
export type ApiKeyJson = z.output<typeof ApiKey>;
export type AuditEventListJson = z.output<typeof AuditEventList>;
export type AdminAuditEventListJson = z.output<typeof AdminAuditEventList>;

// Documents.
export type DocumentJson = z.output<typeof Document>;
/** `POST /v1/documents` answered synchronously: the document plus its outcome. */
export type IngestedDocumentJson = z.output<typeof IngestedDocument>;
export type DocumentListJson = z.output<typeof DocumentList>;

// Search and chat.
export type SearchBody = z.output<typeof SearchResults>;
export type SearchResult = SearchBody["results"][number];
export type ChatBody = z.output<typeof ChatResponse>;

// Durable ingestion.
export type JobJson = z.output<typeof Job>;
export type JobStepJson = z.output<typeof JobStep>;
export type JobListJson = z.output<typeof JobList>;
export type BatchAcceptedJson = z.output<typeof BatchAccepted>;

// Run records and eval cases.
export type RunJson = z.output<typeof Run>;
export type RunStepJson = z.output<typeof RunStep>;
export type RunListJson = z.output<typeof RunList>;
export type AdminRunJson = z.output<typeof AdminRun>;
export type AdminRunListJson = z.output<typeof AdminRunList>;
export type EvalCaseJson = z.output<typeof EvalCase>;
export type EvalCaseListJson = z.output<typeof EvalCaseList>;

// Plans, tenant configuration, budgets, showback.
export type PlanJson = z.output<typeof Plan>;
export type PlanListJson = z.output<typeof PlanList>;
export type TenantConfigJson = z.output<typeof TenantConfig>;
export type LimitsJson = z.output<typeof LimitsResponse>;
export type SettingsJson = z.output<typeof OwnerSettingsView>;
export type UsageReportJson = z.output<typeof TenantUsageReport>;
export type AdminUsageReportJson = z.output<typeof AdminUsageReport>;
export type ReconciliationJson = z.output<typeof Reconciliation>;
