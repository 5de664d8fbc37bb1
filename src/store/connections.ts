/** Connections: those that carried no decrypted exchange, and the hosts a session contacted (verification, session diffs). */
import type { Db } from "./database.js";
import type { HostCount } from "./exchanges.js";

/**
 * Connections that carried no decrypted exchange, per host: tunnelled, pinned (client rejected
 * the certificate), denied, failed. Data may have left through them; exhaust could not read it.
 * An intercepted connection still open may not have its exchange count yet, so it is left out.
 */
export function bareConnectionHostCounts(db: Db, sessionId: number): HostCount[] {
  return db
    .prepare(
      `SELECT host, COUNT(*) AS count FROM connections
        WHERE session_id = ? AND exchanges = 0 AND (ended_at IS NOT NULL OR outcome <> 'intercepted')
        GROUP BY host ORDER BY host`,
    )
    .all(sessionId) as HostCount[];
}

export interface ConnectionEvidenceRow {
  id: string;
  host: string;
  port: number;
  outcome: string;
  bytesFromClient: number;
  error: string | null;
}

export function bareConnectionsToHost(db: Db, sessionId: number, host: string, limit: number): ConnectionEvidenceRow[] {
  return db
    .prepare(
      `SELECT id, host, port, outcome, bytes_from_client AS bytesFromClient, error FROM connections
        WHERE session_id = ? AND host = ? AND exchanges = 0 AND (ended_at IS NOT NULL OR outcome <> 'intercepted')
        ORDER BY started_at LIMIT ?`,
    )
    .all(sessionId, host, limit) as ConnectionEvidenceRow[];
}

export interface EndpointSummaryRow {
  host: string;
  connections: number;
  exchanges: number;
  outcomes: string;
}

/** Hosts contacted: connections (any outcome) and decrypted exchanges per host. */
export function endpointSummary(db: Db, sessionId: number): EndpointSummaryRow[] {
  return db
    .prepare(
      `SELECT host, SUM(connections) AS connections, SUM(exchanges) AS exchanges, GROUP_CONCAT(DISTINCT outcome) AS outcomes FROM (
         SELECT host, 1 AS connections, 0 AS exchanges, outcome FROM connections WHERE session_id = @s
         UNION ALL
         SELECT host, 0, 1, NULL FROM exchanges WHERE session_id = @s)
       GROUP BY host ORDER BY host`,
    )
    .all({ s: sessionId }) as EndpointSummaryRow[];
}
