import type { QueueDiscipline } from "../../src/flow/fair-queue.js";
import type { PlanJson } from "../../test/support/api-types.js";
import type { GeneratorResult } from "./generator-protocol.js";
import type { FloodBackend, FloodOptions } from "./options.js";
import type { BuildShapeResult } from "./phases.js";
import type { ShapeId } from "./shapes.js";

/** Everything one run measured (printed by print.ts, written as JSON with --json). */
export interface FloodReport {
  startedAt: string;
  machine: string;
  options: FloodOptions;
  /** 1-minute load average at start and end: above ~2 (the server and the generator), something else competed for the cores. */
  load: { start: number; end: number };
  backends: BackendReport[];
  wallMs: number;
}

export interface BackendReport {
  backend: FloodBackend;
  /** PostgreSQL's version, and PGlite's when it is PGlite. */
  label: string;
  /** The bare Hono route's answers per second: the physical ceiling. */
  ceiling: GeneratorResult;
  /** The seeded plans the tenants are on, as the builds report them. */
  plans: PlanJson[];
  shapes: ShapeReport[];
  wallMs: number;
}

export interface ShapeReport {
  shape: ShapeId;
  builds: Record<QueueDiscipline, BuildShapeResult>;
}
