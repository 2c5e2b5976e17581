#!/usr/bin/env node
// The `squall` command. Each subcommand lives in its own module and is loaded only when used.

import { readFileSync } from 'node:fs';
import { SquallError } from '../errors.js';

const USAGE = `squall — strongly consistent replication for Node.js

usage:
  squall node --config FILE --id N [--listen HOST:PORT] [--contact HOST:PORT] [--module FILE]
              [--suspicion MS] [--rejoin | --no-rejoin] [options]
                                       run one member of a group (examples/cluster.json); with --contact,
                                       join the running group as a new member
  squall sst --config FILE --id N      run one member of a static SST (see docs/sst.md)
  squall bench sst [--members N] [--samples N] [--under-load] [--json]
                                       SST push latency beside plain TCP, kernel scan speed
  squall bench rdmc --members N --size SIZE --algorithm A [--block-size SIZE] [--netns --rate R]
                    [--repeats N] [--tcp-baseline] [--json]
                                       RDMC throughput to every receiver (A: binomial, chain, tree, sequential)
  squall bench multicast [--members N] [--size SIZE | --sizes LIST] [--seconds T] [--senders all|one]
                         [--window W] [--suspicion MS] [--json]
                                       ordered multicast deliveries per second per member, and latency
  squall bench viewchange [--members N | LIST] [--runs N] [--suspicion MS] [--json]
                                       time to detect a SIGKILLed member and to install the next view
  squall bench join [--state SIZE | LIST] [--members N] [--runs N] [--suspicion MS] [--json]
                                       time for a new member to join and catch up SIZE of state
  squall bench calls [--members N] [--in-flight N] [--seconds T] [--persisted] [--json]
                                       ordered calls per second per member, and call to last reply
  squall bench restart [--state SIZE] [--updates N] [--runs N] [--json]
                                       a persistent group SIGKILLed and started again; one member's catch-up
  squall bench persist [--members N] [--size SIZE] [--seconds T] [--json]
                                       the persistent log's disk; with --members, multicast durable everywhere
  squall tune --members N --size SIZE [--netns --rate RATE] [--algorithms LIST] [--json]
                                       sweeps RDMC block sizes, writes CSV and an SVG chart, recommends one
  squall model rdmc [--max-members N] [--size SIZE] [--block-size SIZE] [--rate R] [--json]
                                       completion time against group size, by discrete-event simulation
  squall sim [--level group|rules] [--seed S] [--runs N] [--trace] [--json]
                                       the view-change simulation over N seeds; a violation names its seed
  squall demo [--seconds S]            a local 3-member group booking tickets, live (npm start)
  squall inspect HOST:PORT [--watch] [--json]
                                       a running member's view, SST rows and shards (its --metrics admin port)
  squall keygen                        prints a fresh secret key for a group (SQUALL_SECRET_FILE, "secretFile")
  squall --version | --help
  squall <command> --help | squall help <command>
                                       a command's options (squall help bench multicast: a benchmark's)
`;

const commands: Record<string, () => Promise<{ run(argv: string[]): Promise<void> }>> = {
  node: () => import('./node.js'),
  sst: () => import('./sst.js'),
  bench: () => import('./bench.js'),
  model: () => import('./model.js'),
  tune: () => import('./tune.js'),
  demo: () => import('./demo.js'),
  sim: () => import('./sim.js'),
  keygen: () => import('./keygen.js'),
  inspect: () => import('./inspect.js'),
};

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || (name === 'help' && rest.length === 0)) {
    process.stdout.write(USAGE);
    return;
  }
  if (name === 'help') {
    // `squall help bench multicast` is `squall bench multicast --help`: the command prints its own table.
    const [topic, ...more] = rest;
    const load = commands[topic!];
    if (!load) {
      process.stderr.write(`squall: no command '${topic}' to help with\n\n${USAGE}`);
      process.exitCode = 2;
      return;
    }
    await (await load()).run([...more, '--help']);
    return;
  }
  if (name === '--version' || name === '-v') {
    const packageJson = readFileSync(new URL('../../../package.json', import.meta.url), 'utf8');
    const pkg = JSON.parse(packageJson) as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`squall: unknown command '${name}'\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  await (await load()).run(rest);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof SquallError) {
    process.stderr.write(`squall: ${err.message} (${err.code})\n`);
  } else if (err instanceof Error && (err as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    process.stderr.write(`squall: ${err.message}\n`);
  } else {
    process.stderr.write(`squall: ${err instanceof Error ? err.stack : String(err)}\n`);
  }
  process.exitCode = 1;
});
