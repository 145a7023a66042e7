#!/usr/bin/env node
'use strict';
// The `jouleflow` command. Committed plain JS so npm can link it at install time, before the
// TypeScript is built; the program itself is dist/main.js.
const path = require('path');
const fs = require('fs');

const main = path.join(__dirname, '..', 'dist', 'main.js');
if (!fs.existsSync(main)) {
  process.stderr.write(`jouleflow: ${main} is missing: run "npm run build" first (in a source checkout)\n`);
  process.exit(1);
}
const { buildProgram, fatal } = require(main);
buildProgram().parseAsync(process.argv).catch(fatal);
