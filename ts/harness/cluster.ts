// Parent side of the SST process harness: starts n member processes on loopback, each on a port of its
// own choosing, and wires them race-free — every child listens and reports its port, then every child is
// told the member list (and grants rows), and only then do they connect.

import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ColumnSpecs } from '../sst/layout.js';
import type { HarnessEvent, HarnessRequest } from './sst-process.js';

export interface SstClusterOptions {
  members: number;
  columns: ColumnSpecs;
  heartbeatIntervalMs?: number;
  suspicionTimeoutMs?: number;
  /** First member id (ids are consecutive). Default 0. */
  firstId?: number;
}

export interface ClusterMember {
  id: number;
  process: ChildProcess;
  address: string;
  events: HarnessEvent[];
  exited: boolean;
}

const childEntry = fileURLToPath(new URL('./sst-process.js', import.meta.url));

export class SstCluster {
  readonly members: ClusterMember[] = [];
  private seq = 0;
  private pending = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  private listeners: Array<() => void> = [];

  static async start(options: SstClusterOptions): Promise<SstCluster> {
    const cluster = new SstCluster();
    try {
      const firstId = options.firstId ?? 0;
      for (let i = 0; i < options.members; i++) cluster.spawn(firstId + i);
      await Promise.all(cluster.members.map(async (m) => {
        const r = await cluster.request(m, {
          cmd: 'listen', id: m.id, listen: '127.0.0.1:0', columns: options.columns,
          ...(options.heartbeatIntervalMs ? { heartbeatIntervalMs: options.heartbeatIntervalMs } : {}),
          ...(options.suspicionTimeoutMs ? { suspicionTimeoutMs: options.suspicionTimeoutMs } : {}),
        });
        m.address = r.address as string;
      }));
      const list = cluster.members.map((m) => ({ id: m.id, address: m.address }));
      await Promise.all(cluster.members.map((m) => cluster.request(m, { cmd: 'expect', members: list })));
      await Promise.all(cluster.members.map((m) => cluster.request(m, { cmd: 'connect' })));
      return cluster;
    } catch (err) {
      cluster.kill();
      throw err;
    }
  }

  private spawn(id: number): void {
    const child = fork(childEntry, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    const member: ClusterMember = { id, process: child, address: '', events: [], exited: false };
    child.on('message', (msg: { seq?: number; ok?: boolean; error?: string } & Record<string, unknown>) => {
      if (typeof msg.seq === 'number') {
        const p = this.pending.get(msg.seq);
        this.pending.delete(msg.seq);
        if (msg.ok) p?.resolve(msg); else p?.reject(new Error(`member ${id}: ${msg.error}`));
      } else {
        member.events.push(msg as unknown as HarnessEvent);
        for (const l of this.listeners.splice(0)) l();
      }
    });
    child.on('exit', () => {
      member.exited = true;
      for (const l of this.listeners.splice(0)) l();
    });
    this.members.push(member);
  }

  request(member: ClusterMember, req: HarnessRequest): Promise<Record<string, unknown>> {
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      member.process.send({ ...req, seq });
    });
  }

  /** Resolves with the first event of `member` that matches, waiting up to timeoutMs. */
  async waitForEvent(member: ClusterMember, match: (e: HarnessEvent) => boolean, timeoutMs: number): Promise<HarnessEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = member.events.find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`member ${member.id}: no matching event within ${timeoutMs} ms; events: ${JSON.stringify(member.events)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.listeners.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** Closes every live member cleanly, then kills whatever is left. */
  async close(): Promise<void> {
    await Promise.all(this.members.filter((m) => !m.exited).map((m) =>
      Promise.race([this.request(m, { cmd: 'close' }).catch(() => {}), new Promise((r) => setTimeout(r, 3000))])));
    this.kill();
  }

  kill(): void {
    for (const m of this.members) if (!m.exited) m.process.kill('SIGKILL');
  }
}
