import { ConfigError } from './errors.js';

export interface HostPort {
  host: string;
  port: number;
}

/** Parses 'host:port' or '[v6]:port'. Port 0 asks the system for a free port. */
export function parseAddress(address: string, what = 'address'): HostPort {
  if (typeof address !== 'string') throw new ConfigError(`${what} must be a string like '127.0.0.1:7000'`);
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`${what} '${address}' is not host:port (for example '127.0.0.1:7000')`);
  return { host: (m[1] ?? m[2])!, port };
}

export function formatAddress({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
