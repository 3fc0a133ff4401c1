/** The flag table (flags.ts) as commander options and as the README's table. */
import { Option, type Command } from 'commander';
import { AGENT_FLAGS, defaultOf, type FlagSpec } from './flags.js';

const specs = Object.values(AGENT_FLAGS) as Array<FlagSpec<unknown>>;

/** Declares every agent flag on a commander command, each with its environment variable and default. */
export function addAgentOptions(cmd: Command): Command {
  for (const spec of specs) {
    const option = new Option(spec.flag, spec.help).env(spec.env);
    const value = defaultOf(spec);
    if (value !== undefined) option.default(value, spec.defaultText);
    cmd.addOption(option);
  }
  return cmd;
}

/** One row of the README's flag table: flag, environment, default, what it sets (Markdown cells). */
export function readmeRows(): string[][] {
  return specs.map((spec) => {
    const switchFlag = !spec.flag.includes('<');
    const literal = typeof spec.default === 'string' ? spec.default : undefined;
    const shown =
      spec.defaultText ??
      (literal === undefined
        ? switchFlag
          ? 'off'
          : 'none'
        : /^\d+$/.test(literal)
          ? literal
          : `\`${literal}\``);
    const cell = (s: string) => s.replaceAll('|', '\\|');
    return [`\`${cell(spec.readmeFlag ?? spec.flag)}\``, `\`${spec.env}\``, cell(shown), cell(spec.readme)];
  });
}

/** The README's flag table, padded the way prettier pads it. */
export function readmeTable(): string {
  const rows = [['Flag', 'Environment', 'Default', 'What it sets'], ...readmeRows()];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => [...r[i]!].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => c + ' '.repeat(widths[i]! - [...c].length)).join(' | ')} |`;
  return [line(rows[0]!), line(widths.map((w) => '-'.repeat(w))), ...rows.slice(1).map(line)].join('\n');
}
