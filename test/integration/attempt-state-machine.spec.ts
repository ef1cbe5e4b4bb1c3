import fc from 'fast-check';
import { PermanentJobError } from '../../src/handlers/job-handler';
import type {
  AttemptRef,
  ClaimedJob,
  Completion,
  JobRepository,
  RescuedAttempt,
} from '../../src/persistence/job.repository';
import { AttemptOutcome, type ClosingOutcome, type JobErrorBody } from '../../src/persistence/job-state';
import { AttemptTimeoutError, WorkerShutdownError, toJobError } from '../../src/worker/attempt-errors';
import { decideAfterFailure, retryDelayMs } from '../../src/worker/retry-policy';
import { ALL_TYPES, eventually, insertJob } from '../support/job-factory';
import { openRepository } from '../support/repository';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/**
 * Model-based test of the attempt state machine: random sequences of claims by several workers,
 * heartbeats, successes, failures, timeouts, releases at shutdown, lapsed leases and rescue sweeps, run
 * through the production repository against the real database. After every step the database must keep
 * its invariants and agree with a model of who holds which attempt and what each fenced write returns.
 *
 * A failure prints its seed: rerun with FC_SEED=<seed>, or replay the shrunk case at once with FC_SEED,
 * FC_PATH=<path> and FC_REPLAY_PATH=<replayPath> from the report. FC_RUNS sets the number of sequences.
 */

const RUNS = Number(process.env.FC_RUNS ?? 150);
const MAX_COMMANDS = 30;
/** Long enough never to lapse within a sequence: only a deliberately short lease lapses. */
const LONG_LEASE_MS = 600_000;
/** Retry delays below this count as due by the next claim (the claim waits for them); longer never are. */
const SOON_MS = 1_000;

/**
 * The simulated workers and how they back off. The first and third retry within milliseconds; the
 * second backs off for at least 30 s, far longer than a sequence, so its retries are never due.
 */
const WORKERS = [
  { workerId: 'worker-1', retryBaseMs: 5, retryMaxMs: 20 },
  { workerId: 'worker-2', retryBaseMs: 60_000, retryMaxMs: 3_600_000 },
  { workerId: 'worker-3', retryBaseMs: 1, retryMaxMs: 1 },
] as const;

// ---------------------------------------------------------------------------------------------------
// The only calls this file makes into the repository: one simulated worker's view of it.

interface WorkerPort {
  readonly workerId: string;
  claim(limit: number, leaseMs: number): Promise<ClaimedJob[]>;
  renew(refs: AttemptRef[], leaseMs: number): Promise<AttemptRef[]>;
  complete(completions: Completion[]): Promise<Set<string>>;
  scheduleRetry(
    ref: AttemptRef,
    outcome: ClosingOutcome,
    error: JobErrorBody,
    delayMs: number,
  ): Promise<boolean>;
  fail(ref: AttemptRef, outcome: ClosingOutcome, error: JobErrorBody): Promise<boolean>;
  rescue(limit: number, minIntervalMs: number): Promise<RescuedAttempt[]>;
}

function workerPort(repository: JobRepository, workerId: string): WorkerPort {
  return {
    workerId,
    claim: (limit, leaseMs) => repository.claimDue(limit, workerId, leaseMs, ALL_TYPES),
    renew: async (refs, leaseMs) =>
      (await repository.renewLeases(workerId, refs, leaseMs)).map(({ jobId, attempt }) => ({
        jobId,
        attempt,
      })),
    complete: (completions) => repository.markCompleted(workerId, completions),
    scheduleRetry: (ref, outcome, error, delayMs) =>
      repository.scheduleRetry(workerId, ref, outcome, error, delayMs),
    fail: (ref, outcome, error) => repository.markFailed(workerId, ref, outcome, error),
    rescue: async (limit, minIntervalMs) =>
      (await repository.rescueExpiredLeases(limit, minIntervalMs))?.rescued ?? [],
  };
}

// ---------------------------------------------------------------------------------------------------
// What the database holds, read after every step.

interface JobRow {
  jobId: string;
  state: string;
  attempts: number;
  failedAttempts: number;
  maxAttempts: number;
  priority: number;
  workerId: string | null;
  hasResult: boolean;
  result: unknown;
  hasError: boolean;
  error: JobErrorBody | null;
  hasStarted: boolean;
  hasFinished: boolean;
  leased: boolean;
  /** The lease is still in force by the database clock. */
  leaseHolds: boolean;
  /** Timestamps in epoch microseconds: a JavaScript Date would drop the digits that order rows. */
  leaseUs: bigint | null;
  availableUs: bigint | null;
  due: boolean;
  /** The whole row as text, to prove a terminal row never changes. */
  whole: string;
}

interface RecordRow {
  attempt: number;
  workerId: string;
  outcome: string;
  error: JobErrorBody;
  whole: string;
}

interface Snapshot {
  jobs: Map<string, JobRow>;
  records: Map<string, RecordRow[]>;
}

const micros = (value: string | null): bigint | null => (value === null ? null : BigInt(value));

async function readSnapshot(db: TestDatabase): Promise<Snapshot> {
  const [jobs, records] = (await db.pool.query(`
    SELECT job_id, state, attempts, failed_attempts, max_attempts, priority, worker_id,
           result IS NOT NULL AS has_result, result, error IS NOT NULL AS has_error, error,
           started_at IS NOT NULL AS has_started, finished_at IS NOT NULL AS has_finished,
           lease_expires_at IS NOT NULL AS leased, coalesce(lease_expires_at > now(), false) AS lease_holds,
           (extract(epoch FROM lease_expires_at) * 1000000)::bigint::text AS lease_us,
           (extract(epoch FROM available_at) * 1000000)::bigint::text AS available_us,
           coalesce(available_at <= now(), false) AS due,
           to_jsonb(j)::text AS whole
    FROM jobs j;
    SELECT job_id, attempt, worker_id, outcome, error, to_jsonb(a)::text AS whole
    FROM job_attempts a ORDER BY job_id, attempt;
  `)) as unknown as { rows: Record<string, any>[] }[];
  const snapshot: Snapshot = { jobs: new Map(), records: new Map() };
  for (const row of jobs.rows) {
    snapshot.jobs.set(row.job_id, {
      jobId: row.job_id,
      state: row.state,
      attempts: row.attempts,
      failedAttempts: row.failed_attempts,
      maxAttempts: row.max_attempts,
      priority: row.priority,
      workerId: row.worker_id,
      hasResult: row.has_result,
      result: row.result,
      hasError: row.has_error,
      error: row.error,
      hasStarted: row.has_started,
      hasFinished: row.has_finished,
      leased: row.leased,
      leaseHolds: row.lease_holds,
      leaseUs: micros(row.lease_us),
      availableUs: micros(row.available_us),
      due: row.due,
      whole: row.whole,
    });
    snapshot.records.set(row.job_id, []);
  }
  for (const row of records.rows) {
    snapshot.records.get(row.job_id)!.push({
      attempt: row.attempt,
      workerId: row.worker_id,
      outcome: row.outcome,
      error: row.error,
      whole: row.whole,
    });
  }
  return snapshot;
}

const TERMINAL = new Set(['completed', 'failed']);
const FAILING = new Set<string>([AttemptOutcome.Failed, AttemptOutcome.TimedOut, AttemptOutcome.Lost]);
const FORWARD: Record<string, string[]> = {
  pending: ['pending', 'running'],
  running: ['running', 'completed', 'failed'],
  completed: ['completed'],
  failed: ['failed'],
};
const range = (from: number, to: number): number[] =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

/** The contract's invariants, read from both tables, against the snapshot before the step. */
function checkInvariants(before: Snapshot, after: Snapshot): void {
  for (const [jobId, old] of before.jobs) {
    const row = after.jobs.get(jobId);
    expect(row).toBeDefined();
    expect({
      jobId,
      from: old.state,
      to: row!.state,
      forward: FORWARD[old.state].includes(row!.state),
    }).toEqual({
      jobId,
      from: old.state,
      to: row!.state,
      forward: true,
    });
    const oldRecords = before.records.get(jobId)!.map((r) => r.whole);
    const newRecords = after.records.get(jobId)!.map((r) => r.whole);
    // A closed attempt never changes and is never removed.
    expect(newRecords.slice(0, oldRecords.length)).toEqual(oldRecords);
    if (TERMINAL.has(old.state)) {
      expect(row!.whole).toBe(old.whole);
      expect(newRecords).toEqual(oldRecords);
    }
  }
  for (const [jobId, row] of after.jobs) {
    const records = after.records.get(jobId)!;
    const failures = records.filter((r) => FAILING.has(r.outcome)).length;
    // The live attempt and the succeeded one are told by the job row; every other attempt has a record.
    const onRow = row.leased || row.state === 'completed' ? 1 : 0;
    expect({
      jobId,
      resultIffCompleted: row.hasResult === (row.state === 'completed'),
      errorIffFailed: row.hasError === (row.state === 'failed'),
      finishedIffTerminal: row.hasFinished === TERMINAL.has(row.state),
      startedIffNotPending: row.hasStarted === (row.state !== 'pending'),
      leasedOnlyWhileRunning: !row.leased || row.state === 'running',
      failuresWithinMax: failures <= row.maxAttempts,
      failuresCounted: failures === row.failedAttempts,
      attemptNumbers: records.map((r) => r.attempt),
    }).toEqual({
      jobId,
      resultIffCompleted: true,
      errorIffFailed: true,
      finishedIffTerminal: true,
      startedIffNotPending: true,
      leasedOnlyWhileRunning: true,
      failuresWithinMax: true,
      failuresCounted: true,
      attemptNumbers: range(1, row.attempts - onRow),
    });
  }
}

// ---------------------------------------------------------------------------------------------------
// The model.

type Waiting = 'due' | 'soon' | 'later';

interface ModelJob {
  jobId: string;
  maxAttempts: number;
  state: 'pending' | 'running' | 'completed' | 'failed';
  attempts: number;
  failedAttempts: number;
  /** The attempt open on the job; `lapsed` once its lease ran out by the database clock. */
  live: { attempt: number; workerId: string; lapsed: boolean } | null;
  /** Whether a job with no live attempt may be claimed: due now, due before the next claim, or not at all. */
  waiting: Waiting | null;
  lastWorkerId: string | null;
  records: { attempt: number; workerId: string; outcome: string; code: string }[];
  result?: unknown;
  error?: { code: string; body?: JobErrorBody };
}

/** An attempt some worker once claimed, with what the claim told it. */
interface KnownAttempt {
  key: string;
  ref: AttemptRef;
  claim: ClaimedJob;
  /** Index of the worker that claimed it. */
  claimedBy: number;
}

interface Model {
  jobs: Map<string, ModelJob>;
  /** Per worker, the attempts it believes it holds (it forgets one once it wrote it or learned it lost it). */
  held: KnownAttempt[][];
  /** Every attempt ever claimed: stale ones are what a zombie worker writes about. */
  known: KnownAttempt[];
  /** A sweep took its turn in this sequence, so a throttled sweep must not run. */
  swept: boolean;
}

interface Real {
  db: TestDatabase;
  ports: WorkerPort[];
  last: Snapshot;
}

const keyOf = (ref: AttemptRef): string => `${ref.jobId}#${ref.attempt}`;

/** Claimable now: pending, or between attempts with its retry time reached. */
function claimable(job: ModelJob): boolean {
  return job.state === 'pending' || (job.state === 'running' && job.live === null && job.waiting === 'due');
}

/** The fencing rule: a write lands only for the worker holding the job's live attempt, lease in force. */
function holds(model: Model, workerId: string, ref: AttemptRef): boolean {
  const live = model.jobs.get(ref.jobId)!.live;
  return live !== null && live.attempt === ref.attempt && live.workerId === workerId && !live.lapsed;
}

function forget(model: Model, worker: number, keys: string[]): void {
  model.held[worker] = model.held[worker].filter((known) => !keys.includes(known.key));
}

/** Every job as the model expects the database to show it. */
function checkAgainstModel(model: Model, snapshot: Snapshot): void {
  expect([...snapshot.jobs.keys()].sort()).toEqual([...model.jobs.keys()].sort());
  for (const job of model.jobs.values()) {
    const row = snapshot.jobs.get(job.jobId)!;
    const claimable = job.state === 'pending' || (job.state === 'running' && job.live === null);
    const actual = {
      jobId: row.jobId,
      state: row.state,
      attempts: row.attempts,
      failedAttempts: row.failedAttempts,
      workerId: row.workerId,
      leased: row.leased,
      leaseHolds: row.leaseHolds,
      claimable: row.availableUs !== null,
      due: row.due,
      records: snapshot.records.get(job.jobId)!.map((r) => ({
        attempt: r.attempt,
        workerId: r.workerId,
        outcome: r.outcome,
        code: r.error.code,
      })),
      result: row.state === 'completed' ? row.result : undefined,
      error: row.error
        ? { code: row.error.code, ...(job.error?.body ? { body: row.error } : {}) }
        : undefined,
    };
    expect(actual).toEqual({
      jobId: job.jobId,
      state: job.state,
      attempts: job.attempts,
      failedAttempts: job.failedAttempts,
      workerId: job.lastWorkerId,
      leased: job.live !== null,
      leaseHolds: job.live !== null && !job.live.lapsed,
      claimable,
      // A retry due within milliseconds may or may not have come due yet: the next claim waits for it.
      due: claimable && job.waiting === 'soon' ? row.due : claimable && job.waiting === 'due',
      records: job.records,
      result: job.state === 'completed' ? job.result : undefined,
      error: job.error,
    });
  }
}

/**
 * Reads both tables and checks them after a step. Only the jobs in `changed` may differ from before in
 * any column: a refused write must leave its row exactly as it was, not just in the columns modelled.
 */
async function afterStep(model: Model, real: Real, changed: Iterable<string>): Promise<void> {
  const next = await readSnapshot(real.db);
  checkInvariants(real.last, next);
  const allowed = new Set(changed);
  for (const [jobId, before] of real.last.jobs) {
    if (allowed.has(jobId)) continue;
    expect({ jobId, row: next.jobs.get(jobId)?.whole }).toEqual({ jobId, row: before.whole });
    expect(next.records.get(jobId)).toEqual(real.last.records.get(jobId));
  }
  checkAgainstModel(model, next);
  real.last = next;
}

/** Waits (database clock) until the leases of these jobs have run out. */
async function waitUntilLapsed(db: TestDatabase, jobIds: string[]): Promise<void> {
  if (jobIds.length === 0) return;
  await eventually(
    async () => {
      const { rows } = await db.pool.query(
        `SELECT bool_and(lease_expires_at < now()) AS lapsed FROM jobs WHERE job_id = ANY($1::uuid[])`,
        [jobIds],
      );
      return rows[0].lapsed === true ? true : undefined;
    },
    10_000,
    2,
  );
}

/** Waits (database clock) until retries scheduled a few milliseconds ahead are due. */
async function waitForSoonRetries(model: Model, db: TestDatabase): Promise<void> {
  const soon = [...model.jobs.values()].filter((job) => job.waiting === 'soon');
  if (soon.length === 0) return;
  await eventually(
    async () => {
      const { rows } = await db.pool.query(
        `SELECT bool_and(available_at <= now()) AS due FROM jobs WHERE job_id = ANY($1::uuid[])`,
        [soon.map((job) => job.jobId)],
      );
      return rows[0].due === true ? true : undefined;
    },
    10_000,
    2,
  );
  for (const job of soon) job.waiting = 'due';
}

// ---------------------------------------------------------------------------------------------------
// Commands. Workers and attempts are picked by index modulo what exists when the command runs.

type Cmd = fc.AsyncCommand<Model, Real>;

/**
 * Which attempt a write names: one the worker believes it holds, one it claimed earlier and no longer
 * holds (a zombie writing late), or any attempt any worker ever claimed (an impostor).
 */
interface Pick {
  from: 'held' | 'stale' | 'any';
  index: number;
}

const pickArb: fc.Arbitrary<Pick> = fc.record({
  from: fc.oneof(
    { weight: 2, arbitrary: fc.constant('held' as const) },
    { weight: 1, arbitrary: fc.constant('stale' as const) },
    { weight: 1, arbitrary: fc.constant('any' as const) },
  ),
  index: fc.nat(20),
});
const showPick = (pick: Pick): string => `${pick.from}[${pick.index}]`;
const showLease = (leaseMs: number | null): string =>
  leaseMs === null ? 'long lease' : `lease ${leaseMs} ms`;

function candidates(model: Readonly<Model>, worker: number, pick: Pick): readonly KnownAttempt[] {
  const w = worker % model.held.length;
  if (pick.from === 'held') return model.held[w];
  if (pick.from === 'stale') {
    return model.known.filter((known) => known.claimedBy === w && !model.held[w].includes(known));
  }
  return model.known;
}

function canPick(model: Readonly<Model>, worker: number, picks: Pick[]): boolean {
  return picks.every((pick) => candidates(model, worker, pick).length > 0);
}

function resolve(model: Model, worker: number, pick: Pick): KnownAttempt {
  const from = candidates(model, worker, pick);
  return from[pick.index % from.length];
}

class ClaimCommand implements Cmd {
  constructor(
    readonly worker: number,
    readonly limit: number,
    readonly leaseMs: number | null,
  ) {}

  /** Worth running while some job is claimable now or soon; a claim that can only get nothing is noise. */
  check = (model: Readonly<Model>): boolean =>
    [...model.jobs.values()].some((job) => claimable(job) || (job.live === null && job.waiting === 'soon'));

  async run(model: Model, real: Real): Promise<void> {
    const w = this.worker % model.held.length;
    const port = real.ports[w];
    await waitForSoonRetries(model, real.db);
    const order = (a: JobRow, b: JobRow): number =>
      b.priority - a.priority ||
      (a.availableUs! < b.availableUs! ? -1 : a.availableUs! > b.availableUs! ? 1 : 0) ||
      (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0);
    const expected = [...model.jobs.values()]
      .filter(claimable)
      .map((job) => real.last.jobs.get(job.jobId)!)
      .sort(order)
      .slice(0, this.limit)
      .map((row) => row.jobId);

    const claimed = await port.claim(this.limit, this.leaseMs ?? LONG_LEASE_MS);

    expect(claimed.map((c) => c.jobId).sort()).toEqual([...expected].sort());
    for (const claim of claimed) {
      const job = model.jobs.get(claim.jobId)!;
      expect({ attempt: claim.attempt, failed: claim.failedAttempts, max: claim.maxAttempts }).toEqual({
        attempt: job.attempts + 1,
        failed: job.failedAttempts,
        max: job.maxAttempts,
      });
      job.state = 'running';
      job.attempts += 1;
      job.live = { attempt: claim.attempt, workerId: port.workerId, lapsed: false };
      job.waiting = null;
      job.lastWorkerId = port.workerId;
      const known = {
        key: keyOf(claim),
        ref: { jobId: claim.jobId, attempt: claim.attempt },
        claim,
        claimedBy: w,
      };
      model.known.push(known);
      model.held[w].push(known);
    }
    if (this.leaseMs !== null) {
      await waitUntilLapsed(
        real.db,
        claimed.map((c) => c.jobId),
      );
      for (const claim of claimed) model.jobs.get(claim.jobId)!.live!.lapsed = true;
    }
    await afterStep(
      model,
      real,
      claimed.map((c) => c.jobId),
    );
  }

  toString = (): string => `claim(w${this.worker}, limit ${this.limit}, ${showLease(this.leaseMs)})`;
}

/** Renews every lease the worker believes it holds; the ones refused it forgets (self-fencing). */
class HeartbeatCommand implements Cmd {
  constructor(
    readonly worker: number,
    readonly leaseMs: number | null,
  ) {}

  check = (model: Readonly<Model>): boolean => model.held[this.worker % model.held.length].length > 0;

  async run(model: Model, real: Real): Promise<void> {
    const w = this.worker % model.held.length;
    const port = real.ports[w];
    const refs = model.held[w].map((known) => known.ref);
    const expected = refs.filter((ref) => holds(model, port.workerId, ref));

    const renewed = (await port.renew(refs, this.leaseMs ?? LONG_LEASE_MS)).map(keyOf);

    expect([...renewed].sort()).toEqual(expected.map(keyOf).sort());
    forget(
      model,
      w,
      refs.map(keyOf).filter((key) => !renewed.includes(key)),
    );
    const renewedJobs = expected.map((ref) => ref.jobId);
    if (this.leaseMs !== null) {
      await waitUntilLapsed(real.db, renewedJobs);
      for (const jobId of renewedJobs) model.jobs.get(jobId)!.live!.lapsed = true;
    }
    await afterStep(model, real, renewedJobs);
  }

  toString = (): string => `heartbeat(w${this.worker}, ${showLease(this.leaseMs)})`;
}

/** The handlers of one or more attempts returned: one batched, fenced write, as the recorder does. */
class CompleteCommand implements Cmd {
  constructor(
    readonly worker: number,
    readonly picks: Pick[],
    readonly results: fc.JsonValue[],
  ) {}

  check = (model: Readonly<Model>): boolean => canPick(model, this.worker, this.picks);

  async run(model: Model, real: Real): Promise<void> {
    const w = this.worker % model.held.length;
    const port = real.ports[w];
    const targets = new Map<string, KnownAttempt>();
    for (const pick of this.picks) {
      const known = resolve(model, w, pick);
      targets.set(known.key, known);
    }
    const completions = [...targets.values()].map((known, i) => ({
      ...known.ref,
      resultJson: JSON.stringify(this.results[i % this.results.length]),
    }));
    const expected = completions.filter((c) => holds(model, port.workerId, c));

    const completed = await port.complete(completions);

    expect([...completed].sort()).toEqual(expected.map((c) => c.jobId).sort());
    for (const completion of expected) {
      const job = model.jobs.get(completion.jobId)!;
      job.state = 'completed';
      job.live = null;
      job.result = JSON.parse(completion.resultJson);
    }
    forget(model, w, [...targets.keys()]);
    await afterStep(
      model,
      real,
      expected.map((c) => c.jobId),
    );
  }

  toString = (): string =>
    `complete(w${this.worker}, ${this.picks.map(showPick).join(' ')}, results ${JSON.stringify(this.results)})`;
}

type FailureKind = 'retryable' | 'permanent' | 'timeout' | 'interrupted';

/** An attempt ended without a result; the worker decides retry or fail exactly as the job runner does. */
class FailCommand implements Cmd {
  constructor(
    readonly worker: number,
    readonly pick: Pick,
    readonly kind: FailureKind,
    readonly jitter: number,
  ) {}

  check = (model: Readonly<Model>): boolean => canPick(model, this.worker, [this.pick]);

  async run(model: Model, real: Real): Promise<void> {
    const w = this.worker % model.held.length;
    const port = real.ports[w];
    const profile = WORKERS[w];
    const known = resolve(model, w, this.pick);
    const { claim, ref } = known;
    const expected = holds(model, port.workerId, ref);

    let outcome: ClosingOutcome;
    let error: JobErrorBody;
    let decision: 'retry' | 'fail';
    let delayMs = 0;
    if (this.kind === 'interrupted') {
      // A release at shutdown: claimable again at once, never a failure.
      outcome = AttemptOutcome.Interrupted;
      error = toJobError(new WorkerShutdownError());
      decision = 'retry';
    } else {
      const permanent = this.kind === 'permanent';
      outcome = this.kind === 'timeout' ? AttemptOutcome.TimedOut : AttemptOutcome.Failed;
      error = toJobError(
        this.kind === 'timeout'
          ? new AttemptTimeoutError(claim.timeoutMs)
          : permanent
            ? new PermanentJobError('the input can never work', 'bad_input')
            : new Error('the handler failed'),
      );
      const failures = claim.failedAttempts + 1;
      decision = decideAfterFailure(failures, claim.maxAttempts, permanent);
      delayMs = retryDelayMs(failures, profile.retryBaseMs, profile.retryMaxMs, () => this.jitter);
    }

    const written =
      decision === 'fail'
        ? await port.fail(ref, outcome, error)
        : await port.scheduleRetry(ref, outcome, error, delayMs);

    expect({ attempt: known.key, by: port.workerId, written }).toEqual({
      attempt: known.key,
      by: port.workerId,
      written: expected,
    });
    if (expected) {
      const job = model.jobs.get(ref.jobId)!;
      const counts = outcome !== AttemptOutcome.Interrupted;
      job.records.push({ attempt: ref.attempt, workerId: port.workerId, outcome, code: error.code });
      job.live = null;
      if (counts) job.failedAttempts += 1;
      // The model's own rule: a permanent error fails the job, and so does a failure that uses up
      // max_attempts. The worker's decision (the production policy) must agree with it.
      const fails = this.kind === 'permanent' || (counts && job.failedAttempts >= job.maxAttempts);
      expect({ attempt: known.key, workerFailsTheJob: decision === 'fail' }).toEqual({
        attempt: known.key,
        workerFailsTheJob: fails,
      });
      if (fails) {
        job.state = 'failed';
        job.waiting = null;
        job.error = { code: error.code, body: error };
      } else {
        job.waiting = delayMs < SOON_MS ? 'soon' : 'later';
      }
    }
    forget(model, w, [known.key]);
    await afterStep(model, real, expected ? [ref.jobId] : []);
  }

  toString = (): string =>
    `${this.kind}(w${this.worker}, ${showPick(this.pick)}, jitter ${this.jitter.toFixed(3)})`;
}

/** The rescue sweep, from any worker; throttled, it runs only if no sweep took its turn in this sequence. */
class RescueCommand implements Cmd {
  constructor(
    readonly worker: number,
    readonly limit: number,
    readonly throttled: boolean,
  ) {}

  /** Worth running while some attempt is open, lapsed or not: the sweep must take exactly the lapsed ones. */
  check = (model: Readonly<Model>): boolean => [...model.jobs.values()].some((job) => job.live !== null);

  async run(model: Model, real: Real): Promise<void> {
    const port = real.ports[this.worker % model.held.length];
    const lapsed = [...model.jobs.values()].filter((job) => job.live?.lapsed);
    const takesTurn = !this.throttled || !model.swept;

    const rescued = await port.rescue(this.limit, this.throttled ? LONG_LEASE_MS : 0);

    if (!takesTurn) {
      expect(rescued).toEqual([]);
    } else {
      model.swept = true;
      expect(rescued).toHaveLength(Math.min(this.limit, lapsed.length));
      const rescuedIds = new Set(rescued.map((r) => r.jobId));
      for (const r of rescued) {
        const found = lapsed.find((candidate) => candidate.jobId === r.jobId);
        expect({ rescued: r, lapsed: found !== undefined }).toEqual({ rescued: r, lapsed: true });
        const job = found!;
        const fails = job.failedAttempts + 1 >= job.maxAttempts;
        expect(r).toEqual({
          jobId: job.jobId,
          jobType: 'noop',
          attempt: job.live!.attempt,
          workerId: job.live!.workerId,
          state: fails ? 'failed' : 'running',
        });
        job.records.push({
          attempt: r.attempt,
          workerId: r.workerId,
          outcome: 'lost',
          code: 'lease_expired',
        });
        job.failedAttempts += 1;
        job.live = null;
        if (fails) {
          job.state = 'failed';
          job.error = { code: 'lease_expired' };
        } else {
          // Back in its old place in the queue, which is in the past: due at once.
          job.waiting = 'due';
        }
      }
      // The sweep takes the oldest leases first.
      const leaseOf = (job: ModelJob): bigint => real.last.jobs.get(job.jobId)!.leaseUs!;
      const taken = lapsed.filter((job) => rescuedIds.has(job.jobId)).map(leaseOf);
      const left = lapsed.filter((job) => !rescuedIds.has(job.jobId)).map(leaseOf);
      for (const t of taken) for (const l of left) expect(t <= l).toBe(true);
    }
    await afterStep(
      model,
      real,
      rescued.map((r) => r.jobId),
    );
  }

  toString = (): string =>
    `rescue(w${this.worker}, limit ${this.limit}${this.throttled ? ', throttled' : ''})`;
}

const workerArb = fc.nat(2);
/** Mostly long leases; now and then one of a few milliseconds, which lapses before the next step. */
const leaseArb: fc.Arbitrary<number | null> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 20 }) },
);
const resultArb: fc.Arbitrary<fc.JsonValue> = fc.oneof(
  fc.constant(null),
  fc.integer(),
  fc.string({ maxLength: 8 }),
  fc.record({ n: fc.integer(), tags: fc.array(fc.string({ maxLength: 3 }), { maxLength: 2 }) }),
);
const claimArb = fc
  .tuple(workerArb, fc.integer({ min: 1, max: 3 }), leaseArb)
  .map(([w, limit, lease]): Cmd => new ClaimCommand(w, limit, lease));
const commandArbs: fc.Arbitrary<Cmd>[] = [
  claimArb,
  claimArb,
  fc.tuple(workerArb, leaseArb).map(([w, lease]): Cmd => new HeartbeatCommand(w, lease)),
  fc
    .tuple(
      workerArb,
      fc.array(pickArb, { minLength: 1, maxLength: 3 }),
      fc.array(resultArb, { minLength: 1, maxLength: 3 }),
    )
    .map(([w, picks, results]): Cmd => new CompleteCommand(w, picks, results)),
  ...[1, 2].map(() =>
    fc
      .tuple(
        workerArb,
        pickArb,
        fc.constantFrom<FailureKind>('retryable', 'permanent', 'timeout', 'interrupted'),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      )
      .map(([w, pick, kind, jitter]): Cmd => new FailCommand(w, pick, kind, jitter)),
  ),
  fc
    .tuple(workerArb, fc.integer({ min: 1, max: 4 }), fc.boolean())
    .map(([w, limit, throttled]): Cmd => new RescueCommand(w, limit, throttled)),
];

const scenarioArb = fc.record({
  workers: fc.integer({ min: 2, max: 3 }),
  jobs: fc.array(
    fc.record({ maxAttempts: fc.integer({ min: 1, max: 3 }), priority: fc.constantFrom(-1, 0, 1) }),
    { minLength: 1, maxLength: 4 },
  ),
});

describe('the attempt state machine under random sequences of worker actions', () => {
  let db: TestDatabase;
  let ports: WorkerPort[];
  let closers: (() => Promise<void>)[];

  beforeAll(async () => {
    db = await createTestDatabase();
    // One connection pool per worker, as separate worker processes would have.
    const opened = await Promise.all(WORKERS.map(() => openRepository(db.url, 1)));
    ports = opened.map(({ repository }, i) => workerPort(repository, WORKERS[i].workerId));
    closers = opened.map(({ close }) => close);
  });
  afterAll(async () => {
    await Promise.all(closers.map((close) => close()));
    await db.drop();
  });

  // A passing run takes well under a minute; the longer limit leaves a failing one time to shrink its
  // counterexample and print it with the seed.
  it('keeps both tables within the invariants and in step with the model after every step', async () => {
    const seed = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Date.now() % 2 ** 31;
    const property = fc.asyncProperty(
      scenarioArb,
      fc.commands(commandArbs, {
        maxCommands: MAX_COMMANDS,
        size: 'max',
        replayPath: process.env.FC_REPLAY_PATH,
      }),
      async (scenario, commands) => {
        await db.reset();
        await db.pool.query(`UPDATE rescue_sweeps SET last_swept_at = '-infinity'`);
        const model: Model = {
          jobs: new Map(),
          held: Array.from({ length: scenario.workers }, () => []),
          known: [],
          swept: false,
        };
        for (const spec of scenario.jobs) {
          const jobId = await insertJob(db.pool, spec);
          model.jobs.set(jobId, {
            jobId,
            maxAttempts: spec.maxAttempts,
            state: 'pending',
            attempts: 0,
            failedAttempts: 0,
            live: null,
            waiting: 'due',
            lastWorkerId: null,
            records: [],
          });
        }
        const real: Real = { db, ports, last: await readSnapshot(db) };
        checkAgainstModel(model, real.last);
        await fc.asyncModelRun(() => ({ model, real }), commands);
      },
    );
    try {
      await fc.assert(property, {
        seed,
        numRuns: RUNS,
        path: process.env.FC_PATH,
        includeErrorInReport: true,
      });
    } catch (failure) {
      throw new Error(`Reproduce with FC_SEED=${seed}\n${(failure as Error).message}`);
    }
  }, 300_000);
});
