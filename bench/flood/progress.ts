import { progress } from "../report.js";

/** Progress on stderr with the seconds since the run started, so a slow step shows in CI's log. */
export function say(message: string): void {
  progress(`${(performance.now() / 1000).toFixed(1).padStart(6)} s  ${message}`);
}
