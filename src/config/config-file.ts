/**
 * `termgate agent --config FILE`: the agent's flags as a TOML file, for operators who keep a host's
 * settings in /etc (deploy/agent.toml.example). The keys come from the flag table (flags.ts `configKey`:
 * the long flag without its dashes, `cloud-url = "wss://…"`, `workers = 4`), so a new flag is a new key
 * with nothing to add here. A value from the file fills only what neither the command line nor
 * the environment set: flags win, then environment variables, then the file, then the defaults.
 *
 * TOML because it is what operators meet in /etc (systemd-style key = value, comments, no indentation
 * rules) and a small, kept parser (smol-toml) reports the line of a syntax error. Everything wrong in the
 * file stops the agent with the file, the line and the key: a syntax error, a key that is no flag, a
 * value of the wrong type here, and (through `locate`) a value the flag's own check refuses.
 */
import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { parse, TomlError } from 'smol-toml';
import {
  AGENT_FLAGS,
  configKey,
  longFlag,
  type AgentFlagName,
  type AgentFlags,
  type FlagSpec,
} from './flags.js';

/** Where a setting came from in the file, to point at it when its value is refused later. */
export interface ConfigFileEntry {
  file: string;
  key: string;
  line: number;
}

export class ConfigFileError extends Error {
  constructor(file: string, line: number | undefined, key: string | undefined, problem: string) {
    const where = line === undefined ? file : `${file} line ${line}`;
    super(`${where}${key === undefined ? '' : `, key "${key}"`}: ${problem}`);
    this.name = 'ConfigFileError';
  }
}

/** The flag naming the file itself is not a key of it. */
const NOT_IN_FILE = new Set<AgentFlagName>(['config']);

interface FileSetting {
  name: AgentFlagName;
  spec: FlagSpec<unknown>;
}

/** Every key a config file may hold, with its flag. */
export function fileSettings(): Map<string, FileSetting> {
  const settings = new Map<string, FileSetting>();
  for (const [name, spec] of Object.entries(AGENT_FLAGS) as Array<[AgentFlagName, FlagSpec<unknown>]>) {
    if (!NOT_IN_FILE.has(name)) settings.set(configKey(spec), { name, spec });
  }
  return settings;
}

/** The settings read from a config file, each by its flag (`--workers`), and what they warn about. */
export class ConfigFile {
  readonly #entries = new Map<string, ConfigFileEntry>();
  /** Worth a warning at start-up (a token in a file other users can read). */
  readonly warnings: string[] = [];

  private constructor(readonly file: string) {}

  /** Applies the file `--config` names (through the flag's own parser), if one is named. */
  static applyGiven(cmd: Command): ConfigFile | undefined {
    const spec = AGENT_FLAGS.config;
    const file = spec.parse(cmd.opts<AgentFlags>().config, longFlag(spec));
    return file === undefined ? undefined : ConfigFile.apply(cmd, file);
  }

  /**
   * Reads `file` and sets on `cmd` every option it names that the command line and the environment left
   * unset (source `config`). Throws a ConfigFileError naming the line and the key at fault.
   */
  static apply(cmd: Command, file: string): ConfigFile {
    const config = new ConfigFile(file);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigFileError(file, undefined, undefined, `cannot read it: ${(err as Error).message}`);
    }
    let table: Record<string, unknown>;
    try {
      table = parse(text);
    } catch (err) {
      if (!(err instanceof TomlError)) throw err;
      throw new ConfigFileError(file, err.line, undefined, err.message.split('\n')[0]!);
    }
    const settings = fileSettings();
    const lines = keyLines(text);
    for (const [key, value] of Object.entries(table)) {
      const line = lines.get(key);
      const setting = settings.get(key);
      if (!setting) {
        const hint = nearest(key, settings);
        throw new ConfigFileError(file, line, key, `not a setting of termgate agent (${hint})`);
      }
      const raw = rawValue(setting.spec, value);
      if (typeof raw === 'object' && 'problem' in raw)
        throw new ConfigFileError(file, line, key, raw.problem);
      const { name } = setting;
      config.#entries.set(longFlag(setting.spec), { file, key, line: line ?? 0 });
      const source = cmd.getOptionValueSource(name);
      if (source === undefined || source === 'default') cmd.setOptionValueWithSource(name, raw, 'config');
    }
    const secrets = (['token', 'turn-secret'] as const).filter((key) => table[key] !== undefined);
    if (secrets.length > 0 && (statSync(file).mode & 0o077) !== 0) {
      const what = secrets.map((key) => (key === 'token' ? 'the token' : 'the TURN secret')).join(' and ');
      config.warnings.push(`${file} holds ${what} and can be read by other users; chmod 600 it`);
    }
    return config;
  }

  /**
   * The file's entry behind a flag (`--workers`) whose value came from the file, for an error about
   * that value to point at its line; undefined when the value came from elsewhere.
   */
  locate(cmd: Command, flag: string): ConfigFileEntry | undefined {
    const setting = [...fileSettings().values()].find((s) => longFlag(s.spec) === flag);
    if (!setting || cmd.getOptionValueSource(setting.name) !== 'config') return undefined;
    return this.#entries.get(flag);
  }
}

/**
 * What commander would have collected for the flag: a string for a flag with a value (TOML numbers
 * written as they read), a list for a repeatable one, true/false for a switch.
 */
function rawValue(
  spec: FlagSpec<unknown>,
  value: unknown,
): string | string[] | boolean | { problem: string } {
  const scalar = (v: unknown) =>
    typeof v === 'string' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined;
  if (!spec.flag.includes('<')) {
    return typeof value === 'boolean' ? value : { problem: `expected true or false, got ${describe(value)}` };
  }
  if (spec.flag.includes('...>')) {
    const list = Array.isArray(value) ? value.map(scalar) : [scalar(value)];
    return list.every((v): v is string => v !== undefined)
      ? list
      : { problem: `expected a string or a list of strings, got ${describe(value)}` };
  }
  return scalar(value) ?? { problem: `expected a string or a number, got ${describe(value)}` };
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Date) return 'a date';
  if (typeof value === 'object' && value !== null) return 'a table';
  return `${typeof value} ${JSON.stringify(value)}`;
}

/**
 * The line of each top-level key: TOML keeps no positions, so the text is read for `key =` lines before
 * the first table header (a table's header line stands for the table).
 */
function keyLines(text: string): Map<string, number> {
  const lines = new Map<string, number>();
  let inTable = false;
  text.split('\n').forEach((content, i) => {
    const header = /^\s*\[+\s*(?:"([^"]*)"|'([^']*)'|([\w-]+))/.exec(content);
    const key = /^\s*(?:"([^"]*)"|'([^']*)'|([\w-]+))\s*[=.]/.exec(content);
    const found = header ?? (inTable ? null : key);
    if (header) inTable = true;
    const name = found?.[1] ?? found?.[2] ?? found?.[3];
    if (name !== undefined && !lines.has(name)) lines.set(name, i + 1);
  });
  return lines;
}

/** A hint for a misspelt key: the closest one, or where the list is. */
function nearest(key: string, settings: Map<string, FileSetting>): string {
  let best: [string, number] | undefined;
  for (const candidate of settings.keys()) {
    const d = distance(key, candidate);
    if (!best || d < best[1]) best = [candidate, d];
  }
  return best && best[1] <= 3
    ? `did you mean "${best[0]}"?`
    : 'the keys are the flags of termgate agent --help';
}

/** Levenshtein distance, for the hint above. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length]!;
}
