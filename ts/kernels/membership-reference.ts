// The view-change kernels of assembly/membership.ts in plain TypeScript, with the same interface
// (./membership.ts): the test oracle for the WebAssembly build, and a choice for the simulator (ts/sim), which
// may run the protocol over either. Written for clarity, one row and one cell at a time, as reference.ts is;
// i32 cells are read with Atomics.load on an Int32Array, i64 cells on a BigInt64Array (exact, never torn).

import type { MembershipKernels } from './membership.js';
import { RemovalFlag } from './membership.js';

function assertAligned(address: number, rowStride: number, bytes: number): void {
  if (address % bytes !== 0 || rowStride % bytes !== 0) {
    throw new RangeError(`${bytes * 8}-bit cells must be ${bytes}-byte aligned (address ${address}, row stride ` +
      `${rowStride})`);
  }
}

/** The reference view-change kernels over `memory` (the arena's; it must not grow). */
export function membershipReferenceKernels(memory: WebAssembly.Memory): MembershipKernels {
  const buffer = memory.buffer;
  const u8 = new Uint8Array(buffer);
  const i32 = new Int32Array(buffer);
  const i64 = new BigInt64Array(buffer);
  const f64 = new Float64Array(buffer);
  const live = (liveBase: number, r: number) => u8[liveBase + r] !== 0;
  const int32At = (address: number) => Atomics.load(i32, address >>> 2);

  return {
    removalFlags(tableBase, rowStride, nRows, liveBase, suspectedCol, leavingCol, changesCol, proposalCol, outBase) {
      assertAligned(tableBase + proposalCol, rowStride, 4);
      u8.fill(0, outBase, outBase + nRows);
      for (let r = 0; r < nRows; r++) {
        if (!live(liveBase, r)) continue;
        const row = tableBase + r * rowStride;
        if (u8[row + leavingCol] !== 0) u8[outBase + r] |= RemovalFlag.LEAVING;
        const proposing = int32At(row + proposalCol) > 0;
        for (let j = 0; j < nRows; j++) {
          if (u8[row + suspectedCol + j] !== 0) u8[outBase + j] |= RemovalFlag.SUSPECTED;
          if (proposing && u8[row + changesCol + j] !== 0) u8[outBase + j] |= RemovalFlag.PROPOSED;
        }
      }
      let count = 0;
      for (let j = 0; j < nRows; j++) if (u8[outBase + j] !== 0) count++;
      return count;
    },

    highestI32(tableBase, rowStride, nRows, col, liveBase) {
      assertAligned(tableBase + col, rowStride, 4);
      let highest = -Infinity;
      for (let r = 0; r < nRows; r++) {
        if (live(liveBase, r)) highest = Math.max(highest, int32At(tableBase + r * rowStride + col));
      }
      return highest;
    },

    countEqualI32(tableBase, rowStride, nRows, col, liveBase, value) {
      assertAligned(tableBase + col, rowStride, 4);
      let count = 0;
      for (let r = 0; r < nRows; r++) {
        if (live(liveBase, r) && int32At(tableBase + r * rowStride + col) === (value | 0)) count++;
      }
      return count;
    },

    countFlagged(tableBase, rowStride, nRows, col, liveBase) {
      let count = 0;
      for (let r = 0; r < nRows; r++) if (live(liveBase, r) && u8[tableBase + r * rowStride + col] !== 0) count++;
      return count;
    },

    acknowledgements(tableBase, rowStride, nRows, liveBase, proposalCol, wedgedCol, proposal) {
      assertAligned(tableBase + proposalCol, rowStride, 4);
      let acked = 0, unwedged = 0;
      for (let r = 0; r < nRows; r++) {
        const row = tableBase + r * rowStride;
        if (!live(liveBase, r) || int32At(row + proposalCol) !== (proposal | 0)) continue;
        acked++;
        if (u8[row + wedgedCol] === 0) unwedged++;
      }
      return acked | (unwedged << 16);
    },

    firstAtLeastI32(tableBase, rowStride, nRows, col, liveBase, least) {
      assertAligned(tableBase + col, rowStride, 4);
      for (let r = 0; r < nRows; r++) {
        if (live(liveBase, r) && int32At(tableBase + r * rowStride + col) >= (least | 0)) return r;
      }
      return -1;
    },

    outnumbered(tableBase, rowStride, nRows, liveBase, proposalCol, proposerCol, proposal, proposer) {
      assertAligned(tableBase + proposalCol, rowStride, 4);
      for (let r = 0; r < nRows; r++) {
        if (!live(liveBase, r)) continue;
        const row = tableBase + r * rowStride;
        const theirs = int32At(row + proposalCol);
        if (theirs > (proposal | 0) || (theirs === (proposal | 0) && int32At(row + proposerCol) !== (proposer | 0))) {
          return 1;
        }
      }
      return 0;
    },

    raggedTrimMin(tableBase, rowStride, nRows, col, senders, liveBase, outBase) {
      assertAligned(tableBase + col, rowStride, 8);
      let rows = 0;
      for (let r = 0; r < nRows; r++) if (live(liveBase, r)) rows++;
      for (let rank = 0; rank < senders; rank++) {
        let lowest: bigint | null = null;
        for (let r = 0; r < nRows; r++) {
          if (!live(liveBase, r)) continue;
          const v = Atomics.load(i64, (tableBase + r * rowStride + col + rank * 8) >>> 3);
          if (lowest === null || v < lowest) lowest = v;
        }
        f64[(outBase >>> 3) + rank] = lowest === null ? Infinity : Number(lowest);
      }
      return rows;
    },
  };
}
