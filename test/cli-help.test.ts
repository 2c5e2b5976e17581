// `squall <command> --help` and `squall help <command>` print the command's own option table and exit 0,
// for every command and benchmark; `squall node` refuses an id its configuration does not have, in one
// line that names the ids it has and how to join as a new member.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startCli } from './support/cli-runs.js';
import { pattern } from './support/pattern.js';

const COMMANDS = [
  ['node'], ['sst'], ['demo'], ['sim'], ['keygen'], ['inspect'], ['tune'], ['model'], ['model', 'rdmc'],
  ['bench'], ['bench', 'sst'], ['bench', 'rdmc'], ['bench', 'multicast'], ['bench', 'viewchange'], ['bench', 'join'],
  ['bench', 'calls'], ['bench', 'restart'], ['bench', 'persist'],
];

async function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const run = startCli(args);
  const code = await run.exit;
  return { code, out: run.out, err: run.err };
}

test('squall <command> --help exits 0 and prints the command\'s usage and options, for every command and benchmark',
  async () => {
  const runs = await Promise.all(COMMANDS.map((c) => cli([...c, '--help'])));
  for (const [i, r] of runs.entries()) {
    const name = COMMANDS[i]!.join(' ');
    assert.is(r.code, 0, `squall ${name} --help exits 0; stderr: ${r.err}`);
    assert.is(r.err, '', `squall ${name} --help writes nothing to stderr`);
    assert.match(r.out, new RegExp(`^usage: squall ${name}\\b`), `squall ${name} --help: ${r.out.slice(0, 80)}`);
  }
  // -h too, and --help wins over the other options (even required ones missing, or unknown ones).
  for (const args of [['node', '-h'], ['node', '--id', '1', '--help'], ['bench', 'join', '--bogus', '--help']]) {
    const r = await cli(args);
    assert.is(r.code, 0, args.join(' '));
    assert.match(r.out, /^usage: squall /);
  }
});

test('squall help <command> prints what squall <command> --help prints', async () => {
  const pairs = [['node'], ['bench', 'multicast'], ['model', 'rdmc'], ['bench']];
  for (const c of pairs) {
    const [viaHelp, viaFlag] = await Promise.all([cli(['help', ...c]), cli([...c, '--help'])]);
    assert.is(viaHelp.code, 0, `squall help ${c.join(' ')}`);
    assert.is(viaHelp.out, viaFlag.out, `squall help ${c.join(' ')}`);
  }
  const unknown = await cli(['help', 'nope']);
  assert.is(unknown.code, 2);
  assert.match(unknown.err, /no command 'nope'/);
});

test('squall --help names every command and benchmark, and each flag it shows is one the command takes', async () => {
  const [top, bench] = await Promise.all([cli(['--help']), cli(['bench', '--help'])]);
  // `  squall bench multicast [--members N] …` with its continuation lines, one entry per command.
  const entries = top.out.split(/\n(?=  squall )/).filter((e) => /^ {2}squall [a-z]/.test(e));
  const byCommand = new Map<string, string>();
  for (const entry of entries) {
    // The command's words end at its first option or placeholder, or at the description column.
    const words = entry.trim().split('\n')[0]!.split(/\s{2,}/)[0]!.split(' ').slice(1);
    const end = words.findIndex((w) => !/^[a-z]+$/.test(w));
    const command = words.slice(0, end < 0 ? words.length : end).join(' ');
    byCommand.set(command, entry);
  }
  const leaves = COMMANDS.map((c) => c.join(' ')).filter((c) => c !== 'bench' && c !== 'model');
  for (const command of leaves) assert.ok(byCommand.has(command), `squall --help shows squall ${command}`);
  for (const name of bench.out.matchAll(/^ {2}squall bench ([a-z]+)/gm)) {
    assert.ok(byCommand.has(`bench ${name[1]}`), `squall --help shows squall bench ${name[1]}`);
  }
  const helps = await Promise.all([...byCommand.keys()].map((c) => cli([...c.split(' '), '--help'])));
  for (const [i, [command, entry]] of [...byCommand].entries()) {
    for (const flag of new Set(entry.match(/--[a-z][a-z-]*/g) ?? [])) {
      assert.ok(new RegExp(`${flag}\\b`).test(helps[i]!.out), `squall ${command} --help lists ${flag}`);
    }
  }
});

test('squall node --help lists every option the node command takes: --suspicion, --rejoin and --no-rejoin among them',
  async () => {
  const { out } = await cli(['node', '--help']);
  const flags = [
    '--config FILE', '--id N', '--listen HOST:PORT', '--contact HOST:PORT', '--module FILE', '--suspicion MS',
    '--rejoin', '--no-rejoin', '--help',
  ];
  for (const flag of flags) {
    assert.ok(out.includes(flag), `${flag} in ${out}`);
  }
  const benchmarks = ['multicast', 'viewchange', 'join', 'sst', 'calls'].map((b) => ['bench', b]);
  for (const c of benchmarks) {
    assert.ok((await cli([...c, '--help'])).out.includes('--suspicion MS'), `squall ${c.join(' ')} takes --suspicion`);
  }
});

test('squall node with an id the configuration does not have (no --contact): one line naming its ids and --contact, ' +
  'exit 1, no stack', async () => {
  const config = new URL('../../examples/cluster.json', import.meta.url).pathname;
  const r = await cli(['node', '--config', config, '--id', '9']);
  assert.is(r.code, 1);
  assert.is(r.out, '');
  assert.is(r.err.trimEnd().split('\n').length, 1, `one line: ${r.err}`);
  assert.match(r.err, pattern([
    /^squall: member 9 is not in .*cluster\.json, whose members are 0, 1, 2: start one of those ids, /,
    /or join the running group as a new member with --contact HOST:PORT .*127\.0\.0\.1:7400.*\(ERR_SQUALL_CONFIG\)$/,
  ], 'm'));
  assert.not.match(r.err, /\n\s+at /, 'no stack trace');
});

test('squall node refuses bad --suspicion, --rejoin with --no-rejoin, and unknown options, each in one line',
  async () => {
  const config = new URL('../../examples/cluster.json', import.meta.url).pathname;
  const cases: Array<[string[], RegExp]> = [
    [['--config', config, '--id', '0', '--suspicion', 'soon'], /--suspicion must be a positive integer, got 'soon'/],
    [['--config', config, '--id', '0', '--rejoin', '--no-rejoin'], /give --rejoin or --no-rejoin, not both/],
    [['--config', config, '--id', '0', '--bogus'], /Unknown option '--bogus' \(squall node --help lists the options\)/],
  ];
  const runs = await Promise.all(cases.map(([args]) => cli(['node', ...args])));
  for (const [i, r] of runs.entries()) {
    assert.is(r.code, 1, cases[i]![0].join(' '));
    assert.match(r.err, cases[i]![1]);
    assert.is(r.err.trimEnd().split('\n').length, 1, r.err);
  }
});

test.run();
