// Tests that crash a member (SIGKILL, or SIGSTOP past the timeout) while others write to it. They are skipped
// when every member runs on libfabric's shm provider: shm (libfabric 1.17) guards each receiver's queue with a
// spin lock in shared memory, which a member killed while holding it never releases, and the members sending
// to it then spin in fi_send for good. squall cannot recover from that (docs/rdma.md, "shm and crashes").

import { test } from 'uvu';

export const SHM_CRASH_REASON =
  'shm (libfabric 1.17) cannot survive a crashed member: its queue lock stays taken (docs/rdma.md)';

/** Whether this process's members run on shm (SQUALL_FABRIC=libfabric with an shm provider). */
export function onShm(env: NodeJS.ProcessEnv = process.env): boolean {
  return env['SQUALL_FABRIC'] === 'libfabric' && /^shm(\+|$)/.test(env['SQUALL_FABRIC_PROVIDER'] ?? '');
}

/** `test`, or on shm the same test skipped, with the reason printed once. */
export function crashTest(name: string, body: () => Promise<void>): void {
  if (!onShm()) {
    test(name, body);
    return;
  }
  if (!reasonShown) console.log(`  (crash tests skipped: ${SHM_CRASH_REASON})`);
  reasonShown = true;
  test.skip(name, body);
}
let reasonShown = false;
