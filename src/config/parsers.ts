/**
 * How each agent flag's raw value (a string from the command line, the environment or a default) becomes
 * a checked value. Every parser throws a ConfigError that names the flag and says what was expected.
 */
import os from 'node:os';
import { parseHostPort } from '../../common/host-port.js';

export class ConfigError extends Error {
  /** The flag at fault (`--workers`), for a config file to point at its line. */
  constructor(
    readonly flag: string,
    problem: string,
  ) {
    super(`invalid ${flag}: ${problem}`);
    this.name = 'ConfigError';
  }
}

/** What a flag's value arrives as: a string, a list (a repeatable flag), a switch. */
export type RawValue = string | string[] | boolean | undefined;

export type Parser<T> = (raw: RawValue, flag: string) => T;

function one(raw: RawValue, flag: string): string | undefined {
  if (raw === undefined || typeof raw === 'string') return raw;
  throw new ConfigError(flag, `expected one value, got ${JSON.stringify(raw)}`);
}

export const text: Parser<string | undefined> = (raw, flag) => one(raw, flag);

export const flagSwitch: Parser<boolean> = (raw) => raw === true || raw === 'true' || raw === '1';

export function integer(min: number, max = Number.MAX_SAFE_INTEGER): Parser<number> {
  return (raw, flag) => {
    const value = one(raw, flag);
    if (value === undefined || !/^\d+$/.test(value.trim()))
      throw new ConfigError(flag, `expected an integer, got ${JSON.stringify(value)}`);
    const n = Number(value);
    if (n < min || n > max) throw new ConfigError(flag, `${n} is outside ${min}..${max}`);
    return n;
  };
}

/** An integer, or undefined when the flag is not given. */
export function optionalInteger(min: number, max?: number): Parser<number | undefined> {
  const parse = integer(min, max);
  return (raw, flag) => (raw === undefined ? undefined : parse(raw, flag));
}

/** A positive number of seconds, as milliseconds. */
export const seconds: Parser<number> = (raw, flag) => {
  const value = one(raw, flag);
  const n = Number(value);
  if (value === undefined || value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new ConfigError(flag, `expected a positive number of seconds, got ${JSON.stringify(value)}`);
  }
  return Math.round(n * 1000);
};

/** A number of seconds, 0 included (which turns the feature off), as milliseconds. */
export const secondsOrOff: Parser<number> = (raw, flag) => {
  const value = one(raw, flag);
  const n = Number(value);
  if (value === undefined || value.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new ConfigError(flag, `expected a number of seconds (0: off), got ${JSON.stringify(value)}`);
  }
  return Math.round(n * 1000);
};

/** An http(s)/ws(s) URL; whether clear text is allowed is decided with --insecure-cloud. */
export const cloudUrl: Parser<URL> = (raw, flag) => {
  const value = one(raw, flag);
  if (!value) throw new ConfigError(flag, 'required (or set TERMGATE_CLOUD_URL)');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(flag, `not a URL: ${JSON.stringify(value)}`);
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) {
    throw new ConfigError(flag, `scheme must be http, https, ws or wss, got ${url.protocol}`);
  }
  return url;
};

export const containerGlobs: Parser<string[]> = (raw, flag) => {
  const value = one(raw, flag);
  if (value === undefined) return [];
  const globs = value.split(',').map((g) => g.trim());
  for (const g of globs) {
    if (!/^[A-Za-z0-9_.*?[\]-]{1,255}$/.test(g)) {
      throw new ConfigError(
        flag,
        `${JSON.stringify(g)} is not a container name glob (letters, digits, _ . - and * ? [ ])`,
      );
    }
  }
  return globs;
};

export interface ContainerLabel {
  key: string;
  value: string | undefined;
}

export const containerLabel: Parser<ContainerLabel | undefined> = (raw, flag) => {
  const value = one(raw, flag);
  if (value === undefined) return undefined;
  const eq = value.indexOf('=');
  const key = eq < 0 ? value : value.slice(0, eq);
  if (!/^[A-Za-z0-9_.\-/]{1,255}$/.test(key))
    throw new ConfigError(flag, `bad label key ${JSON.stringify(key)}`);
  return { key, value: eq < 0 ? undefined : value.slice(eq + 1) };
};

export const portRange: Parser<[number, number] | undefined> = (raw, flag) => {
  const value = one(raw, flag);
  if (value === undefined) return undefined;
  const m = /^(\d+)-(\d+)$/.exec(value.trim());
  if (!m) throw new ConfigError(flag, `expected BEGIN-END, got ${JSON.stringify(value)}`);
  const port = integer(1024, 65535);
  const begin = port(m[1], flag);
  const end = port(m[2], flag);
  if (end < begin) throw new ConfigError(flag, `end ${end} is below begin ${begin}`);
  return [begin, end];
};

/** `HOST:PORT`, or `off`. */
export const listenAddress: Parser<{ host: string; port: number } | undefined> = (raw, flag) => {
  const value = one(raw, flag);
  if (value === undefined || value === 'off') return undefined;
  const address = parseHostPort(value);
  if (!address) throw new ConfigError(flag, `expected HOST:PORT or off, got ${JSON.stringify(value)}`);
  return address;
};

/** STUN/TURN URLs: the flag repeated, or a comma-separated list (the environment's form). */
export const iceServers: Parser<string[]> = (raw, flag) => {
  if (raw === undefined || typeof raw === 'boolean') return [];
  const list = (Array.isArray(raw) ? raw : [raw])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  for (const url of list) {
    if (!/^(stun|turn|turns):/.test(url))
      throw new ConfigError(flag, `expected a stun:, turn: or turns: URL, got ${JSON.stringify(url)}`);
  }
  return list;
};

export const ipAddress: Parser<string | undefined> = (raw, flag) => {
  const value = one(raw, flag);
  if (value === undefined) return undefined;
  if (!/^[0-9a-fA-F.:]+$/.test(value))
    throw new ConfigError(flag, `expected an IP address, got ${JSON.stringify(value)}`);
  return value;
};

/** Printable, no spaces: it also tags every shell the agent starts (TERMGATE_AGENT in the exec's environment). */
export const agentId: Parser<string> = (raw, flag) => {
  const id = one(raw, flag) || os.hostname();
  if (!/^[\x21-\x7e]{1,128}$/.test(id)) {
    throw new ConfigError(
      flag,
      `expected 1 to 128 printable characters without spaces, got ${JSON.stringify(id)}`,
    );
  }
  return id;
};

/** A command line, split on spaces. */
export const command: Parser<string[]> = (raw, flag) => {
  const words = (one(raw, flag) ?? '').split(' ').filter(Boolean);
  if (words.length === 0) throw new ConfigError(flag, 'empty command');
  return words;
};

export function oneOf<T extends string>(choices: readonly T[]): Parser<T> {
  return (raw, flag) => {
    const value = one(raw, flag);
    if (!choices.includes(value as T)) throw new ConfigError(flag, `expected one of ${choices.join(', ')}`);
    return value as T;
  };
}

export const path: Parser<string> = (raw, flag) => {
  const value = one(raw, flag);
  if (!value) throw new ConfigError(flag, 'empty path');
  return value;
};
