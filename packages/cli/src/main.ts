#!/usr/bin/env node
import { run } from './cli.js';

const code = await run(process.argv.slice(2));
// Exit once the output is flushed: keep-alive sockets and timers of finished commands must not hold the process.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
