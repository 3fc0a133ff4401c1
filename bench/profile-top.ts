#!/usr/bin/env node
/**
 * `node dist/bench/profile-top.js [--top N] <file.cpuprofile>...`: the functions with the most self time
 * in V8 CPU profiles (`--cpu-prof`, one file per thread), as markdown tables. Self time is summed per
 * function (name, file, line) from the samples' time deltas, so a function reached by many paths counts
 * once. Native threads (libdatachannel's, usrsctp's) are not in these profiles: the agent's CPU beyond
 * what they show is spent there.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface Profile {
  nodes: Array<{ id: number; callFrame: CallFrame }>;
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  where: string;
  ms: number;
  share: number;
}

function where(frame: CallFrame): string {
  if (!frame.url) return '';
  const file = frame.url.replace(/^file:\/\//, '');
  const short = file.includes('node_modules/')
    ? file.slice(file.lastIndexOf('node_modules/') + 'node_modules/'.length)
    : file.replace(/^.*\/dist\//, '');
  return `${short}:${frame.lineNumber + 1}`;
}

/** Self time per function, most first; `(idle)` and `(program)` included, as V8 reports them. */
export function selfTimes(profile: Profile): SelfTime[] {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const totals = new Map<string, SelfTime>();
  let all = 0;
  profile.samples.forEach((id, i) => {
    const frame = byNode.get(id)!;
    const us = profile.timeDeltas[i] ?? 0;
    all += us;
    const key = `${frame.functionName}|${frame.url}|${frame.lineNumber}`;
    const entry = totals.get(key) ?? {
      name: frame.functionName || '(anonymous)',
      where: where(frame),
      ms: 0,
      share: 0,
    };
    entry.ms += us / 1000;
    totals.set(key, entry);
  });
  const list = [...totals.values()].sort((a, b) => b.ms - a.ms);
  for (const e of list) e.share = all > 0 ? (e.ms * 1000) / all : 0;
  return list;
}

function table(file: string, top: number): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const times = selfTimes(profile);
  const busy = times.filter((t) => t.name !== '(idle)');
  const busyMs = busy.reduce((s, t) => s + t.ms, 0);
  const lines = [
    `#### ${path.basename(file)}: ${(busyMs / 1000).toFixed(2)} s not idle of ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s`,
    '',
    '| self ms | share of busy | function | where |',
    '|---:|---:|---|---|',
    ...busy
      .slice(0, top)
      .map(
        (t) =>
          `| ${t.ms.toFixed(0)} | ${((100 * t.ms) / busyMs).toFixed(1)} % | \`${t.name}\` | ${t.where} |`,
      ),
  ];
  return lines.join('\n');
}

function main(argv: string[]): void {
  let top = 10;
  const files: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--top') top = Number(argv[++i]);
    else files.push(argv[i]!);
  }
  if (files.length === 0 || !Number.isInteger(top) || top < 1) {
    process.stderr.write('usage: profile-top [--top N] <file.cpuprofile>...\n');
    process.exit(2);
  }
  process.stdout.write(`${files.map((f) => table(f, top)).join('\n\n')}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) main(process.argv.slice(2));
