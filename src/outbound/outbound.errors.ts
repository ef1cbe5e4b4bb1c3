/**
 * The request was refused before anything was sent: the URL or a redirect is not allowed, or the host
 * resolved to an address nobody allowed. A rule of this deployment, not a passing fault: retrying the
 * same request cannot succeed.
 */
export class TargetRefusedError extends Error {
  readonly code = 'target_refused';
  constructor(message: string) {
    super(message);
    this.name = 'TargetRefusedError';
  }
}

/** The refusal behind `error`, which undici may have wrapped, or undefined when it is another failure. */
export function targetRefusalOf(error: unknown): TargetRefusedError | undefined {
  for (let cause = error, depth = 0; cause instanceof Error && depth < 5; depth++) {
    if (cause instanceof TargetRefusedError) return cause;
    cause = cause.cause;
  }
  return undefined;
}
