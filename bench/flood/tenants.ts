import type { IssuedKeyJson, PlanJson, TenantJson } from "../../test/support/api-types.js";
import type { FenceApi } from "./api.js";

/** A tenant the bench created through the admin API, with its keys. */
export interface BenchTenant {
  id: string;
  name: string;
  plan: string;
  keys: string[];
}

export async function createTenant(api: FenceApi, name: string, plan: string, keys = 1): Promise<BenchTenant> {
  const tenant = await api.admin<TenantJson>("POST", "/tenants", { name, plan }, [201]);
  const issued: string[] = [];
  for (let i = 0; i < keys; i++) {
    issued.push((await api.admin<IssuedKeyJson>("POST", `/tenants/${tenant.id}/keys`, { name: `bench-${i + 1}` }, [201])).key);
  }
  return { id: tenant.id, name, plan, keys: issued };
}

/** Purges the tenant: its documents, keys and queued jobs, so no leftover work of one phase runs into the next. */
export async function deleteTenant(api: FenceApi, tenant: BenchTenant): Promise<void> {
  await api.admin("DELETE", `/tenants/${tenant.id}`, undefined, [204]);
}

/**
 * Turns the LLM on or off for one tenant (the `chat.llm` feature flag, a documented tenant
 * setting): off, its chats are answered extractively, on exactly the path of a build with no LLM.
 */
export async function setLlm(api: FenceApi, tenant: BenchTenant, on: boolean): Promise<void> {
  await api.admin("PATCH", `/tenants/${tenant.id}/config`, { features: { "chat.llm": on } });
}

export async function getPlan(api: FenceApi, name: string): Promise<PlanJson> {
  return api.admin<PlanJson>("GET", `/plans/${name}`);
}

/** Synchronous uploads (201), a few at a time, before any phase: the tenant's corpus. */
export async function seedCorpus(api: FenceApi, tenant: BenchTenant, docs: readonly { title: string; text: string }[]): Promise<void> {
  const queue = [...docs];
  const upload = async () => {
    for (let doc = queue.shift(); doc; doc = queue.shift()) {
      const answer = await api.send({
        method: "POST",
        path: "/v1/documents",
        headers: { authorization: `Bearer ${tenant.keys[0]}`, "content-type": "application/json" },
        body: JSON.stringify(doc),
      });
      if (answer.status !== 201) throw new Error(`seed upload for ${tenant.name}: ${answer.status} ${answer.text.slice(0, 300)}`);
    }
  };
  await Promise.all([upload(), upload(), upload()]);
}
