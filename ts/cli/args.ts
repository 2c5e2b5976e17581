// Command-line options for every squall subcommand. Each command declares one table (a CommandSpec): its
// usage line, what it does, and each option with its help text. The parser and the help printer both read
// that table, so `squall <command> --help` (and `squall help <command>`) always lists exactly the options
// the command accepts.
//
//   const NODE = defineCommand({ command: 'node', usage: '--config FILE --id N [options]', about: '…',
//     options: { config: { type: 'string', value: 'FILE', help: 'the group configuration' }, … } });
//   const values = parseCommand(NODE, argv);   // null: --help was asked for and printed
//   if (values === null) return;
//
// node:util parseArgs does the parsing; its complaints (unknown option, stray argument, a missing value)
// become ConfigErrors that say where the options are listed.

import { parseArgs } from 'node:util';
import { ConfigError } from '../errors.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** A string option that may be given several times (its value is then an array). */
  multiple?: boolean;
  /** The value's placeholder in the help, for string options: FILE, N, HOST:PORT, MS. */
  value?: string;
  /** What the option does, for the help; '\n' starts a continuation line. */
  help: string;
}

export interface CommandSpec<O extends Record<string, OptionSpec> = Record<string, OptionSpec>> {
  /** The command after `squall`: 'node', 'bench multicast'. */
  command: string;
  /** The rest of the usage line, e.g. '--config FILE --id N [options]'. */
  usage: string;
  /** What the command does: one paragraph ('\n' keeps a line break). */
  about: string;
  options: O;
  /** Printed after the options: defaults, notes, examples. */
  notes?: string;
}

/** The values parseCommand returns for a table of options. */
export type OptionValues<O extends Record<string, OptionSpec>> = {
  [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : O[K] extends { multiple: true } ? string[] : string;
};

const HELP_OPTION: OptionSpec = { type: 'boolean', short: 'h', help: 'print this help and exit' };

/** Declares a command's table; `const` keeps each option's type literal, so the values are typed. */
export function defineCommand<const O extends Record<string, OptionSpec>>(spec: CommandSpec<O>): CommandSpec<O> {
  for (const name of Object.keys(spec.options)) {
    if (name === 'help') throw new Error(`squall internal error: ${spec.command} declares --help itself`);
  }
  return spec;
}

/**
 * Parses `argv` by the command's table. With --help (or -h) anywhere, prints the help to stdout and
 * returns null: the caller returns, and the process exits 0.
 */
export function parseCommand<O extends Record<string, OptionSpec>>(
  spec: CommandSpec<O>, argv: readonly string[]
): OptionValues<O> | null {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, o] of Object.entries<OptionSpec>({ ...spec.options, help: HELP_OPTION })) {
    options[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  }
  // --help wins over everything else on the line, even an option the command does not know.
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText(spec));
    return null;
  }
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? '';
    if (!code.startsWith('ERR_PARSE_ARGS')) throw cause;
    const message = (cause as Error).message.replace(/\.\s*$/, '').replace(/\n/g, ' ');
    throw new ConfigError(`${message} (squall ${spec.command} --help lists the options)`, { cause });
  }
  return values as OptionValues<O>;
}

/** The help of a command, rendered from its table. */
export function helpText(spec: CommandSpec): string {
  const rows = Object.entries<OptionSpec>({ ...spec.options, help: HELP_OPTION }).map(([name, o]) => ({
    flag: `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`,
    help: o.help + (o.multiple ? '\n(may be given more than once)' : ''),
  }));
  const width = Math.min(28, Math.max(...rows.map((r) => r.flag.length))) + 2;
  const lines = [
    `usage: squall ${spec.command}${spec.usage ? ` ${spec.usage}` : ''}`, '', ...indent(spec.about, 2), '', 'options:',
  ];
  for (const r of rows) {
    const [first = '', ...more] = r.help.split('\n');
    if (r.flag.length + 2 > width) lines.push(`  ${r.flag}`, `  ${' '.repeat(width)}${first}`);
    else lines.push(`  ${r.flag.padEnd(width)}${first}`);
    for (const line of more) lines.push(`  ${' '.repeat(width)}${line}`);
  }
  if (spec.notes) lines.push('', ...indent(spec.notes, 2));
  return `${lines.join('\n')}\n`;
}

/** The one-line synopsis of a command: `squall <command> <usage>`. */
export function synopsis(spec: CommandSpec): string {
  return `squall ${spec.command}${spec.usage ? ` ${spec.usage}` : ''}`;
}

function indent(text: string, spaces: number): string[] {
  return text.split('\n').map((line) => (line ? ' '.repeat(spaces) + line : ''));
}
