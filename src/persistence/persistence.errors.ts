/** The database could not be reached or dropped the connection; the caller may retry later. */
export class DatabaseUnavailableError extends Error {
  constructor(cause: unknown) {
    super('The database is unavailable', { cause });
    this.name = 'DatabaseUnavailableError';
  }
}

/** The database did not answer at start-up within the time allowed for it. */
export class DatabaseUnreachableError extends Error {
  constructor(
    cause: unknown,
    readonly waitedMs: number,
  ) {
    super(`The database did not answer within ${waitedMs} ms (${describeError(cause)})`, { cause });
    this.name = 'DatabaseUnreachableError';
  }
}

/** A one-line description of a driver error; some (e.g. a refused dual-stack connect) have no message. */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const inner = error instanceof AggregateError ? error.errors.find((e) => e instanceof Error) : undefined;
  return error.message || (inner instanceof Error ? inner.message : '') || String(code ?? error.name);
}

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '08000', // connection_exception
  '08003', // connection_does_not_exist
  '08006', // connection_failure
  '08001', // sqlclient_unable_to_establish_sqlconnection
  '08004', // sqlserver_rejected_establishment_of_sqlconnection
  '53300', // too_many_connections
]);

const CONNECTION_ERROR_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'Connection terminated unexpectedly',
  // pg's query_timeout: the connection did not answer at all within DB_STATEMENT_TIMEOUT_MS + 1 s.
  'Query read timeout',
];

/** True when an error from the driver means "no usable connection", not "the statement was wrong". */
export function isConnectionError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) return true;
    if (CONNECTION_ERROR_MESSAGES.some((text) => current instanceof Error && current.message.includes(text)))
      return true;
    current = (current as { driverError?: unknown; cause?: unknown }).driverError ?? current.cause;
  }
  return false;
}
