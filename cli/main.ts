#!/usr/bin/env node
import { run } from './program.js';

// `lsc | head` closes stdout early; that is not an error worth a stack trace
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
});
process.exitCode = await run(process.argv.slice(2));
