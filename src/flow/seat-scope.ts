import { AsyncLocalStorage } from "node:async_hooks";
import type { Seat } from "./fair-seats.js";

/**
 * The instance seat of the request being served, reachable from deep in its call tree: a call to an
 * outside provider steps away from it (`awayFromSeat`), so a request waiting on an LLM does not hold
 * one of the few seats that bound the instance's own work.
 */
const storage = new AsyncLocalStorage<Seat>();

export function holdingSeat<T>(seat: Seat, serve: () => Promise<T>): Promise<T> {
  return storage.run(seat, serve);
}

/** Runs `wait` without the current request's seat (if it holds one), and takes a seat again after. */
export function awayFromSeat<T>(wait: () => Promise<T>): Promise<T> {
  const seat = storage.getStore();
  return seat ? seat.away(wait) : wait();
}
