// A process that appends to a persistent log until it is killed: `node persist-child.js DIR SEGMENT_BYTES`.
// It opens the log (taking over the lock of a killed predecessor), appends records from the version after the
// log's last one — record n has a payload of n % 500 bytes, each (n + i) & 0xff — in bursts, and prints
// "open V" once, then "durable V" after each group commit. The test kills it with SIGKILL at some point.

import { PersistentLog } from '../../ts/persist/log.js';
import { ID } from './persist.js';

export function crashPayload(n: number): Uint8Array {
  const payload = new Uint8Array(n % 500);
  for (let i = 0; i < payload.length; i++) payload[i] = (n + i) & 0xff;
  return payload;
}

if (process.argv[2] !== undefined && process.argv[1]?.endsWith('persist-child.js')) {
  const log = await PersistentLog.open(process.argv[2], ID, { segmentBytes: Number(process.argv[3]) });
  process.stdout.write(`open ${log.appendedVersion}\n`);
  log.onDurable((v) => process.stdout.write(`durable ${v}\n`));
  let next = Number(log.appendedVersion) + 1;
  const burst = (): void => {
    if (next - Number(log.durableVersion) < 4000) {
      for (let k = 0; k < 100; k++, next++) {
        log.append({ version: BigInt(next), hlc: BigInt(next), sender: 2, payload: crashPayload(next) });
      }
    }
    setImmediate(burst);
  };
  burst();
}
