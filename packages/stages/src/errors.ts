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

/**
 * Why a manifest cannot be used: `invalid` (Istio's validation refuses it, so `kubectl apply` would fail too),
 * `unsupported` (Istio accepts it, but the local gateway does not emulate what it does, so the two paths would
 * differ), `file` (unreadable, not YAML, not the expected kind).
 */
export type ManifestErrorKind = 'invalid' | 'unsupported' | 'file';

/** A manifest (or values file) that cannot be used: which file, which field, and what is wrong. */
export class ManifestError extends Error {
  override readonly name = 'ManifestError';
  constructor(
    readonly file: string,
    readonly field: string,
    readonly problem: string,
    readonly kind: ManifestErrorKind = 'file',
  ) {
    super(`${file}: ${field}: ${problem}`);
  }
}
