import { eq, lt, sql } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { consoleSessionsEnded } from "../db/schema.js";
import type { ConsoleSession } from "./session.js";

/**
 * Sessions signed out before they expired. A session is a signed cookie no server keeps, so a sign-
 * out is remembered here, in the database every instance shares: a copy of the cookie taken before
 * it (a stolen one, or another tab's) is refused after it. The platform's own table
 * (db/schema/console.ts), read and written as the platform role: it holds no tenant's data.
 */
export class EndedSessions {
  constructor(private readonly db: Database) {}

  async end(session: ConsoleSession): Promise<void> {
    await this.db.asPlatformAdmin("console-sign-out", async (tx) => {
      // A row is needed only until its session expires (the cookie is refused then anyway).
      await tx.delete(consoleSessionsEnded).where(lt(consoleSessionsEnded.expiresAt, sql`now()`));
      await tx.insert(consoleSessionsEnded).values({ sessionId: session.id, expiresAt: new Date(session.expiresAt) }).onConflictDoNothing();
    });
  }

  async isEnded(sessionId: string): Promise<boolean> {
    const rows = await this.db.asPlatformAdmin("console-session-check", (tx) =>
      tx.select({ id: consoleSessionsEnded.sessionId }).from(consoleSessionsEnded).where(eq(consoleSessionsEnded.sessionId, sessionId)),
    );
    return rows.length > 0;
  }
}
