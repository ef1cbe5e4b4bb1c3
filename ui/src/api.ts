/** The API as the dashboard uses it: same origin, the signed-in key in the Authorization header. */

export type JobState = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';
export const JOB_STATES: JobState[] = ['pending', 'running', 'completed', 'failed', 'cancelled'];
export const isTerminal = (state: string): boolean =>
  state === 'completed' || state === 'failed' || state === 'cancelled';

export type Scope = 'read' | 'write' | 'admin';

export interface JobError {
  code: string;
  message: string;
}

export interface Attempt {
  attempt: number;
  worker_id: string;
  started_at: string;
  finished_at: string | null;
  outcome: string;
  error: JobError | null;
}

export interface Job {
  job_id: string;
  job_type: string;
  state: JobState;
  payload: Record<string, unknown>;
  result: unknown;
  error: JobError | null;
  priority: number;
  run_at: string;
  attempts: number;
  max_attempts: number;
  timeout_ms: number;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  finished_at: string | null;
  next_attempt_at: string | null;
  cancel_requested_at: string | null;
  retry_of: string | null;
  /** Present when the job was created with a callback_url. */
  callback?: { url: string; state: string; attempts: number } | null;
}

export interface JobDetail extends Job {
  attempt_history: Attempt[];
}

export interface JobPage {
  items: Job[];
  next_cursor: string | null;
}

export interface JobType {
  job_type: string;
  description: string;
  payload_schema: object;
  paused: boolean;
}

export type StateCounts = Record<JobState, number>;

export interface Stats {
  by_state: StateCounts;
  by_type: (StateCounts & { job_type: string; paused: boolean })[];
  oldest_due_age_ms: number | null;
  finished_last_minute: { completed: number; failed: number; cancelled: number };
}

export interface FinishesInMinute {
  minute: string;
  completed: number;
  failed: number;
  cancelled: number;
}

export interface Whoami {
  scope: Scope;
  key_required: boolean;
}

export interface JobFilter {
  state?: JobState;
  job_type?: string;
}

/** An answer other than 2xx, with the problem document's words when the API sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
  ) {
    super(detail || title);
  }
}

const KEY_ITEM = 'job-service.api-key';

/**
 * The key lives in sessionStorage only: it is gone when the tab closes, other tabs and sites never see it,
 * and it never appears in a URL (so not in history, logs or Referer headers either).
 */
export const session = {
  key: (): string | null => sessionStorage.getItem(KEY_ITEM),
  signIn: (key: string): void => sessionStorage.setItem(KEY_ITEM, key),
  signOut: (): void => sessionStorage.removeItem(KEY_ITEM),
};

/** Called when the API stops accepting the key (401), e.g. because it was rotated out. */
let onUnauthorized: () => void = () => undefined;
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

async function call<T>(
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  key = session.key(),
): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new ApiError(0, 'The API does not answer', 'Check that the service is running.');
  }
  const text = await response.text();
  const parsed = text ? safeJson(text) : null;
  if (!response.ok) {
    const problem = (parsed ?? {}) as { title?: string; detail?: string };
    const error = new ApiError(response.status, problem.title ?? response.statusText, problem.detail ?? '');
    if (response.status === 401 && key !== null && key === session.key()) onUnauthorized();
    throw error;
  }
  return parsed as T;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

const query = (params: Record<string, string | number | undefined>): string => {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== '') search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
};

export const api = {
  /** Checks `key` (or no key at all) without storing it. */
  whoami: (key: string | null) => call<Whoami>('GET', '/auth/whoami', undefined, key),
  stats: () => call<Stats>('GET', '/stats'),
  finishesPerMinute: (minutes: number) =>
    call<{ minutes: FinishesInMinute[] }>('GET', `/stats/finished-per-minute${query({ minutes })}`),
  jobs: (filter: JobFilter, cursor: string | undefined, limit: number) =>
    call<JobPage>('GET', `/jobs${query({ ...filter, cursor, limit })}`),
  job: (jobId: string) => call<JobDetail>('GET', `/jobs/${encodeURIComponent(jobId)}`),
  jobTypes: () => call<JobType[]>('GET', '/job-types'),
  cancel: (jobId: string, reason?: string) =>
    call<JobDetail>('POST', `/jobs/${encodeURIComponent(jobId)}/cancel`, reason ? { reason } : {}),
  cancelMatching: (filter: { job_type?: string; state?: 'pending' | 'running'; reason?: string }) =>
    call<{ matched: number }>('POST', '/jobs/cancel', filter),
  retry: (jobId: string) => call<Job>('POST', `/jobs/${encodeURIComponent(jobId)}/retry`),
  pause: (jobType: string) => call<JobType>('POST', `/job-types/${encodeURIComponent(jobType)}/pause`),
  resume: (jobType: string) => call<JobType>('POST', `/job-types/${encodeURIComponent(jobType)}/resume`),
};
