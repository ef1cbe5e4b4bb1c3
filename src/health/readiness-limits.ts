/**
 * How long readiness waits for the database before calling it down. Probes must wait longer than this
 * (deploy/k8s sets timeoutSeconds above it, checked by test/unit/deployment.spec.ts): a probe that times
 * out first reports a failure where the check itself would have answered.
 */
export const DATABASE_CHECK_TIMEOUT_MS = 2_000;
