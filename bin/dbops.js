#!/usr/bin/env node
'use strict';
// Runs the built CLI (npm run build). In a checkout without a build, use `npm run dbops -- ...`.
const { main } = require('../dist/src/cli/main.js');
main().then((code) => {
  process.exitCode = code;
});
