/**
 * The five floods of issue #16. Each is an aggressor tenant on a seeded plan with a fixed number of
 * closed-loop connections per kind of request, over eight keys of its own: every connection sends
 * its next request as soon as the previous one answered, whatever the status, so the aggressor
 * offers as much as the service takes. The victim is the same in every shape (victim.ts).
 */
export const SHAPE_IDS = ["a", "b", "c", "d", "e"] as const;
export type ShapeId = (typeof SHAPE_IDS)[number];

/** What one closed-loop connection sends; `bare` is the ceiling's `GET /` on a bare Hono app. */
export type Operation = "search" | "chat" | "upload" | "queued-upload" | "bare";

export interface Stream {
  op: Operation;
  connections: number;
}

export interface Shape {
  id: ShapeId;
  title: string;
  /** The aggressor's seeded plan. */
  plan: "free" | "enterprise";
  streams: Stream[];
  /**
   * Chats go through the LLM (the slow fake provider). Otherwise the shape's tenants have the LLM
   * turned off (`chat.llm`), and every chat is answered extractively.
   */
  llm: boolean;
  /** The aggressor's tenant gets documents first, so its searches and chats find passages and do the full work. */
  seedAggressor: boolean;
}

/** Keys the aggressor spreads its connections over (round robin). */
export const AGGRESSOR_KEYS = 8;

export const SHAPES: Record<ShapeId, Shape> = {
  a: {
    id: "a",
    title: "refused flood: a free-plan tenant far over its limits",
    plan: "free",
    streams: [
      { op: "search", connections: 32 },
      { op: "chat", connections: 32 },
    ],
    llm: false,
    // Refused requests never reach the corpus; the few admitted ones may answer "no passage".
    seedAggressor: false,
  },
  b: {
    id: "b",
    title: "extractive chats at the plan's concurrency (enterprise: 32 in flight)",
    plan: "enterprise",
    streams: [{ op: "chat", connections: 32 }],
    llm: false,
    seedAggressor: true,
  },
  c: {
    id: "c",
    title: "small synchronous uploads at the plan's concurrency (enterprise: 32 in flight)",
    plan: "enterprise",
    streams: [{ op: "upload", connections: 32 }],
    llm: false,
    seedAggressor: false,
  },
  d: {
    id: "d",
    title: "extractive chats and synchronous uploads mixed, 64 connections (twice the plan's concurrency)",
    plan: "enterprise",
    streams: [
      { op: "chat", connections: 32 },
      { op: "upload", connections: 32 },
    ],
    llm: false,
    seedAggressor: true,
  },
  e: {
    id: "e",
    title: "bench:noisy's shapes: LLM chats (slow provider) and queued uploads, at the plan's concurrency",
    plan: "enterprise",
    streams: [
      { op: "chat", connections: 16 },
      { op: "queued-upload", connections: 16 },
    ],
    llm: true,
    seedAggressor: true,
  },
};

export function connectionsOf(shape: Shape): number {
  return shape.streams.reduce((n, s) => n + s.connections, 0);
}
