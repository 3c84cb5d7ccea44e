import { Hono } from "hono";
import { migrationsAreCurrent } from "../../db/schema-version.js";
import type { FenceServices } from "../services.js";
import type { AppEnv } from "../types.js";

/** Liveness and readiness for load balancers and orchestrators. Neither needs credentials. */
export function operationsRoutes({ db, embeddings: { model: embeddingModel } }: Pick<FenceServices, "db" | "embeddings">) {
  return new Hono<AppEnv>()
    .get("/healthz", (c) => c.json({ status: "ok" }))
    .get("/readyz", async (c) => {
      const checks = { database: false, migrations: false, embedding_model: embeddingModel };
      try {
        await db.ping();
        checks.database = true;
        checks.migrations = await migrationsAreCurrent(db);
      } catch {
        // reported through the flags below
      }
      const ready = checks.database && checks.migrations;
      return c.json({ status: ready ? "ready" : "not_ready", checks }, ready ? 200 : 503);
    });
}
