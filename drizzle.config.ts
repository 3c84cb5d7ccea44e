import { defineConfig } from "drizzle-kit";

// `npm run db:generate` turns changes in src/db/schema.ts into a new SQL migration in drizzle/.
// Row-level security, roles and grants are hand-written migrations (drizzle-kit generate --custom).
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/db/schema.ts",
  out: "./drizzle",
});
