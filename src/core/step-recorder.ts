/**
 * What a piece of work recorded step by step gives the code doing the work: run a named step, and
 * say what it produced. Ingestion runs through one pipeline (ingest/pipeline.ts) whether a request
 * waits for it or a durable job does; each records its steps its own way — a request into its run
 * record (runs/run-recorder.ts), a job onto its row, where the tenant reads them (jobs/running-job.ts).
 *
 * In core because both recorders sit on different floors (jobs below runs) and the pipeline above
 * both: the lowest floor is the one every implementer and caller can import without reaching up.
 */
export type StepDetail = Record<string, unknown>;

export interface StepRecorder {
  /** Runs `work` as step `name` and records how it ended; its result or error passes through. */
  step<T>(name: string, work: () => Promise<T>, describe?: (result: T) => StepDetail): Promise<T>;
}
