// A view's protocol with the worker engine, at the main thread: the predicate worker steps the view-change
// protocol (workers/view-change-host.ts) — it evaluates every predicate of a change, writes this member's
// membership columns and pushes them — and this object is what the driver and the rest of the member see
// (MembershipProtocol):
//
//   - what the protocol decided (its notes, and an outcome: a commit to install, a removal, a partition)
//     arrives on a MessagePort, read synchronously whenever the driver asks (each step, `wedged`, `applied`);
//     the worker rings the fabric's arrival function after each report, so a driver step follows;
//   - when the worker reports that this member wedged, the main thread's shards wedge too (they take back
//     the indexes the worker left: it froze and pushed their counters before it said so);
//   - this thread's requests (suspect, leave, join, the announcements and ports) go to the worker as
//     commands: it is the only writer of the membership columns;
//   - questions about the table (the start barrier, the suspects, the leader, the ports published) are
//     answered here, from the shared table, by a ViewChangeProtocol that only reads — its kernels keep their
//     outputs in a scratch region of their own (MEMBERSHIP_READER_SCRATCH), not the worker's.
//
// join() answers at once, from the table, as the stepped protocol would; the worker checks again when the
// command lands, and a change that began in between (microseconds) makes it refuse: the joiners are then
// not in that change, and when it commits the contact server tells them to ask again (Admission.committed),
// as it tells any joiner a change ended without.

import { MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { assert, assertEqual, fail } from '../assert.js';
import type { ColumnSpecs } from '../sst/layout.js';
import type { SubgroupPlan } from './plans.js';
import {
  ViewChangeProtocol, type Change, type Joiner, type MembershipProtocol, type ProtocolNote, type ProtocolParts,
  type StepResult,
} from './protocol.js';
import { Scratch } from './table.js';
import type { ViewSpec } from './view-change.js';

/** What the predicate worker needs to step a view's protocol (posted once, with the port to report on). */
export interface ViewChangeSpec {
  columns: ColumnSpecs;
  /** Arena offset of the table's row 0. */
  base: number;
  selfId: number;
  view: ViewSpec;
  plans: readonly SubgroupPlan[];
  previousSize: number;
  previousVoters?: readonly number[];
  joined?: readonly number[];
  port: MessagePort;
  /** One i32 the worker adds 1 to after each report: the main thread looks at the port only when it moved. */
  posted: SharedArrayBuffer;
}

/** The main thread's requests to the worker's protocol. */
export type ViewChangeOp =
  | { op: 'suspect'; member: number }
  | { op: 'cutOff'; member: number }
  | { op: 'leave' }
  | { op: 'join'; joiners: Joiner[] }
  | { op: 'installed' }
  | { op: 'nextPort'; proposal: number; port: number }
  | { op: 'joinPorts'; proposal: number; ports: number[] }
  | { op: 'contactPort'; port: number }
  | { op: 'receiving'; receiving: boolean };

/** What the worker's protocol reports after a step that did something. */
export interface ViewChangeReport {
  notes: ProtocolNote[] | null;
  result: StepResult;
}

export interface WorkerViewChangeParts {
  /** The parts of the view's protocol, as a ViewChangeProtocol on this thread would take them. */
  protocol: Omit<ProtocolParts, 'fabric' | 'wedge' | 'trim' | 'scratch'>;
  columns: ColumnSpecs;
  /** Hands the spec to the predicate worker (with its port transferred). */
  host: (spec: ViewChangeSpec) => void;
  /** Sends one request to the worker (it rings the worker's doorbell). */
  request: (op: ViewChangeOp) => void;
  /** The worker's protocol wedged this member: this thread's shards wedge too. */
  wedge: () => void;
}

export class WorkerViewChange implements MembershipProtocol {
  readonly view: ViewSpec;
  readonly #reader: ViewChangeProtocol;
  readonly #port: MessagePort;
  /** Reports posted (the worker's count) and read: reading the port costs microseconds, the word nanoseconds. */
  readonly #posted = new Int32Array(new SharedArrayBuffer(4));
  #read = 0;
  readonly #request: (op: ViewChangeOp) => void;
  readonly #wedgeHere: () => void;
  #wedged = false;
  #applied: Change | null = null;
  #ended = false;
  #notes: ProtocolNote[] | null = null;
  #outcome: StepResult = null;

  constructor(parts: WorkerViewChangeParts) {
    const p = parts.protocol;
    this.view = p.view;
    this.#request = parts.request;
    this.#wedgeHere = parts.wedge;
    this.#reader = new ViewChangeProtocol({
      ...p, scratch: Scratch.Reader,
      fabric: { writeAll: () => fail('the main thread\'s copy of a worker-stepped protocol writes nothing') },
      wedge: () => fail('the main thread\'s copy of a worker-stepped protocol never wedges'),
    });
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    parts.host({
      columns: parts.columns, base: p.layout.base, selfId: p.selfId, view: p.view, plans: p.plans,
      previousSize: p.previousSize ?? p.view.members.length,
      ...(p.previousVoters ? { previousVoters: p.previousVoters } : {}),
      ...(p.joined ? { joined: p.joined } : {}),
      port: port2, posted: this.#posted.buffer as SharedArrayBuffer,
    });
  }

  get wedged(): boolean {
    this.#drain();
    return this.#wedged;
  }

  get applied(): Change | null {
    this.#drain();
    return this.#applied;
  }

  takeNotes(): ProtocolNote[] | null {
    this.#drain();
    const notes = this.#notes;
    this.#notes = null;
    return notes;
  }

  /** The worker's outcome, once: a commit (this member applies it), a removal or a partition. */
  step(): StepResult {
    this.#drain();
    const outcome = this.#outcome;
    this.#outcome = null;
    return outcome;
  }

  suspect(member: number): void {
    this.#request({ op: 'suspect', member });
  }

  cutOff(member: number): void {
    this.#request({ op: 'cutOff', member });
  }

  leave(): void { this.#request({ op: 'leave' }); }

  join(joiners: readonly Joiner[]): boolean {
    if (this.wedged || this.#applied || this.#ended || !this.#reader.mayJoin(joiners.length)) return false;
    this.#request({ op: 'join', joiners: joiners.map((j) => ({ id: j.id, host: j.host })) });
    return true;
  }

  announceInstalled(): void { this.#request({ op: 'installed' }); }
  publishNextPort(proposal: number, port: number): void { this.#request({ op: 'nextPort', proposal, port }); }
  publishJoinPorts(proposal: number, ports: readonly number[]): void {
    this.#request({ op: 'joinPorts', proposal, ports: [...ports] });
  }
  publishContactPort(port: number): void { this.#request({ op: 'contactPort', port }); }
  setReceiving(receiving: boolean): void { this.#request({ op: 'receiving', receiving }); }

  leader(): number | null { return this.#reader.leader(); }
  suspects(): Set<number> { return this.#reader.suspects(); }
  anyReceiving(): boolean { return this.#reader.anyReceiving(); }
  votersAmong(staying: readonly number[]): number[] { return this.#reader.votersAmong(staying); }
  allInstalled(): boolean { return this.#reader.allInstalled(); }
  nextPortOf(member: number, proposal: number): number | null { return this.#reader.nextPortOf(member, proposal); }
  joinPortOf(change: Change, k: number): number | null { return this.#reader.joinPortOf(change, k); }
  contactPortOf(member: number): number | null { return this.#reader.contactPortOf(member); }

  /** The worker's protocol checks its own invariants as it steps; here, what this thread was told agrees. */
  invariants(): void {
    this.#drain();
    if (this.#applied) assert(this.#wedged, 'a member that applied a change wedged first');
    if (this.#applied) assertEqual(this.#applied.next.vid, this.view.vid + 1, 'the applied change makes the next view');
  }

  /** Reads every report the worker posted since the last look. */
  #drain(): void {
    const posted = Atomics.load(this.#posted, 0);
    if (posted === this.#read) return;
    this.#read = posted;
    for (let m = receiveMessageOnPort(this.#port); m; m = receiveMessageOnPort(this.#port)) {
      const report = m.message as ViewChangeReport;
      for (const note of report.notes ?? []) {
        (this.#notes ??= []).push(note);
        if (note.event === 'wedged' && !this.#wedged) {
          this.#wedged = true;
          this.#wedgeHere(); // the worker froze the shards' counters and pushed them before it reported
        }
      }
      const result = report.result;
      if (!result) continue;
      this.#ended = true;
      if (result.type === 'commit') {
        assert(this.#wedged, 'a commit reported after this member wedged');
        this.#applied = result.change;
      }
      this.#outcome = result;
    }
  }
}
