import { api, isTerminal, type Attempt, type JobDetail } from '../api';
import { NoticeBar, useActions } from '../actions';
import { ConfirmDialog } from '../components/confirm-dialog';
import { JsonBlock } from '../components/json-block';
import { ProblemBanner } from '../components/problem-banner';
import { StateBadge } from '../components/state-badge';
import { Time } from '../components/time';
import { count, duration, shortId, timestamp } from '../format';
import { usePolling } from '../poll';
import { href } from '../router';
import { useCanOperate } from '../session';

/**
 * An unfinished job is asked for again every second, so that a cancel or a new attempt shows at once; a
 * finished one rarely (only its callback's delivery can still change).
 */
const refreshAfter = (job: JobDetail): number => (isTerminal(job.state) ? 10_000 : 1_000);

export function JobDetailPage({ jobId }: { jobId: string }) {
  const canOperate = useCanOperate();
  const job = usePolling<JobDetail>(() => api.job(jobId), jobId, refreshAfter);
  const actions = useActions(job.refresh);
  const data = job.data;

  return (
    <section>
      <p class="breadcrumb">
        <a href={href('/jobs')}>Jobs</a> ›
      </p>
      <ProblemBanner error={job.error} />
      <NoticeBar notice={actions.notice} onDismiss={() => actions.setNotice(null)} />
      {data ? (
        <>
          <div class="title-row">
            <h1>
              <span class="mono">{data.job_id}</span>
            </h1>
            <StateBadge state={data.state} />
            {data.cancel_requested_at && !isTerminal(data.state) ? (
              <span class="muted">cancel requested: stopping</span>
            ) : null}
            <span class="toolbar-spacer" />
            {canOperate && !isTerminal(data.state) ? (
              <button type="button" class="button button-danger" onClick={() => actions.cancelJob(data)}>
                Cancel
              </button>
            ) : null}
            {canOperate && (data.state === 'failed' || data.state === 'cancelled') ? (
              <button type="button" class="button button-primary" onClick={() => void actions.retryJob(data)}>
                Retry
              </button>
            ) : null}
          </div>

          <dl class="facts">
            <Fact label="type">
              <a href={href('/jobs', { job_type: data.job_type })}>{data.job_type}</a>
            </Fact>
            <Fact label="attempts">
              {data.attempts} of {data.max_attempts}
            </Fact>
            <Fact label="priority">{data.priority}</Fact>
            <Fact label="timeout">{duration(data.timeout_ms)}</Fact>
            <Fact label="run at">
              <Time at={data.run_at} />
            </Fact>
            <Fact label="created">
              <Time at={data.created_at} />
            </Fact>
            <Fact label="started">
              <Time at={data.started_at} />
            </Fact>
            <Fact label="finished">
              <Time at={data.finished_at} />
            </Fact>
            <Fact label="next attempt">
              <Time at={data.next_attempt_at} />
            </Fact>
            <Fact label="cancel requested">
              <Time at={data.cancel_requested_at} />
            </Fact>
            <Fact label="retry of">
              {data.retry_of ? (
                <a class="mono" href={href(`/jobs/${data.retry_of}`)} title={data.retry_of}>
                  …{shortId(data.retry_of)}
                </a>
              ) : (
                <span class="muted">–</span>
              )}
            </Fact>
            <Fact label="callback">
              {data.callback ? (
                <span>
                  <StateBadge state={data.callback.state} /> {count(data.callback.attempts)} attempts ·{' '}
                  <span class="mono">{data.callback.url}</span>
                </span>
              ) : (
                <span class="muted">none</span>
              )}
            </Fact>
          </dl>

          <div class="columns">
            <div>
              <h2>Payload</h2>
              <JsonBlock value={data.payload} label="payload" />
            </div>
            <div>
              {data.error ? (
                <>
                  <h2>Error</h2>
                  <div class="error-box">
                    <code>{data.error.code}</code>
                    <p>{data.error.message}</p>
                  </div>
                </>
              ) : (
                <>
                  <h2>Result</h2>
                  {data.state === 'completed' ? (
                    <JsonBlock value={data.result} label="result" />
                  ) : (
                    <p class="muted">Not finished.</p>
                  )}
                </>
              )}
            </div>
          </div>

          <h2>Attempts</h2>
          <AttemptTimeline attempts={data.attempt_history} />
        </>
      ) : job.error ? null : (
        <p class="muted">Loading…</p>
      )}
      <ConfirmDialog request={actions.confirming} onClose={() => actions.setConfirming(null)} />
    </section>
  );
}

function Fact({ label, children }: { label: string; children: preact.ComponentChildren }) {
  return (
    <div class="fact">
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

/** Each attempt on one line: when, on which worker, how long, and how it ended. */
function AttemptTimeline({ attempts }: { attempts: Attempt[] }) {
  if (attempts.length === 0) return <p class="muted">No attempt yet.</p>;
  return (
    <ol class="timeline">
      {attempts.map((attempt) => {
        const ended = attempt.finished_at ? new Date(attempt.finished_at).getTime() : Date.now();
        const took = ended - new Date(attempt.started_at).getTime();
        return (
          <li class={`timeline-item outcome-${attempt.outcome}`} key={attempt.attempt}>
            <div class="timeline-head">
              <strong>#{attempt.attempt}</strong>
              <StateBadge state={attempt.outcome} />
              <span>{attempt.finished_at ? duration(took) : `${duration(took)} so far`}</span>
              <span class="muted" title={timestamp(attempt.started_at)}>
                started <Time at={attempt.started_at} />
              </span>
              <span class="muted">
                on <span class="mono">{attempt.worker_id}</span>
              </span>
            </div>
            {attempt.error ? (
              <div class="timeline-error">
                <code>{attempt.error.code}</code> {attempt.error.message}
              </div>
            ) : null}
          </li>
        );
      })}
    </ol>
  );
}
