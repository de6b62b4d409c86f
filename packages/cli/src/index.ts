export { HELP, run } from './cli.js';
export { EXIT_FAIL, EXIT_OK, EXIT_USAGE } from './errors.js';
