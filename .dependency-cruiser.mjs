// The floors of src/ (ARCHITECTURE.md): a folder imports only from folders on lower floors, never
// from its own floor's other folders, never from above; no import cycles anywhere. Checked by
// `npm run lint` (dependency-cruiser), so the written architecture cannot drift from the code.
/** Lowest first. */
const FLOORS = [
  ["core"], // TenantContext, request scope, the error catalogue: the words every floor speaks
  ["flow", "observability", "crypto"], // lock-free flow primitives (no database); logs, metrics, traces, redaction; ciphers and key wrapping
  ["db"], // schema, connections, withTenant
  ["cache", "embeddings", "audit"], // audit: the append-only trail of key, tenant and plan changes
  ["tenancy", "plans"],
  ["metering"], // the usage ledger and its one writer, the budget guard
  ["limits"], // per-tenant rate limits and concurrency
  ["jobs"],
  ["runs"],
  ["retrieval"],
  ["ingest", "chat"],
  ["http"], // the Hono app, routes, middleware, schemas, error rendering
  ["console"], // the web console: server-rendered pages over the same services, sessions, CSRF
  ["platform"], // composition root: config, connections, services, job loops
];

const notLowerThan = (floor, own) =>
  FLOORS.slice(floor)
    .flat()
    .filter((folder) => folder !== own);

/** @type {import("dependency-cruiser").IConfiguration} */
export default {
  forbidden: [
    ...FLOORS.flatMap((folders, floor) =>
      folders.map((folder) => ({
        name: `${folder}-imports-downward`,
        comment: `src/${folder}/ is on floor ${floor}: it may import only from ${FLOORS.slice(0, floor).flat().join(", ") || "nothing in src"}.`,
        severity: "error",
        from: { path: `^src/${folder}/` },
        to: { path: `^src/(${notLowerThan(floor, folder).join("|")})/|^src/[^/]+$` },
      })),
    ),
    {
      name: "entries-are-not-imported",
      comment: "src/main.ts, worker.ts and cli.ts are entries: the top, imported by nothing in src.",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^src/[^/]+$" },
    },
    {
      name: "no-circular",
      comment: "An import cycle makes two files one concept; split what they share into a third.",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "folders-are-known",
      comment: "Every folder of src/ has a floor: add a new one to FLOORS (and to ARCHITECTURE.md).",
      severity: "error",
      from: { path: "^src/", pathNot: `^src/(${FLOORS.flat().join("|")})/|^src/[^/]+$` },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "\\.d\\.mts$" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".mjs", ".js", ".json"] },
  },
};
