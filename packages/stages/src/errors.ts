/** A stage name that has no file in istio/stages/. The message lists the valid stages. */
export class UnknownStageError extends Error {
  override readonly name = 'UnknownStageError';
  constructor(
    readonly stage: string,
    readonly validStages: readonly string[],
  ) {
    super(`unknown stage "${stage}"; valid stages: ${validStages.join(', ')}`);
  }
}

/** A manifest (or values file) that cannot be used: which file, which field, and what is wrong. */
export class ManifestError extends Error {
  override readonly name = 'ManifestError';
  constructor(
    readonly file: string,
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${file}: ${field}: ${problem}`);
  }
}
