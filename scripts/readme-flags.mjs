#!/usr/bin/env node
// Writes the README's agent flag table from the flag table (src/config/flags.ts), after `npm run build`.
// test/config.test.ts fails while the README's table differs from what this writes.
/* global URL, console */
import { readFileSync, writeFileSync } from 'node:fs';
import { readmeTable } from '../dist/src/config/options.js';

const path = new URL('../README.md', import.meta.url);
const lines = readFileSync(path, 'utf8').split('\n');
const start = lines.findIndex((line) => line.startsWith('| Flag '));
if (start < 0) throw new Error("README.md has no '| Flag ' table to replace");
let end = start;
while (end < lines.length && lines[end].startsWith('|')) end += 1;
lines.splice(start, end - start, ...readmeTable().split('\n'));
writeFileSync(path, lines.join('\n'));
console.log(`README.md: flag table written (${end - start - 2} rows before)`);
