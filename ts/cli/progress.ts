// Progress for long-running commands: one line per step on stderr (stdout stays clean for --json),
// stamped with the seconds since the command started.

export type Progress = (message: string) => void;

export function progressOnStderr(prefix = 'squall'): Progress {
  const started = Date.now();
  return (message) => {
    const s = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
    process.stderr.write(`[${prefix} ${s}s] ${message}\n`);
  };
}
