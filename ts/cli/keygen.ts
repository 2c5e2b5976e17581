// `squall keygen`: prints a fresh random secret key for a group (KEYGEN_BYTES bytes, hex) on stdout. Store
// it in a file only the members' user can read and point SQUALL_SECRET_FILE or the configuration's
// "secretFile" at it; never pass it on a command line (docs/membership.md, "The credential").

import { generateSecret, KEYGEN_BYTES } from '../group/credential.js';
import { defineCommand, parseCommand } from './args.js';

export const KEYGEN_COMMAND = defineCommand({
  command: 'keygen',
  usage: '',
  about: `Prints a fresh random secret key for a group: ${KEYGEN_BYTES} bytes from the system's CSPRNG, in hex.`,
  options: {},
  notes: `Keep it in a file only the members' user can read, and give every member and joiner the same key:
  squall keygen > group.key && chmod 600 group.key
  SQUALL_SECRET_FILE=group.key squall node --config cluster.json --id 0
or "secretFile": "group.key" in the configuration (relative to the configuration file), or
SQUALL_SECRET, or Group.join({ secret }). There is no command-line option for the key: a process's
arguments are visible to every user of the machine.`,
});

export async function run(argv: string[]): Promise<void> {
  if (parseCommand(KEYGEN_COMMAND, argv) === null) return;
  process.stdout.write(`${generateSecret()}\n`);
}
