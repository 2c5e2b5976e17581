// Command-line options for every squall subcommand: run node:util parseArgs through cliArgs, which turns
// its complaints (unknown option, stray argument, a missing value) into ConfigErrors that say where the
// options are listed.
//
//   const values = cliArgs('bench rdmc', () => parseArgs({ args: argv, options: OPTIONS }).values);

import { ConfigError } from '../errors.js';

export function cliArgs<T>(command: string, parse: () => T): T {
  try {
    return parse();
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? '';
    if (!code.startsWith('ERR_PARSE_ARGS')) throw cause;
    const message = (cause as Error).message.replace(/\.\s*$/, '').replace(/\n/g, ' ');
    throw new ConfigError(`${message} (squall ${command} --help lists the options)`, { cause });
  }
}
