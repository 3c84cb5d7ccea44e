/** One JSON line of Fence's log, with the fields the logging tests read (pino's level number included). */
export interface LogLine {
  level: number;
  msg: string;
  request_id?: string;
  tenant_id?: string;
  key_id?: string;
  project?: string;
  environment?: string;
  route?: string;
  /** Sampled refusal lines: how many of the same kind were skipped (request-context.ts). */
  repeated?: number;
  method?: string;
  status?: number;
  latency_ms?: number;
  error_code?: string;
  model?: string;
  prompt_tokens?: number;
  completion_tokens?: number;
  cache?: string;
  security_event?: string;
  client_address?: string;
  debug_prompt?: boolean;
  masked_question?: string;
  context_chunk_ids?: string[];
  job_id?: string;
  kind?: string;
  attempt?: number;
  step?: string;
  code?: string;
}
