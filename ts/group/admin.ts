// A member's admin port (off by default; `squall node --metrics HOST:PORT`): plain HTTP, read-only.
//
//   GET /metrics   Prometheus text of the member's registry (ts/group/metrics.ts)
//   GET /inspect   JSON: the view, each row of the membership SST, each shard's counters, frontiers and queue
//                  (what `squall inspect HOST:PORT` shows)
//
// Anything else is a 404; a request must arrive whole within 5 s. It exposes the group's internals to whoever
// can reach it: bind it to loopback or a management network (docs/operations.md).

import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { parseAddress } from '../address.js';
import type { FabricStatus } from '../fabric/connections.js';
import type { Group } from './group.js';

/** What GET /inspect returns (version 1): a member's view, its membership rows and its shards' state. */
export interface Inspection {
  version: 1;
  member: number;
  vid: number;
  members: readonly number[];
  installing: boolean;
  stopped: string | null;
  lastInstall: Record<string, number> | null;
  /** The membership columns of every row of the current view's SST, as this member sees them. */
  membership: unknown[];
  /** Per subgroup this member serves: its shard's counters (numReceived per sender, seqNum, deliveredNum, …). */
  subgroups: Record<string, unknown>;
  /**
   * The current view's fabric: frames and bytes in and out since it started, and `connections`, its connection
   * to each other member (state, send queue, bytes each way; ts/fabric/connections.ts).
   */
  fabric: FabricStatus;
}

/** A member's state, as GET /inspect serves it (bigints as strings). */
export function inspectMember(group: Group): Inspection {
  const status = group.status();
  return {
    version: 1, member: group.id, vid: status.vid, members: status.members, installing: status.installing,
    stopped: status.stopped, lastInstall: status.lastInstall, membership: group.membership(),
    subgroups: status.subgroups, fabric: status.fabric,
  };
}

/** JSON text of `value`, with bigints (versions) as strings. */
export const toJson = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));

/** Serves `group`'s admin routes at HOST:PORT; resolves with the server and the bound address. */
export async function serveAdmin(group: Group, listen: string, registry: Registry | null):
  Promise<{ server: Server; address: string }> {
  const { host, port } = parseAddress(listen, '--metrics');
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const reply = (status: number, type: string, body: string) =>
      res.writeHead(status, { 'content-type': type }).end(body);
    if (req.method !== 'GET') return reply(405, 'text/plain', 'squall\'s admin port is read-only: GET only\n');
    if (path === '/inspect') return reply(200, 'application/json', toJson(inspectMember(group)));
    if (path === '/metrics' && registry) {
      registry.metrics().then((text) => reply(200, registry.contentType, text),
        (error: unknown) => reply(500, 'text/plain', `${(error as Error).message}\n`));
      return;
    }
    reply(404, 'text/plain', 'squall serves GET /metrics and GET /inspect\n');
  });
  server.headersTimeout = 5000;
  server.requestTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  const bound = server.address();
  const address = typeof bound === 'object' && bound ? `${host}:${bound.port}` : listen;
  return { server, address };
}
