import { loadConfig } from "../src/platform/config.js";
import { OpenAICompatibleEmbeddings } from "../src/embeddings/openai-compatible.js";
import { migrateForDeploy } from "../src/platform/migrate-for-deploy.js";

/**
 * `npm run migrate` — applies Fence's migrations to DATABASE_URL (Postgres), for deployments that
 * do not migrate at start-up (Cloudflare Workers). With FENCE_EMBEDDINGS=openai and EMBEDDINGS_*
 * set as for the Worker, it also creates that model's vector index (one probe request to learn the
 * dimensions unless EMBEDDINGS_DIMENSIONS is set).
 */
async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.databaseUrl) throw new Error("DATABASE_URL is not set (npm run migrate targets Postgres).");
  let embeddings: { model: string; dimensions: number } | undefined;
  if (config.embeddings.provider === "openai") {
    const provider = await OpenAICompatibleEmbeddings.connect(config.embeddings);
    embeddings = { model: provider.model, dimensions: provider.dimensions };
  }
  const result = await migrateForDeploy({ databaseUrl: config.databaseUrl, embeddings });
  console.log(
    `migrations applied: ${result.applied}` +
      (result.vectorIndex ? `; vector index for ${result.vectorIndex.model} (${result.vectorIndex.dimensions} dimensions)` : "; no vector index (set FENCE_EMBEDDINGS=openai and EMBEDDINGS_* for one)"),
  );
}

main().catch((error: unknown) => {
  console.error(`migrate failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
