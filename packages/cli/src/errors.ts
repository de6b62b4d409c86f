/** Exit codes of the `rollout` command (docs/ARCHITECTURE.md). */
export const EXIT_OK = 0;
/** Verification failed, lint findings, a process could not start. */
export const EXIT_FAIL = 1;
/** Bad input: unknown command, option or stage. Nothing was changed. */
export const EXIT_USAGE = 2;

/** Bad input: printed without a stack, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A failure with a clear message (no stack), exit 1 unless said otherwise. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = EXIT_FAIL,
  ) {
    super(message);
  }
}

/** Exit code after SIGINT (Ctrl-C) and SIGTERM: 128 + the signal number. */
export const EXIT_SIGINT = 130;
export const EXIT_SIGTERM = 143;

/** A run stopped by SIGINT / SIGTERM: "interrupted", exit 130 / 143, no verdict and no result file. */
export class InterruptedError extends CliError {
  override name = 'InterruptedError';
  constructor(signal: unknown, what: string) {
    super(`interrupted (${String(signal)}): ${what}`, signal === 'SIGTERM' ? EXIT_SIGTERM : EXIT_SIGINT);
  }
}
