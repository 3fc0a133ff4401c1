/** What the flag table (flags.ts) says about one flag, and what is derived from it. */
import type { Parser } from './parsers.js';

export interface FlagSpec<T> {
  /** The long flag with its argument, as commander takes it: `--workers <n>`; a switch has none. */
  flag: string;
  env: string;
  parse: Parser<T>;
  /** Applied when neither the command line nor the environment gives a value; a function is asked at start. */
  default?: string | (() => string);
  /** The default as the README and --help say it, when it is not a literal value. */
  defaultText?: string;
  /** --help. */
  help: string;
  /** The README's "What it sets" column (Markdown). */
  readme: string;
  /** The README's flag column, when the flag is not how people should pass it. */
  readmeFlag?: string;
}

export function spec<T>(s: FlagSpec<T>): FlagSpec<T> {
  return s;
}

/** `--workers <n>` → `--workers`. */
export function longFlag(spec: FlagSpec<unknown>): string {
  return spec.flag.split(' ')[0]!;
}

/** The key of a flag in a config file: its long form without the dashes (`workers`, `cloud-url`). */
export function configKey(spec: FlagSpec<unknown>): string {
  return longFlag(spec).slice(2);
}

/** The default applied when no value was given, if there is one. */
export function defaultOf(spec: FlagSpec<unknown>): string | undefined {
  return typeof spec.default === 'function' ? spec.default() : spec.default;
}
