// The faults of the group simulation (ts/sim/group-sim.ts), and when each strikes, drawn from the seed:
//
//   leave       a member leaves cleanly (Group.leave: the driver asks once what it sent is stable)
//   crash       a member stops; each of its links still delivers a random prefix of what it had queued;
//               each survivor's failure detector finds it after a random delay (its heartbeat stalled)
//   partition   the members split in two; writes across the cut are lost from then on, and each side
//               suspects the other after a random delay. The minority must stop; the majority goes on.
//               With GroupSimOptions.heal (squall sim --heal) it heals later: views built before the heal stay
//               cut, later views and the contact network reach across (ts/sim/sim-partition.ts)
//   delay       every link runs at its own pace, so members see each other's rows late and raggedly
//   join        a new member asks the leader to let it in (as a contact server would pass it on); the
//               leader's driver takes it into its next proposal, and once the change commits offers it
//               the next view, which the joiner builds and connects like everyone (the simulated contact
//               network is SimJoins, ts/sim/sim-joins.ts). A joiner whose leader fails, whose proposal is
//               replaced, or whose attempt fails where Group.join asks again, asks again
//   swarm       (GroupSimOptions.swarm, instead of the faults above) several joiners ask at once, the
//               leader takes them in one change, and each vanishes once taken or once it built the view
//               it enters; later one honest joiner asks. The members must never stop, and it must get in
//   cut at join (GroupSimOptions.cutAtJoin, instead of the faults above) one joiner asks, and a partition cuts
//               its proposer off alone the moment it commits the join: the joiner must get in all the same
//   healing cut (GroupSimOptions.healingCut, instead of the faults above) one joiner asks, a partition cuts it
//               off with a minority of the members at a stage of its join the seed picks, and later heals
//               (ts/sim/sim-partition.ts: views built before the heal stay cut): the joiner must get in
//   held cut    (GroupSimOptions.heldCut, instead of the faults above) a partition cuts a minority off with its
//               connections held (a bridge that stops forwarding): writes across it wait and land once it heals,
//               100–2,100 ticks later, and a failure detector no longer fires on a member it hears again. The
//               members never cut off must still run at the end (the quorum gate: those cut off suspect nobody)

import type { JoinState } from './sim-member.js';

/** When each fault strikes (ticks; −1: never), drawn from the seed. */
export interface FaultPlan {
  crashes: number[]; joins: number[]; partitionAt: number; leaveAt: number; swarmAt: number; honestAt: number;
  /** When the partition heals (healingCut: set when the cut strikes). */
  healAt: number;
  /** healingCut: the joiner's stage at which the cut strikes (null once it struck), and how many ticks it lasts. */
  cut: { stage: JoinState | null; lasts: number } | null;
}

/** healingCut: where in its join the joiner may be cut off. */
const CUT_STAGES: readonly JoinState[] = ['asking', 'proposed', 'entering', 'connecting'];

/** Which scenario a run plays: random faults unless one of these says otherwise (GroupSimOptions). */
export interface Scenario { swarm: boolean; cutAtJoin: boolean; healingCut: boolean; heal: boolean; heldCut: boolean }

/** The faults of a run of `n` members, from the seed's random stream `r` (draws in a fixed order: seeds replay). */
export function planFaults(r: () => number, n: number, scenario: Scenario): FaultPlan {
  const plan: FaultPlan = {
    crashes: [], joins: [], partitionAt: -1, leaveAt: -1, swarmAt: -1, honestAt: -1, healAt: -1, cut: null,
  };
  if (scenario.cutAtJoin || scenario.healingCut) plan.joins.push(50 + Math.floor(r() * 500));
  if (scenario.heldCut) {
    plan.partitionAt = 300 + Math.floor(r() * 2000);
    plan.healAt = plan.partitionAt + 100 + Math.floor(r() * 2000);
  } else if (scenario.healingCut) {
    const stage = CUT_STAGES[Math.floor(r() * CUT_STAGES.length)]!;
    plan.cut = { stage, lasts: 100 + Math.floor(r() * 2000) };
  } else if (!scenario.swarm && !scenario.cutAtJoin) {
    const crashes = Math.floor(r() * Math.min(3, Math.ceil(n / 2)));
    const partition = r() < 0.3;
    for (let i = 0; i < crashes; i++) plan.crashes.push(50 + Math.floor(r() * 2500));
    plan.partitionAt = partition ? 50 + Math.floor(r() * 2500) : -1;
    plan.leaveAt = r() < 0.25 ? 50 + Math.floor(r() * 2500) : -1;
    if (r() < 0.4) for (let i = 1 + Math.floor(r() * 3); i > 0; i--) plan.joins.push(50 + Math.floor(r() * 2500));
    // Drawn last, and only when asked for, so that the seeds of runs without it replay as before.
    if (scenario.heal && plan.partitionAt >= 0) plan.healAt = plan.partitionAt + 100 + Math.floor(r() * 2000);
  }
  plan.swarmAt = scenario.swarm ? 50 + Math.floor(r() * 500) : -1;
  plan.honestAt = scenario.swarm ? 2500 : -1;
  return plan;
}
