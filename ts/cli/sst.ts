// `squall sst --config FILE --id N`: runs one member of a static SST. It increments its own 'counter'
// column every --interval-ms and pushes it, and prints its copy of the table once a second, with the
// members it suspects. Start one per member (any order; each waits for the others); Ctrl-C stops it.

import { ConfigError } from '../errors.js';
import { loadSstConfig } from '../sst/config.js';
import { SstMember } from '../sst/member.js';
import { defineCommand, parseCommand } from './args.js';
import { progressOnStderr } from './progress.js';
import { parseIntegerFlag, parseNumberFlag } from '../validate.js';

export const SST_COMMAND = defineCommand({
  command: 'sst',
  usage: '--config FILE --id N [options]',
  about: `Runs one member of a static SST: it adds 1 to its own 'counter' column every --interval-ms and
pushes it, and prints its copy of the table once a second, with the members it suspects. Start one per
member, in any order (each waits for the others); Ctrl-C stops it.`,
  options: {
    config: { type: 'string', value: 'FILE', help: 'the table configuration, JSON (docs/sst.md)' },
    id: { type: 'string', value: 'N', help: "this member's id, one of the configuration's members" },
    'interval-ms': {
      type: 'string', value: 'MS', help: 'how often the counter is incremented and pushed (default 100)',
    },
    listen: { type: 'string', value: 'HOST:PORT', help: 'bind here instead of the configured address' },
  },
});

export async function run(argv: string[]): Promise<void> {
  const values = parseCommand(SST_COMMAND, argv);
  if (values === null) return;
  if (!values.config || values.id === undefined) throw new ConfigError('squall sst needs --config FILE and --id N');
  const id = parseIntegerFlag(values.id, 'id', 0, 0xfffe, 0);
  const intervalMs = parseNumberFlag(values['interval-ms'], 'interval-ms', 0, 3_600_000, 100, true);
  const config = loadSstConfig(values.config);
  const columns = { counter: { type: 'i64' as const }, ...config.columns };
  const progress = progressOnStderr(`sst ${id}`);

  progress(`member ${id}: waiting for ${config.members.length - 1} peers`);
  const sst = await SstMember.start({ ...config, columns, id, ...(values.listen ? { listen: values.listen } : {}) });
  progress(`member ${id}: all peers connected`);
  sst.on('suspected', (peer, ms) => {
    progress(`member ${peer} suspected${ms ? ` (heartbeat stalled ${ms.toFixed(0)} ms)` : ''}`);
  });
  sst.on('peerFailed', (peer, reason) => progress(`connection to member ${peer} failed: ${reason}`));
  sst.on('rejected', (reason) => progress(`refused an incoming connection: ${reason}`));

  const push = sst.pusher('counter');
  const tick = setInterval(() => { sst.add('counter', 1); push(); }, intervalMs);
  const show = setInterval(() => {
    const cells = sst.layout.members.map((m) => `${m}:${sst.get(m, 'counter')}`).join(' ');
    const suspected = sst.suspected;
    process.stdout.write(`counters ${cells}${suspected.length ? `  suspected ${suspected.join(',')}` : ''}\n`);
  }, 1000);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  clearInterval(tick);
  clearInterval(show);
  await sst.close();
  progress('stopped');
}
