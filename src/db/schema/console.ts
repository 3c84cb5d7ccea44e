import { pgTable, text, timestamp } from "drizzle-orm/pg-core";
import { platformAll, RowLevelSecurity } from "./rls.js";

/**
 * Console sessions that were signed out before their expiry. A session is a signed cookie
 * (console/session.ts) that no server keeps, so signing out could only drop the browser's copy;
 * this is where a sign-out is remembered, so a copy of the cookie taken before it is refused after
 * it, on every instance. A row is needed only until the session would have expired anyway, and is
 * deleted after that. Holds no key, no tenant data: a random session id and two instants.
 */
export const consoleSessionsEnded = pgTable("console_sessions_ended", {
  sessionId: text("session_id").primaryKey(),
  endedAt: timestamp("ended_at", { withTimezone: true }).notNull().defaultNow(),
  expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
});

/** RLS (drizzle/0017): the platform's own; no policy for fence_app, so no tenant role reads it. */
export const consoleSessionsEndedRls = RowLevelSecurity.forced(consoleSessionsEnded, [platformAll()]);
