// The view-change protocol of a view stepped in its predicate worker (the worker engine; DESIGN.md §6,
// issue 15). The worker already wakes for every batch of table changes and every suspicion it finds; here
// it also evaluates the view change's predicates (the OR of suspicions, wedge detection, acknowledgements,
// the ragged trim, commits) with the same ViewChangeProtocol — and the same WebAssembly kernels — the main
// engine and the simulator run, writes this member's membership columns, and pushes them itself:
//
//   - a suspicion this worker finds (a stalled heartbeat, a broken connection) is marked in our row and
//     pushed at once, without a turn of the main thread's event loop;
//   - wedging freezes our shards' counters here (ShardEngine.wedge pushes them first), then the wedged flag
//     and the acknowledgement follow on the control lane from this same thread, so the leader reads final
//     counters once it has every acknowledgement (ts/membership/protocol.ts, Lanes);
//   - the main thread is told what it must act on — the notes (wedged, proposed) and an outcome (a commit
//     to install, a removal, a partition) — on a MessagePort it reads synchronously in its step
//     (ts/membership/worker-view-change.ts), and is woken through the fabric's arrival function.
//
// The main thread's own requests (a suspicion its connections found, leave, joiners for the next proposal,
// the start barrier's announcement, the ports of the next view, the contact port, state still awaited) come
// as commands: this thread is the only writer of our membership columns.

import type { MessagePort } from 'node:worker_threads';
import type { Arena } from '../ts/arena.js';
import type { AttachedFabric } from '../ts/fabric/native.js';
import type { MembershipKernels } from '../ts/kernels/membership.js';
import { ViewChangeProtocol, type ProtocolNote, type StepResult } from '../ts/membership/protocol.js';
import type { ViewChangeOp, ViewChangeReport, ViewChangeSpec } from '../ts/membership/worker-view-change.js';
import { SstLayout } from '../ts/sst/layout.js';
import type { ShardEngine } from './shard-engine.js';

export class ViewChangeHost {
  readonly #protocol: ViewChangeProtocol;
  readonly #port: MessagePort;
  readonly #posted: Int32Array;
  readonly #wakeMain: () => void;
  /** Once an outcome is reported the protocol steps no more (it returns null from then on anyway). */
  #done = false;
  /**
   * The main thread started the view (its start barrier's announcement): from then on this worker acts on
   * the suspicions it finds itself. Before, a connection that breaks while the view is being installed is the
   * main thread's to judge (the driver reports failures only in the current view), as with the main engine.
   */
  #started = false;
  /**
   * A request changed our row since the last step, or a bad row's note was posted without a wake (noteNow):
   * the main thread is woken after the step, to read the table and the notes anew (a member alone in its
   * view gets no peer's write that would wake it to see its own start barrier).
   */
  #requested = false;

  constructor(arena: Arena, fabric: AttachedFabric, kernels: MembershipKernels, shards: ShardEngine,
    spec: ViewChangeSpec, wakeMain: () => void) {
    this.#port = spec.port;
    this.#posted = new Int32Array(spec.posted);
    this.#wakeMain = wakeMain;
    this.#protocol = new ViewChangeProtocol({
      arena, layout: new SstLayout(spec.columns, spec.view.members, spec.base), fabric, kernels,
      selfId: spec.selfId, view: spec.view, plans: spec.plans, previousSize: spec.previousSize,
      ...(spec.joined ? { joined: spec.joined } : {}),
      ...(spec.previousVoters ? { previousVoters: spec.previousVoters } : {}),
      wedge: () => shards.wedge(),
      // Posted, not rung: the step wakes the main thread at its end, once the suspicion is pushed.
      noteNow: () => {
        this.#report({ notes: this.#protocol.takeNotes(), result: null }, false);
        this.#requested = true;
      },
    });
  }

  /** This worker suspects `member` (its heartbeat stalled, its connection broke): marked and pushed now. */
  suspect(member: number): void {
    if (this.#started && !this.#done) this.#protocol.suspect(member);
  }

  /** This worker found itself cut off (its quorum gate held a suspicion of `member`): stops as partitioned. */
  cutOff(member: number): void {
    if (this.#started && !this.#done) this.#protocol.cutOff(member);
  }

  /** A request of the main thread (see the header). */
  apply(op: ViewChangeOp): void {
    const p = this.#protocol;
    this.#requested = true;
    switch (op.op) {
      case 'suspect': if (!this.#done) p.suspect(op.member); break;
      case 'cutOff': if (!this.#done) p.cutOff(op.member); break;
      case 'leave': p.leave(); break;
      case 'join': p.join(op.joiners); break; // refused: a change began since (WorkerViewChange.join)
      case 'installed': this.#started = true; p.announceInstalled(); break;
      case 'nextPort': p.publishNextPort(op.proposal, op.port); break;
      case 'joinPorts': p.publishJoinPorts(op.proposal, op.ports); break;
      case 'contactPort': p.publishContactPort(op.port); break;
      case 'receiving': p.setReceiving(op.receiving); break;
    }
  }

  /** One step of the protocol over the table as it stands; what the main thread must know is sent and rung. */
  step(): void {
    if (this.#done) {
      if (this.#requested) this.#wakeMain(); // the next view's ports, published after the commit
      this.#requested = false;
      return;
    }
    const result: StepResult = this.#protocol.step();
    const notes: ProtocolNote[] | null = this.#protocol.takeNotes();
    if (result) this.#done = true;
    if (result || notes) this.#report({ notes, result });
    else if (this.#requested) this.#wakeMain();
    this.#requested = false;
  }

  #report(report: ViewChangeReport, wake = true): void {
    this.#port.postMessage(report);
    Atomics.add(this.#posted, 0, 1); // after the post: a main thread that sees the count finds the report
    if (wake) this.#wakeMain();
  }
}
