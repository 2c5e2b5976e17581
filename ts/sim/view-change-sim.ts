// The view-change rules of DESIGN.md §6 (ts/membership/view-change.ts) under a seeded simulation: a shard
// runs ordered multicast for a while (shard-sim.ts), some members crash with their messages
// half-received (a ragged edge), the survivors wedge and take in what was already sent, and the leader's
// ragged trim decides what every survivor delivers — sometimes the leader itself crashes after publishing
// its trim to a few members. Checked: the survivors end the view with identical sequences; everything any
// member delivered before the change is in them; nothing is delivered that a survivor lacks; a surviving
// sender's messages are delivered or sent again, never both; a minority never installs a view.

import {
  adoptTrim, hasMajority, leaderOf, nextView, raggedTrim, resendFrom, trimDeliveries,
} from '../membership/view-change.js';
import { indexOf, rankOf } from '../multicast/ordering.js';
import { ShardSim, check, prng } from './shard-sim.js';

const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

export type Trim = (rows: ReadonlyArray<ArrayLike<number>>) => number[];
export interface Rules { trim: Trim; adopt: typeof adoptTrim }
export const RULES: Rules = { trim: raggedTrim, adopt: adoptTrim };

export interface Outcome { installed: boolean; where: string }

/**
 * One run: ordered traffic, crashes, a view change. Throws SimulationViolation (naming the seed) when a
 * property fails.
 */
export function runViewChange(seed: number, rules: Rules = RULES): Outcome {
  const random = prng(seed);
  const pick = (n: number) => Math.floor(random() * n);
  const n = 3 + pick(7); // 3..9 members
  const S = 1 + pick(n);
  const W = 1 + pick(6);
  const toSend = Array.from({ length: S }, () => (random() < 0.2 ? 0 : pick(30)));
  const sim = new ShardSim(seed, n, S, W, toSend);
  for (let i = 0, steps = pick(3000); i < steps; i++) sim.step(pick);
  const where = `${sim.where}`;

  // Crashes: a random set of members stops; what they sent reached each survivor only in part.
  // Mostly a minority crashes (the view changes); sometimes any number (the rest may be a minority that stops).
  const crashCount = random() < 0.2 ? 1 + pick(n - 1) : 1 + pick(Math.max(1, Math.floor((n - 1) / 2)));
  const order = [...Array(n).keys()].sort(() => random() - 0.5);
  for (const m of order.slice(0, crashCount)) sim.crashed.add(m);
  const before = sim.delivered.map((d) => d.map(([seq]) => seq));
  const view = { vid: 4, members: [...Array(n).keys()] };
  let survivors = view.members.filter((m) => !sim.crashed.has(m));
  if (!hasMajority(n, survivors.length)) {
    // A minority stops: it installs no view and delivers nothing more (the majority, if any, goes on).
    return { installed: false, where };
  }

  // Wedge: nothing new is sent; what survivors sent still arrives everywhere it is going.
  sim.wedged = true;
  for (const m of survivors) {
    for (let r = 0; r < S; r++) if (!sim.crashed.has(r)) sim.seenCommitted[m]![r] = sim.committed[r]!;
    sim.receive(m);
  }

  const agreed = agreeOnTrim(sim, view.members, survivors, rules, random);
  survivors = agreed.survivors;
  const { trim, finished } = agreed;

  // Every survivor delivers exactly the messages inside the trim.
  for (const m of survivors) {
    if (!finished.has(m)) for (const seq of trimDeliveries(sim.deliveredNum[m]!, trim)) sim.deliverSeq(m, seq);
  }
  checkViewEnd(sim, where, survivors, trim, before);

  // The next view: the crashed removed, a joiner appended, vid + 1.
  const next = nextView(view, sim.crashed, [n]);
  check(next.vid === 5 && same(next.members, [...survivors.slice().sort((a, b) => a - b), n]),
    `${where}: next view ${JSON.stringify(next)}`);
  return { installed: true, where };
}

/**
 * The leader computes the trim; sometimes it publishes it to a few members (who deliver by it at once) and
 * crashes, and the next leader adopts the published trim. Returns the survivors, the trim they deliver by,
 * and the members that delivered by it already.
 */
function agreeOnTrim(sim: ShardSim, members: readonly number[], alive: readonly number[], rules: Rules,
  random: () => number): { survivors: number[]; trim: readonly number[]; finished: Set<number> } {
  const n = members.length;
  let survivors = [...alive];
  let leader = leaderOf(members, sim.crashed)!;
  const copies: Array<number[] | null> = survivors.map(() => null);
  const trimOfLeader = rules.trim(survivors.map((m) => sim.numReceived[m]!));
  const finished = new Set<number>(); // members that delivered by a trim already
  if (random() < 0.3 && hasMajority(n, survivors.length - 1)) {
    // Members that got the trim copy it into their row and deliver by it at once.
    survivors.forEach((m, i) => {
      if (m === leader || random() >= 0.5) return;
      copies[i] = trimOfLeader;
      for (const seq of trimDeliveries(sim.deliveredNum[m]!, trimOfLeader)) sim.deliverSeq(m, seq);
      finished.add(m);
    });
    sim.crashed.add(leader);
    const gone = leader;
    const kept = survivors.map((m, i) => [m, copies[i]] as const).filter(([m]) => m !== gone);
    survivors = kept.map(([m]) => m);
    copies.length = 0;
    copies.push(...kept.map(([, c]) => c));
    leader = leaderOf(members, sim.crashed)!;
  }
  const trim = rules.adopt(copies, rules.trim(survivors.map((m) => sim.numReceived[m]!)));
  check(survivors.includes(leader), `${sim.where}: the leader ${leader} is a survivor`);
  return { survivors, trim, finished };
}

/**
 * The end of the view: the survivors' sequences are one; everything any member delivered before the change
 * is a prefix of it; a surviving sender's messages are delivered up to its trim and sent again after it.
 */
function checkViewEnd(sim: ShardSim, where: string, survivors: readonly number[], trim: readonly number[],
  before: readonly number[][]): void {
  const S = sim.senders;
  const final = survivors.map((m) => sim.delivered[m]!.map(([seq]) => seq));
  for (let i = 1; i < final.length; i++) {
    check(same(final[i]!, final[0]!),
      `${where}: survivors ${survivors[0]} and ${survivors[i]} end the view with different sequences`);
  }
  // Everything delivered before the change, at any member (the crashed ones too), is in the final sequence.
  for (let m = 0; m < before.length; m++) {
    check(same(final[0]!.slice(0, before[m]!.length), before[m]!),
      `${where}: member ${m}'s deliveries before the change are not a prefix of the survivors'`);
  }
  // A surviving sender's messages: delivered up to its trim, sent again in the next view after it.
  const delivered = new Set(final[0]);
  for (let r = 0; r < S; r++) {
    if (sim.crashed.has(r)) continue;
    const from = resendFrom(trim, r);
    for (let i = 0; i < sim.committed[r]!; i++) {
      const seq = i * S + r;
      const real = sim.received[survivors[0]!]![r]![i] !== null;
      if (i < from && real) {
        check(delivered.has(seq), `${where}: sender ${r}'s message ${i} is inside the trim but was not delivered`);
      }
      if (i >= from) {
        check(!delivered.has(seq),
          `${where}: sender ${r}'s message ${i} is beyond the trim (sent again next view) but was delivered`);
      }
    }
  }
  for (const seq of final[0]!) {
    check(indexOf(seq, S) <= trim[rankOf(seq, S)]!, `${where}: seq ${seq} delivered beyond the trim`);
  }
}
