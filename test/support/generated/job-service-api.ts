// Generated from the OpenAPI document at /docs-json by openapi-typescript: do not edit.
// Regenerate with `npm run api:types`; test/e2e/api-client.spec.ts fails while it is out of date.
export interface paths {
  '/metrics': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Prometheus metrics of this process and queue depth by state */
    get: operations['MetricsController_scrape'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/health/live': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Liveness: the process is up and its event loop answers */
    get: operations['HealthController_live'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/health/ready': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Readiness: not shutting down, the schema has every migration of this code and, in a worker, the database answers, the claim loop is turning and rescue sweeps are completing. An api stays ready while the database is down (reported under error.database) and answers requests with 503. */
    get: operations['HealthController_ready'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/jobs': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /**
     * List jobs, newest first
     * @description Keyset paging: pass next_cursor as cursor.
     */
    get: operations['JobsController_list'];
    put?: never;
    /**
     * Create a job
     * @description Stores the job and returns it; a worker runs it once it is due. Without an Idempotency-Key two identical requests create two jobs. With one, repeating the request returns the first job (header Idempotent-Replayed: true) and reusing the key with another body is refused with 409.
     */
    post: operations['JobsController_create'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/jobs/batch': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /**
     * Create up to 1,000 jobs at once
     * @description All-or-nothing in one transaction. A 400 lists the index and field of every invalid job.
     */
    post: operations['JobsController_createBatch'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/jobs/{job_id}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /**
     * One job with its attempt history
     * @description With wait_ms, a long poll: the answer comes as soon as the job is completed, failed or cancelled, or after wait_ms with the job as it is then.
     */
    get: operations['JobsController_get'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/jobs/cancel': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /**
     * Cancel every unfinished job matching a filter
     * @description At least one of job_type, state and created_before. Jobs with no live attempt are cancelled at once; running attempts are stopped by their workers. Done in rounds of 1,000 jobs, each its own transaction.
     */
    post: operations['JobsController_cancelMatching'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/jobs/{job_id}/cancel': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /**
     * Cancel a job
     * @description A job with no live attempt (pending, or waiting for a retry) is cancelled at once. A running attempt is stopped through its AbortSignal by the worker holding it, within about a second, and the job ends cancelled; if the handler finishes first, the job keeps that outcome (cancel_requested_at shows the request). Repeating the request for a job still being stopped answers it as it is.
     */
    post: operations['JobsController_cancel'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/jobs/{job_id}/retry': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /**
     * Run a failed or cancelled job again, as a new job
     * @description Creates a job with the same job_type, payload, priority, max_attempts and timeout_ms, due now, whose retry_of names the old one. The old job does not change.
     */
    post: operations['JobsController_retry'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/job-types': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The registered job types, the payload each expects (JSON Schema), and whether paused */
    get: operations['JobsController_jobTypes'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/job-types/{job_type}/pause': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /**
     * Stop workers claiming jobs of this type
     * @description Takes effect at the next claim of every worker (the claim statement reads the pause). Running attempts finish; jobs wait, pending, until the type is resumed. Pausing a paused type changes nothing.
     */
    post: operations['JobsController_pause'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/job-types/{job_type}/resume': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /**
     * Let workers claim jobs of this type again
     * @description Wakes every worker.
     */
    post: operations['JobsController_resume'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/stats': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /**
     * Queue health: jobs per state and type, the oldest due job, jobs finished in the last minute
     * @description Read from counters the database keeps in the same transaction as every change to a job, so the figures are exact and cost the same however many jobs the table holds. Takes no query parameters.
     */
    get: operations['StatsController_get'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/stats/finished-per-minute': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /**
     * Jobs completed, failed and cancelled per minute, over up to the last hour
     * @description Read from the per-second finish counters the database keeps (the same ones as finished_last_minute in GET /stats), never from the jobs table: the cost depends on the minutes asked for, not on how many jobs there are. The operator dashboard draws its throughput chart from it.
     */
    get: operations['StatsController_finishesPerMinute'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/auth/whoami': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /**
     * The presented key's scope
     * @description 200 with the scope of the key in the Authorization header, 401 for a missing or unknown key. Without API_KEYS every request is let in: then scope is admin and key_required false. Never echoes the key.
     */
    get: operations['AuthController_whoami'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
}
export type webhooks = Record<string, never>;
export interface components {
  schemas: {
    ProblemFieldError: {
      /**
       * @description Index of the job in a batch request
       * @example 3
       */
      index?: number;
      /** @example payload.ms */
      field: string;
      /** @example ms must be an integer number */
      message: string;
    };
    ProblemResponse: {
      /**
       * @description Always about:blank: `code` tells problems apart
       * @example about:blank
       */
      type: string;
      /**
       * @description The HTTP reason phrase of `status`
       * @example Not Found
       */
      title: string;
      /** @example 404 */
      status: number;
      /** @example No job has id 019ac9a2-5b3e-7c41-9d6a-2f0e4b8c1d23 */
      detail: string;
      /**
       * @description The path of the request, without its query
       * @example /jobs/019ac9a2-5b3e-7c41-9d6a-2f0e4b8c1d23
       */
      instance: string;
      /**
       * @description Machine-readable error code
       * @example job_not_found
       */
      code: string;
      /** @description With `validation_failed`: every field that is wrong */
      errors?: components['schemas']['ProblemFieldError'][];
    };
    LivenessResponse: {
      /**
       * @example ok
       * @enum {string}
       */
      status: 'ok';
    };
    NotReadyProblemResponse: {
      /**
       * @description Always about:blank: `code` tells problems apart
       * @example about:blank
       */
      type: string;
      /**
       * @description The HTTP reason phrase of `status`
       * @example Not Found
       */
      title: string;
      /** @example 404 */
      status: number;
      /** @example No job has id 019ac9a2-5b3e-7c41-9d6a-2f0e4b8c1d23 */
      detail: string;
      /**
       * @description The path of the request, without its query
       * @example /jobs/019ac9a2-5b3e-7c41-9d6a-2f0e4b8c1d23
       */
      instance: string;
      /**
       * @description Machine-readable error code
       * @example job_not_found
       */
      code: string;
      /** @description With `validation_failed`: every field that is wrong */
      errors?: components['schemas']['ProblemFieldError'][];
      /**
       * @description Each check by name: `status` up or down, and what it reported
       * @example {
       *       "database": {
       *         "status": "down",
       *         "reason": "no answer within 2 s"
       *       }
       *     }
       */
      checks: {
        [key: string]: {
          /** @enum {string} */
          status: 'up' | 'down';
        } & {
          [key: string]: unknown;
        };
      };
    };
    ReadinessResponse: {
      /**
       * @example ok
       * @enum {string}
       */
      status: 'ok';
      /**
       * @description The checks that are up: database, and in a worker the claim loop and rescue
       * @example {
       *       "shutdown": {
       *         "status": "up"
       *       },
       *       "database": {
       *         "status": "up"
       *       },
       *       "schema": {
       *         "status": "up",
       *         "migrations": 6
       *       },
       *       "worker": {
       *         "status": "up",
       *         "live_attempts": 3
       *       },
       *       "rescue": {
       *         "status": "up",
       *         "last_completed_ms_ago": 1840
       *       }
       *     }
       */
      info: {
        [key: string]: {
          /** @enum {string} */
          status: 'up' | 'down';
        } & {
          [key: string]: unknown;
        };
      };
      /**
       * @description The checks that are down: none when ready
       * @example {}
       */
      error: {
        [key: string]: {
          /** @enum {string} */
          status: 'up' | 'down';
        } & {
          [key: string]: unknown;
        };
      };
      /**
       * @description Every check
       * @example {
       *       "shutdown": {
       *         "status": "up"
       *       },
       *       "database": {
       *         "status": "up"
       *       },
       *       "schema": {
       *         "status": "up",
       *         "migrations": 6
       *       },
       *       "worker": {
       *         "status": "up",
       *         "live_attempts": 3
       *       },
       *       "rescue": {
       *         "status": "up",
       *         "last_completed_ms_ago": 1840
       *       }
       *     }
       */
      details: {
        [key: string]: {
          /** @enum {string} */
          status: 'up' | 'down';
        } & {
          [key: string]: unknown;
        };
      };
    };
    JobResponse: {
      /**
       * Format: uuid
       * @example 019ac9a2-5b3e-7c41-9d6a-2f0e4b8c1d23
       */
      job_id: string;
      /** @example echo */
      job_type: string;
      /**
       * @example completed
       * @enum {string}
       */
      state: 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';
      /**
       * @description The job's input as it was sent: any JSON object
       * @example {
       *       "message": "hello"
       *     }
       */
      payload: {
        [key: string]: unknown;
      };
      /**
       * @description What the handler returned, any JSON value; null unless completed (and when the handler returned nothing)
       * @example {
       *       "message": "hello"
       *     }
       */
      result: any;
      /**
       * @description Why the job failed or was cancelled (code `cancelled`); null otherwise
       * @example null
       */
      error?:
        | ({
            /** @description Machine-readable, e.g. timeout, cancelled, lease_expired */
            code: string;
            message: string;
          } & {
            [key: string]: unknown;
          })
        | null;
      /** @example 0 */
      priority: number;
      /**
       * Format: date-time
       * @example 2026-11-28T12:20:44.092Z
       */
      run_at: string;
      /**
       * @description Attempts started so far
       * @example 1
       */
      attempts: number;
      /** @example 3 */
      max_attempts: number;
      /** @example 300000 */
      timeout_ms: number;
      /**
       * Format: date-time
       * @example 2026-11-28T12:20:44.092Z
       */
      created_at: string;
      /**
       * Format: date-time
       * @example 2026-11-28T12:20:44.104Z
       */
      updated_at: string;
      /**
       * Format: date-time
       * @description The first claim; null while pending, and for a job cancelled before any claim
       * @example 2026-11-28T12:20:44.098Z
       */
      started_at: string | null;
      /**
       * Format: date-time
       * @description When the job became completed, failed or cancelled; null before
       * @example 2026-11-28T12:20:44.104Z
       */
      finished_at: string | null;
      /**
       * Format: date-time
       * @description While a failed attempt waits for its retry: when the next attempt may start; null otherwise
       * @example null
       */
      next_attempt_at: string | null;
      /**
       * Format: date-time
       * @description When a cancel was requested; a running job stays running until its worker stops it
       * @example null
       */
      cancel_requested_at: string | null;
      /**
       * Format: uuid
       * @description The failed or cancelled job this one retries (POST /jobs/{job_id}/retry)
       * @example null
       */
      retry_of: string | null;
      /**
       * @description The completion callback (callback_url); null when the job has none
       * @example null
       */
      callback?: {
        /** @example https://hooks.example.com/jobs/finished */
        url: string;
        /**
         * @description waiting: the job has not finished; pending: to be delivered (or being retried); delivered: a 2xx answer came; failed: given up after CALLBACK_MAX_ATTEMPTS attempts
         * @enum {string}
         */
        state: 'waiting' | 'pending' | 'delivered' | 'failed';
        /** @description Delivery attempts started so far */
        attempts: number;
      } | null;
    };
    JobIdResponse: {
      /**
       * Format: uuid
       * @example 019ac9a2-5b3e-7c41-9d6a-2f0e4b8c1d23
       */
      job_id: string;
    };
    JobBatchResponse: {
      /** @description The created jobs, in request order */
      items: components['schemas']['JobResponse'][];
    };
    JobIdBatchResponse: {
      /** @description The created jobs' ids, in request order */
      items: components['schemas']['JobIdResponse'][];
    };
    CreateJobDto: {
      /**
       * @description A registered job type (see GET /job-types)
       * @example echo
       */
      job_type: string;
      /**
       * @description The job's input, validated against the job type's payload schema. Default {}.
       * @example {
       *       "message": "hello"
       *     }
       */
      payload?: {
        [key: string]: unknown;
      };
      /**
       * @description Higher runs first
       * @default 0
       * @example 0
       */
      priority?: number;
      /**
       * Format: date-time
       * @description Not claimable before this time (ISO 8601 with an offset, e.g. 2030-01-01T00:00:00Z). Default: now.
       */
      run_at?: string;
      /**
       * @description How many attempts may fail before the job does. Default: DEFAULT_MAX_ATTEMPTS.
       * @example 3
       */
      max_attempts?: number;
      /**
       * @description The longest one attempt may run, in ms. Default: DEFAULT_TIMEOUT_MS.
       * @example 60000
       */
      timeout_ms?: number;
      /**
       * Format: uri
       * @description Absolute http(s) URL allowed by HTTP_TARGET_ALLOW. When the job is completed, failed or cancelled, the job (as GET /jobs/{job_id} shows it) is POSTed there, signed like HTTP targets, at least once.
       * @example https://hooks.example.com/jobs/finished
       */
      callback_url?: string;
    };
    CreateJobsBatchDto: {
      /**
       * @description 1 to 1000 jobs, created all-or-nothing in one transaction
       * @example [
       *       {
       *         "job_type": "echo",
       *         "payload": {
       *           "n": 1
       *         }
       *       },
       *       {
       *         "job_type": "sleep",
       *         "payload": {
       *           "ms": 100
       *         },
       *         "priority": 5
       *       }
       *     ]
       */
      jobs: components['schemas']['CreateJobDto'][];
    };
    JobListResponse: {
      items: components['schemas']['JobResponse'][];
      /**
       * @description Pass as `cursor` for the next page; null on the last page (always present)
       * @example null
       */
      next_cursor: string | null;
    };
    AttemptResponse: {
      /** @example 1 */
      attempt: number;
      /** @example worker-7c9f-1234-a1b2c3 */
      worker_id: string;
      /**
       * Format: date-time
       * @example 2026-11-28T12:20:44.098Z
       */
      started_at: string;
      /**
       * Format: date-time
       * @description null while the attempt runs
       * @example 2026-11-28T12:20:44.104Z
       */
      finished_at: string | null;
      /**
       * @example succeeded
       * @enum {string}
       */
      outcome: 'running' | 'succeeded' | 'failed' | 'timed_out' | 'lost' | 'interrupted' | 'cancelled';
      /**
       * @description Why the attempt did not succeed; null while running and once succeeded
       * @example null
       */
      error?:
        | ({
            /** @description Machine-readable, e.g. timeout, cancelled, lease_expired */
            code: string;
            message: string;
          } & {
            [key: string]: unknown;
          })
        | null;
    };
    JobDetailResponse: {
      /**
       * Format: uuid
       * @example 019ac9a2-5b3e-7c41-9d6a-2f0e4b8c1d23
       */
      job_id: string;
      /** @example echo */
      job_type: string;
      /**
       * @example completed
       * @enum {string}
       */
      state: 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';
      /**
       * @description The job's input as it was sent: any JSON object
       * @example {
       *       "message": "hello"
       *     }
       */
      payload: {
        [key: string]: unknown;
      };
      /**
       * @description What the handler returned, any JSON value; null unless completed (and when the handler returned nothing)
       * @example {
       *       "message": "hello"
       *     }
       */
      result: any;
      /**
       * @description Why the job failed or was cancelled (code `cancelled`); null otherwise
       * @example null
       */
      error?:
        | ({
            /** @description Machine-readable, e.g. timeout, cancelled, lease_expired */
            code: string;
            message: string;
          } & {
            [key: string]: unknown;
          })
        | null;
      /** @example 0 */
      priority: number;
      /**
       * Format: date-time
       * @example 2026-11-28T12:20:44.092Z
       */
      run_at: string;
      /**
       * @description Attempts started so far
       * @example 1
       */
      attempts: number;
      /** @example 3 */
      max_attempts: number;
      /** @example 300000 */
      timeout_ms: number;
      /**
       * Format: date-time
       * @example 2026-11-28T12:20:44.092Z
       */
      created_at: string;
      /**
       * Format: date-time
       * @example 2026-11-28T12:20:44.104Z
       */
      updated_at: string;
      /**
       * Format: date-time
       * @description The first claim; null while pending, and for a job cancelled before any claim
       * @example 2026-11-28T12:20:44.098Z
       */
      started_at: string | null;
      /**
       * Format: date-time
       * @description When the job became completed, failed or cancelled; null before
       * @example 2026-11-28T12:20:44.104Z
       */
      finished_at: string | null;
      /**
       * Format: date-time
       * @description While a failed attempt waits for its retry: when the next attempt may start; null otherwise
       * @example null
       */
      next_attempt_at: string | null;
      /**
       * Format: date-time
       * @description When a cancel was requested; a running job stays running until its worker stops it
       * @example null
       */
      cancel_requested_at: string | null;
      /**
       * Format: uuid
       * @description The failed or cancelled job this one retries (POST /jobs/{job_id}/retry)
       * @example null
       */
      retry_of: string | null;
      /**
       * @description The completion callback (callback_url); null when the job has none
       * @example null
       */
      callback?: {
        /** @example https://hooks.example.com/jobs/finished */
        url: string;
        /**
         * @description waiting: the job has not finished; pending: to be delivered (or being retried); delivered: a 2xx answer came; failed: given up after CALLBACK_MAX_ATTEMPTS attempts
         * @enum {string}
         */
        state: 'waiting' | 'pending' | 'delivered' | 'failed';
        /** @description Delivery attempts started so far */
        attempts: number;
      } | null;
      /** @description Every attempt, oldest first */
      attempt_history: components['schemas']['AttemptResponse'][];
    };
    CancelMatchingJobsDto: {
      /**
       * @description Why; stored as the cancelled job's error message
       * @example Customer withdrew the order
       */
      reason?: string;
      /**
       * @description Only jobs of this type
       * @example email.send
       */
      job_type?: string;
      /**
       * @description Only jobs in this state
       * @enum {string}
       */
      state?: 'pending' | 'running';
      /**
       * Format: date-time
       * @description Only jobs created before this time
       * @example 2026-12-01T09:00:00Z
       */
      created_before?: string;
    };
    CancelMatchingResponse: {
      /**
       * @description Unfinished jobs cancelled, or whose cancel was requested
       * @example 120
       */
      matched: number;
    };
    CancelJobDto: {
      /**
       * @description Why; stored as the cancelled job's error message
       * @example Customer withdrew the order
       */
      reason?: string;
    };
    JobTypeResponse: {
      /** @example sleep */
      job_type: string;
      /** @example Waits `ms` milliseconds and returns { slept_ms } */
      description: string;
      /**
       * @description JSON Schema of the payload the type accepts
       * @example {
       *       "type": "object",
       *       "properties": {
       *         "ms": {
       *           "type": "integer",
       *           "minimum": 0
       *         }
       *       },
       *       "required": [
       *         "ms"
       *       ]
       *     }
       */
      payload_schema: {
        [key: string]: unknown;
      };
      /**
       * @description True while workers do not claim jobs of this type
       * @example false
       */
      paused: boolean;
    };
    JobsByStateResponse: {
      /** @example 1204 */
      pending: number;
      /** @example 37 */
      running: number;
      /** @example 912345 */
      completed: number;
      /** @example 812 */
      failed: number;
      /** @example 15 */
      cancelled: number;
    };
    JobTypeStatsResponse: {
      /** @example 1204 */
      pending: number;
      /** @example 37 */
      running: number;
      /** @example 912345 */
      completed: number;
      /** @example 812 */
      failed: number;
      /** @example 15 */
      cancelled: number;
      /** @example email.send */
      job_type: string;
      /**
       * @description Workers do not claim this type (POST /job-types/{job_type}/pause)
       * @example false
       */
      paused: boolean;
    };
    FinishedLastMinuteResponse: {
      /** @example 2310 */
      completed: number;
      /** @example 4 */
      failed: number;
      /** @example 0 */
      cancelled: number;
    };
    StatsResponse: {
      /** @description Jobs in each state, every job type together */
      by_state: components['schemas']['JobsByStateResponse'];
      /** @description Per job type, sorted by name: every registered type, and any other that has jobs or is paused */
      by_type: components['schemas']['JobTypeStatsResponse'][];
      /**
       * @description How long the longest-waiting claimable job has been due (paused types included); null when no job is due
       * @example 850
       */
      oldest_due_age_ms: number | null;
      /** @description Jobs that reached each terminal state within the last minute (counted by whole seconds) */
      finished_last_minute: components['schemas']['FinishedLastMinuteResponse'];
    };
    FinishesInMinuteResponse: {
      /**
       * Format: date-time
       * @description Start of the minute
       * @example 2026-11-28T12:20:00.000Z
       */
      minute: string;
      /** @example 2310 */
      completed: number;
      /** @example 4 */
      failed: number;
      /** @example 0 */
      cancelled: number;
    };
    FinishesPerMinuteResponse: {
      /** @description One entry per minute, oldest first, zero-filled; the last is the current minute, still counting */
      minutes: components['schemas']['FinishesInMinuteResponse'][];
    };
    WhoamiResponse: {
      /**
       * @description The key's scope; admin when the API needs no key (every endpoint is open then)
       * @example read
       * @enum {string}
       */
      scope: 'read' | 'write' | 'admin';
      /**
       * @description False when the API serves every request without a key
       * @example true
       */
      key_required: boolean;
    };
  };
  responses: never;
  parameters: never;
  requestBodies: never;
  headers: never;
  pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
  MetricsController_scrape: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Prometheus text exposition format. Needs a read key unless METRICS_PUBLIC=true. */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'text/plain': string;
        };
      };
      /** @description API_KEYS is set and the request has no valid `Authorization: Bearer <key>` */
      401: {
        headers: {
          /** @description The authentication scheme to use */
          'WWW-Authenticate': 'Bearer';
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description Over RATE_LIMIT_PER_MINUTE for this key; Retry-After says when to try again */
      429: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
    };
  };
  HealthController_live: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['LivenessResponse'];
        };
      };
    };
  };
  HealthController_ready: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ReadinessResponse'];
        };
      };
      /** @description Not ready, with each check under `checks`: shutting down, schema missing migrations, or (in a worker) database unreachable, worker loop stalled, or no rescue sweep completed for 5 intervals */
      503: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['NotReadyProblemResponse'];
        };
      };
    };
  };
  JobsController_list: {
    parameters: {
      query?: {
        /** @description Only jobs in this state */
        state?: 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';
        /** @description Only jobs of this type */
        job_type?: string;
        limit?: number;
        /** @description next_cursor from the previous page (opaque) */
        cursor?: string;
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['JobListResponse'];
        };
      };
      /** @description A query value is invalid, or the cursor is not one this API returned */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description API_KEYS is set and the request has no valid `Authorization: Bearer <key>` */
      401: {
        headers: {
          /** @description The authentication scheme to use */
          'WWW-Authenticate': 'Bearer';
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description Over RATE_LIMIT_PER_MINUTE for this key; Retry-After says when to try again */
      429: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The database is unreachable; the request changed nothing, retry later */
      503: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
    };
  };
  JobsController_create: {
    parameters: {
      query?: never;
      header?: {
        /** @description return=minimal: the answer gives each created job's id only (RFC 7240). The jobs are created the same way; the answer to a batch of 1,000 plain jobs is about an eighth of the bytes. */
        Prefer?: string;
        /** @description 1-255 visible ASCII characters */
        'Idempotency-Key'?: string;
      };
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['CreateJobDto'];
      };
    };
    responses: {
      /** @description The job is committed; Location points at it. A replay answers the first job again. */
      201: {
        headers: {
          /** @description The path of the job: /jobs/{job_id} */
          Location: string;
          /** @description return=minimal when the request asked for it: the answer holds the ids only */
          'Preference-Applied'?: 'return=minimal';
          /** @description Present, and true, when an Idempotency-Key repeated an earlier request: no job was created */
          'Idempotent-Replayed'?: 'true';
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['JobResponse'] | components['schemas']['JobIdResponse'];
        };
      };
      /** @description Invalid body or Idempotency-Key, unknown job_type, or a payload its type refuses */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description API_KEYS is set and the request has no valid `Authorization: Bearer <key>` */
      401: {
        headers: {
          /** @description The authentication scheme to use */
          'WWW-Authenticate': 'Bearer';
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The key's scope is smaller than write */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The Idempotency-Key was used before with a different body */
      409: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The body is larger than MAX_BODY_BYTES */
      413: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The body is not JSON (Content-Type: application/json) */
      415: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description Over RATE_LIMIT_PER_MINUTE for this key; Retry-After says when to try again */
      429: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The database is unreachable; the request changed nothing, retry later */
      503: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
    };
  };
  JobsController_createBatch: {
    parameters: {
      query?: never;
      header?: {
        /** @description return=minimal: the answer gives each created job's id only (RFC 7240). The jobs are created the same way; the answer to a batch of 1,000 plain jobs is about an eighth of the bytes. */
        Prefer?: string;
      };
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['CreateJobsBatchDto'];
      };
    };
    responses: {
      201: {
        headers: {
          /** @description return=minimal when the request asked for it: the answer holds the ids only */
          'Preference-Applied'?: 'return=minimal';
          [name: string]: unknown;
        };
        content: {
          'application/json':
            components['schemas']['JobBatchResponse'] | components['schemas']['JobIdBatchResponse'];
        };
      };
      /** @description Invalid jobs: each problem names the index of its job */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description API_KEYS is set and the request has no valid `Authorization: Bearer <key>` */
      401: {
        headers: {
          /** @description The authentication scheme to use */
          'WWW-Authenticate': 'Bearer';
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The key's scope is smaller than write */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The body is larger than MAX_BODY_BYTES */
      413: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The body is not JSON (Content-Type: application/json) */
      415: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description Over RATE_LIMIT_PER_MINUTE for this key; Retry-After says when to try again */
      429: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The database is unreachable; the request changed nothing, retry later */
      503: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
    };
  };
  JobsController_get: {
    parameters: {
      query?: {
        /** @description Long poll: answer as soon as the job is completed, failed or cancelled, or after this many ms with its current state. 0 (the default) answers at once. */
        wait_ms?: number;
      };
      header?: never;
      path: {
        job_id: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['JobDetailResponse'];
        };
      };
      /** @description job_id is not a UUID, or a bad wait_ms */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description API_KEYS is set and the request has no valid `Authorization: Bearer <key>` */
      401: {
        headers: {
          /** @description The authentication scheme to use */
          'WWW-Authenticate': 'Bearer';
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description No job has this id */
      404: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description Over RATE_LIMIT_PER_MINUTE for this key; Retry-After says when to try again */
      429: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The database is unreachable; the request changed nothing, retry later */
      503: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
    };
  };
  JobsController_cancelMatching: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['CancelMatchingJobsDto'];
      };
    };
    responses: {
      202: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['CancelMatchingResponse'];
        };
      };
      /** @description No filter field, or an invalid one */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description API_KEYS is set and the request has no valid `Authorization: Bearer <key>` */
      401: {
        headers: {
          /** @description The authentication scheme to use */
          'WWW-Authenticate': 'Bearer';
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The key's scope is smaller than admin */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The body is larger than MAX_BODY_BYTES */
      413: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The body is not JSON (Content-Type: application/json) */
      415: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description Over RATE_LIMIT_PER_MINUTE for this key; Retry-After says when to try again */
      429: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The database is unreachable; the request changed nothing, retry later */
      503: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
    };
  };
  JobsController_cancel: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        job_id: string;
      };
      cookie?: never;
    };
    requestBody?: {
      content: {
        'application/json': components['schemas']['CancelJobDto'];
      };
    };
    responses: {
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['JobDetailResponse'];
        };
      };
      /** @description job_id is not a UUID, or an invalid body */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description API_KEYS is set and the request has no valid `Authorization: Bearer <key>` */
      401: {
        headers: {
          /** @description The authentication scheme to use */
          'WWW-Authenticate': 'Bearer';
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The key's scope is smaller than admin */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description No job has this id */
      404: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The job is already completed, failed or cancelled */
      409: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The body is larger than MAX_BODY_BYTES */
      413: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The body is not JSON (Content-Type: application/json) */
      415: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description Over RATE_LIMIT_PER_MINUTE for this key; Retry-After says when to try again */
      429: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The database is unreachable; the request changed nothing, retry later */
      503: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
    };
  };
  JobsController_retry: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        job_id: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The new job; Location points at it */
      201: {
        headers: {
          /** @description The path of the job: /jobs/{job_id} */
          Location: string;
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['JobResponse'];
        };
      };
      /** @description job_id is not a UUID, or a body that is not JSON (none is needed) */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description API_KEYS is set and the request has no valid `Authorization: Bearer <key>` */
      401: {
        headers: {
          /** @description The authentication scheme to use */
          'WWW-Authenticate': 'Bearer';
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The key's scope is smaller than admin */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description No job has this id */
      404: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The job is not failed or cancelled */
      409: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The body is larger than MAX_BODY_BYTES */
      413: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The body is not JSON (Content-Type: application/json) */
      415: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description Over RATE_LIMIT_PER_MINUTE for this key; Retry-After says when to try again */
      429: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The database is unreachable; the request changed nothing, retry later */
      503: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
    };
  };
  JobsController_jobTypes: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['JobTypeResponse'][];
        };
      };
      /** @description API_KEYS is set and the request has no valid `Authorization: Bearer <key>` */
      401: {
        headers: {
          /** @description The authentication scheme to use */
          'WWW-Authenticate': 'Bearer';
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description Over RATE_LIMIT_PER_MINUTE for this key; Retry-After says when to try again */
      429: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The database is unreachable; the request changed nothing, retry later */
      503: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
    };
  };
  JobsController_pause: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        job_type: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['JobTypeResponse'];
        };
      };
      /** @description a body that is not JSON (none is needed) */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description API_KEYS is set and the request has no valid `Authorization: Bearer <key>` */
      401: {
        headers: {
          /** @description The authentication scheme to use */
          'WWW-Authenticate': 'Bearer';
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The key's scope is smaller than admin */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description No such job type is registered */
      404: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The body is larger than MAX_BODY_BYTES */
      413: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The body is not JSON (Content-Type: application/json) */
      415: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description Over RATE_LIMIT_PER_MINUTE for this key; Retry-After says when to try again */
      429: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The database is unreachable; the request changed nothing, retry later */
      503: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
    };
  };
  JobsController_resume: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        job_type: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['JobTypeResponse'];
        };
      };
      /** @description a body that is not JSON (none is needed) */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description API_KEYS is set and the request has no valid `Authorization: Bearer <key>` */
      401: {
        headers: {
          /** @description The authentication scheme to use */
          'WWW-Authenticate': 'Bearer';
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The key's scope is smaller than admin */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description No such job type is registered */
      404: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The body is larger than MAX_BODY_BYTES */
      413: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The body is not JSON (Content-Type: application/json) */
      415: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description Over RATE_LIMIT_PER_MINUTE for this key; Retry-After says when to try again */
      429: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The database is unreachable; the request changed nothing, retry later */
      503: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
    };
  };
  StatsController_get: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['StatsResponse'];
        };
      };
      /** @description A query parameter was given */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description API_KEYS is set and the request has no valid `Authorization: Bearer <key>` */
      401: {
        headers: {
          /** @description The authentication scheme to use */
          'WWW-Authenticate': 'Bearer';
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description Over RATE_LIMIT_PER_MINUTE for this key; Retry-After says when to try again */
      429: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The database is unreachable; the request changed nothing, retry later */
      503: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
    };
  };
  StatsController_finishesPerMinute: {
    parameters: {
      query?: {
        /** @description How many minutes to return, the current one included (default 60). A client that keeps the history asks for the hour once, then for the last 2 minutes on each refresh. */
        minutes?: number;
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['FinishesPerMinuteResponse'];
        };
      };
      /** @description minutes is not an integer from 1 to 60 */
      400: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description API_KEYS is set and the request has no valid `Authorization: Bearer <key>` */
      401: {
        headers: {
          /** @description The authentication scheme to use */
          'WWW-Authenticate': 'Bearer';
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description Over RATE_LIMIT_PER_MINUTE for this key; Retry-After says when to try again */
      429: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description The database is unreachable; the request changed nothing, retry later */
      503: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
    };
  };
  AuthController_whoami: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['WhoamiResponse'];
        };
      };
      /** @description API_KEYS is set and the request has no valid `Authorization: Bearer <key>` */
      401: {
        headers: {
          /** @description The authentication scheme to use */
          'WWW-Authenticate': 'Bearer';
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
      /** @description Over RATE_LIMIT_PER_MINUTE for this key; Retry-After says when to try again */
      429: {
        headers: {
          /** @description Seconds to wait before trying again */
          'Retry-After': number;
          [name: string]: unknown;
        };
        content: {
          'application/problem+json': components['schemas']['ProblemResponse'];
        };
      };
    };
  };
}
