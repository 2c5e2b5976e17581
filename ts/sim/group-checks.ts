// The checks of the group simulation (ts/sim/group-sim.ts), run once a run ends; each failure throws
// SimulationViolation naming the seed:
//
//   total order       (ordered) members that leave view v for the same next view delivered the same
//                     sequence in v
//   prefix            anything any member delivered in v — one that crashed or stopped included — is a
//                     prefix of that sequence
//   sender order      each sender's messages are delivered in its order, each once (raw mode too: a message
//                     one member delivered on receipt and another never got is sent again, and passed over
//                     where it was delivered already); a joiner's from wherever its first view begins
//   liveness          once faults stop, the live majority ends in one view and delivers every message
//                     its senders sent; what a member that left cleanly sent is delivered everywhere
//   swarm             (swarm runs) no member of view 0 stops, the honest joiner gets in, and the final view
//                     holds no vanished joiner
//   joiner in         (cutAtJoin runs) the joiner whose proposer was cut off at the commit gets in
//
// "One view per vid" and "no delivery after exclusion" are checked as the run goes (group-sim.ts).

import { check } from './shard-sim.js';

/** What the checks read of one simulated member at the end of a run. */
export interface MemberRecord {
  id: number;
  alive: boolean;
  stopped: string | null;
  /** A joiner (it entered a running group), and how far it got. */
  joining: { state: string } | null;
  /** What it delivered in each subgroup: `vid:sender:k` per message. */
  delivered: Record<string, string[]>;
  sent: Record<string, number>;
  /** The views it was in (connected to). */
  views: Set<number>;
  /** Its current view's number, −1 before it has one. */
  vid: number;
}

export interface RunRecord {
  seed: number;
  /** Members of view 0 (the first n records). */
  n: number;
  members: readonly MemberRecord[];
  /** Messages each member sends in each subgroup. */
  messages: number;
  faults: readonly string[];
  /** Every live member settled in one view with nothing in flight; `where` describes each otherwise. */
  settled: boolean;
  where: string;
}

const parse = (d: string) => d.split(':').map(Number) as [number, number, number];

/** Swarm runs: the vanished joiners cost the members nothing but a change; the honest joiner got in. */
export function checkSwarm(run: RunRecord, swarm: string, vanished: ReadonlySet<number>,
  finalView: readonly number[]): void {
  const s = run.seed;
  for (const m of run.members.slice(0, run.n)) {
    check(m.stopped === null, `seed ${s}: member ${m.id} of view 0 stopped (${m.stopped}) after ${swarm}`);
  }
  const honest = run.members[run.members.length - 1]!;
  check(!vanished.has(honest.id) && honest.joining?.state === 'in' && honest.stopped === null,
    `seed ${s}: the honest joiner ${honest.id} did not get in after ${swarm} `
    + `(${honest.stopped ?? honest.joining?.state})`);
  check(finalView.every((id) => run.members[id]!.alive),
    `seed ${s}: view [${finalView.join(',')}] still holds a vanished joiner after ${swarm}`);
}

/** Joiner `id` got in and did not stop, after `what`. */
export function checkJoinerIn(run: RunRecord, id: number, what: string): void {
  const j = run.members[id]!;
  check(j.joining?.state === 'in' && j.stopped === null,
    `seed ${run.seed}: joiner ${id} did not get in after ${what} (${j.stopped ?? j.joining?.state})`);
}

/** The members `ids` (never cut off, never crashed) still run, all in the view the run settled in. */
export function checkStayed(run: RunRecord, ids: readonly number[], what: string): void {
  for (const id of ids) {
    const m = run.members[id]!;
    check(m.alive && m.stopped === null, `seed ${run.seed}: member ${id} stopped after ${what} that never cut it off `
      + `(${m.stopped}; faults: ${run.faults.join('; ')})`);
  }
  check(run.settled, `seed ${run.seed}: the members did not settle after ${what} (${run.where})`);
}

/**
 * The checks of one subgroup. Ordered: per view, every member's sequence is a prefix of the longest, and
 * members that went on past the view delivered all of it. Raw (delivery on receipt, each sender's order):
 * each sender's messages once each, in order, at every member — across views, since a message one member
 * delivered on receipt may reach another only when its sender sends it again in the next view — and all
 * of a live sender's everywhere in the end.
 */
export function checkSubgroup(run: RunRecord, g: string, raw: boolean): void {
  if (!raw) checkViews(run, g);
  checkSenderOrder(run, g);
  checkLiveness(run, g);
}

/** Ordered: per view, a prefix of one sequence everywhere, all of it at members that went on. */
function checkViews(run: RunRecord, g: string): void {
  const s = run.seed;
  const vids = [...new Set(run.members.flatMap((m) => m.delivered[g]!.map((d) => parse(d)[0])))];
  for (const vid of vids) {
    const seqs = run.members.map((m) => m.delivered[g]!.filter((d) => parse(d)[0] === vid));
    const longest = seqs.reduce((a, b) => (b.length > a.length ? b : a));
    for (const [i, seq] of seqs.entries()) {
      for (let k = 0; k < seq.length; k++) {
        check(seq[k] === longest[k],
          `seed ${s}: ${g}: member ${i} delivered ${seq[k]} at position ${k} of view ${vid} (all), another member `
          + `${longest[k]}`);
      }
      const m = run.members[i]!;
      const wentOn = m.views.has(vid) && m.vid > vid && m.stopped === null;
      if (wentOn) {
        check(seq.length === longest.length, `seed ${s}: ${g}: member ${i} left view ${vid} having delivered `
          + `${seq.length} of its ${longest.length} messages (all; virtual synchrony)`);
      }
    }
  }
}

/** Each member delivers each sender's messages in order, once each. */
function checkSenderOrder(run: RunRecord, g: string): void {
  for (const m of run.members) {
    const next = new Map<number, number>();
    for (const d of m.delivered[g]!) {
      const [, sender, k] = parse(d);
      const want = next.get(sender) ?? (m.joining ? k : 0); // a joiner starts where its first view does
      check(k === want, `seed ${run.seed}: ${g}: member ${m.id} delivered message ${k} of sender ${sender} where `
        + `${want} was due`);
      next.set(sender, want + 1);
    }
  }
}

/** The live members that did not stop settled in one view and delivered everything they sent. */
function checkLiveness(run: RunRecord, g: string): void {
  const s = run.seed;
  const live = run.members.filter((m) => m.alive && m.stopped === null);
  check(live.length > 0 || run.faults.length > 0, `seed ${s}: every member stopped without a fault`);
  check(run.settled, `seed ${s}: the live members did not settle (faults: ${run.faults.join('; ')}; views: `
    + `${run.where})`);
  for (const m of live) {
    for (const sender of live) {
      const ks = m.delivered[g]!.filter((d) => parse(d)[1] === sender.id).map((d) => parse(d)[2]);
      const from = m.joining ? (ks[0] ?? run.messages) : 0; // sender order (above) makes the rest consecutive
      check(ks.length === run.messages - from, `seed ${s}: ${g}: member ${m.id} delivered ${ks.length} of live sender `
        + `${sender.id}'s ${run.messages - from} messages from its ${from}th`);
    }
    // A member that left cleanly left nothing behind: everything it sent is delivered here.
    for (const leaver of m.joining ? [] : run.members.filter((x) => x.stopped === 'left')) {
      const count = m.delivered[g]!.filter((d) => parse(d)[1] === leaver.id).length;
      check(count === leaver.sent[g], `seed ${s}: ${g}: member ${m.id} delivered ${count} of the ${leaver.sent[g]} `
        + `messages member ${leaver.id} sent before it left`);
    }
  }
}
