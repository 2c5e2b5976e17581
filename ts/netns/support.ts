// Can this machine build an emulated network? Answered once per process by building a tiny one: a namespace
// with a veth pair on a bridge and a tbf qdisc, which needs root, iproute2 and the kernel's netns, veth,
// bridge and sch_tbf support. Tests skip with `why` when it says no.

import { findExecutable, runSync } from './commands.js';
import { namespaceName } from './lifetime.js';

export type NetnsSupport = { ok: true } | { ok: false; why: string };

let cached: NetnsSupport | undefined;

export function netnsSupport(): NetnsSupport {
  cached ??= check();
  return cached;
}

function check(): NetnsSupport {
  if (process.platform !== 'linux') return { ok: false, why: 'emulated networks need Linux network namespaces' };
  if (process.getuid?.() !== 0) {
    return {
      ok: false,
      why: 'emulated networks need root (network namespaces, veth links and tc qdiscs need CAP_SYS_ADMIN and ' +
        'CAP_NET_ADMIN): run as root',
    };
  }
  for (const tool of ['ip', 'tc']) {
    if (!findExecutable(tool)) {
      return { ok: false, why: `\`${tool}\` is missing: install iproute2 (apt-get install iproute2)` };
    }
  }
  const namespace = namespaceName(process.pid, 'check', 'br');
  let added = false;
  try {
    runSync('ip', ['netns', 'add', namespace]);
    added = true;
    runSync('ip', ['-n', namespace, '-batch', '-'],
      'link add sq-a type veth peer name sq-b\nlink add sq-br type bridge\nlink set sq-a master sq-br\n');
    runSync('tc', ['-n', namespace, 'qdisc', 'add', 'dev', 'sq-a', 'root', 'tbf',
      'rate', '1mbit', 'burst', '32kb', 'latency', '10ms']);
    return { ok: true };
  } catch (err) {
    return {
      ok: false,
      why: `could not build a test network: ${(err as Error).message} (needs kernel support for network namespaces, ` +
        `veth, bridge and the tbf qdisc; in a container, CAP_SYS_ADMIN and CAP_NET_ADMIN)`,
    };
  } finally {
    if (added) {
      try {
        runSync('ip', ['netns', 'del', namespace]);
      } catch { /* left for removeStaleNetworks() once this pid is gone */ }
    }
  }
}
