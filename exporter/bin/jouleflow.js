#!/usr/bin/env -S node --max-semi-space-size=2
'use strict';
// The `jouleflow` command. Committed plain JS so npm can link it at install time, before the
// TypeScript is built; the program itself is dist/main.js. The image's entrypoint is this file too.
//
// --max-semi-space-size=2 (MiB; V8's default grows to 16): the exporter allocates little per 1 s
// tick, but a burst (1 000 job registrations, a scrape of 10 000 series) makes V8 grow the young
// generation to 2 × 16 MiB and keep it. Capped at 2 MiB, RSS with 1 000 live jobs is 90-101 MiB
// instead of 118-137 MiB, for 0.3-0.8 % of a core more GC at 1 s ticks (README "Performance").
// V8 reads the flag only at start, hence the shebang (`env -S`: GNU coreutils 8.30+, every system
// Node 20 supports; `node dist/main.js` runs with V8's defaults, and NODE_OPTIONS still applies).
const path = require('path');
const fs = require('fs');

const main = path.join(__dirname, '..', 'dist', 'main.js');
if (!fs.existsSync(main)) {
  process.stderr.write(`jouleflow: ${main} is missing: run "npm run build" first (in a source checkout)\n`);
  process.exit(1);
}
const { buildProgram, fatal } = require(main);
buildProgram().parseAsync(process.argv).catch(fatal);
