import type { Json } from './problems';

const TERMINAL = ['completed', 'failed', 'cancelled'];

/**
 * What is wrong with a job as the API shows it, by the rules the database enforces (SPEC: invariants),
 * or an empty list. For examples in the OpenAPI document as much as for real answers.
 */
export function jobInvariantViolations(job: Json): string[] {
  const problems: string[] = [];
  const terminal = TERMINAL.includes(job.state);
  if (job.state !== 'completed' && job.result !== null) problems.push(`a ${job.state} job has a result`);
  if ((job.error !== null) !== (job.state === 'failed' || job.state === 'cancelled')) {
    problems.push(`a ${job.state} job ${job.error === null ? 'has no' : 'has an'} error`);
  }
  if (job.state === 'cancelled' && job.error?.code !== 'cancelled')
    problems.push('cancelled, but error.code is not');
  if ((job.finished_at !== null) !== terminal)
    problems.push(`a ${job.state} job with finished_at ${job.finished_at}`);
  if (job.state === 'pending' && job.started_at !== null) problems.push('a pending job has started_at');
  if (['running', 'completed', 'failed'].includes(job.state) && job.started_at === null) {
    problems.push(`a ${job.state} job has no started_at`);
  }
  if ((job.started_at === null) !== (job.attempts === 0)) problems.push('started_at disagrees with attempts');
  if (job.next_attempt_at !== null && job.state !== 'running') {
    problems.push(`a ${job.state} job has next_attempt_at`);
  }
  const order = ['created_at', 'started_at', 'finished_at'].filter((field) => job[field] !== null);
  for (let i = 1; i < order.length; i++) {
    if (Date.parse(job[order[i]]) < Date.parse(job[order[i - 1]]))
      problems.push(`${order[i]} before ${order[i - 1]}`);
  }
  if (Date.parse(job.updated_at) < Date.parse(job.created_at)) problems.push('updated_at before created_at');

  const history = job.attempt_history as Json[] | undefined;
  if (history) {
    const numbers = history.map((attempt) => attempt.attempt as number);
    if (numbers.some((n, i) => i > 0 && n <= numbers[i - 1]))
      problems.push('attempt numbers do not increase');
    if (numbers.some((n) => n > job.attempts)) problems.push('an attempt numbered above attempts');
    const running = history.filter((attempt) => attempt.outcome === 'running');
    if (running.length > 1) problems.push('more than one live attempt');
    if (running.length === 1) {
      if (running[0] !== history[history.length - 1]) problems.push('the live attempt is not the last');
      if (job.state !== 'running') problems.push(`a ${job.state} job has a live attempt`);
      if (job.next_attempt_at !== null) problems.push('next_attempt_at during a live attempt');
      if (running[0].finished_at !== null) problems.push('a running attempt has finished_at');
    }
    for (const attempt of history) {
      if (attempt.outcome !== 'running' && attempt.finished_at === null)
        problems.push('a closed attempt without finished_at');
      if ((attempt.error === null) !== (attempt.outcome === 'running' || attempt.outcome === 'succeeded')) {
        problems.push(
          `an attempt ${attempt.outcome} ${attempt.error === null ? 'without' : 'with'} an error`,
        );
      }
      if (attempt.outcome === 'succeeded' && job.state !== 'completed')
        problems.push('a succeeded attempt of an unfinished job');
    }
  }
  return problems;
}
