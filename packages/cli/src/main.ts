#!/usr/bin/env node
import { applySettings, findRepoRoot } from '@rollouts/stages';
import { run } from './cli.js';

// defaults.env's knobs (TARGET, API, GATEWAY_PORT, ...) for every command and every process it starts, as
// scripts/lib.sh sets them for the scripts. Outside the repository, or with a broken file, the command that needs
// a knob reports it (context.ts knob).
try {
  applySettings(findRepoRoot(process.env.ROLLOUT_ROOT || process.cwd()));
} catch {
  // reported where a knob is read
}
const code = await run(process.argv.slice(2));
// Exit once the output is flushed: keep-alive sockets and timers of finished commands must not hold the process.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
