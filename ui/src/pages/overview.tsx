import { api, JOB_STATES, type FinishesInMinute, type Stats } from '../api';
import { ProblemBanner } from '../components/problem-banner';
import { StateBadge } from '../components/state-badge';
import { ThroughputChart } from '../components/throughput-chart';
import { count, duration } from '../format';
import { usePolling } from '../poll';
import { href } from '../router';
import { loadThroughput } from '../throughput';

/** Queue health at a glance; every figure comes from counters, none from counting jobs. */
export function OverviewPage() {
  const stats = usePolling<Stats>(api.stats, 'stats');
  const throughput = usePolling<FinishesInMinute[]>(loadThroughput, 'throughput');
  const data = stats.data;
  const paused = data?.by_type.filter((type) => type.paused) ?? [];

  return (
    <section>
      <h1>Overview</h1>
      <ProblemBanner error={stats.error ?? throughput.error} />
      {data ? (
        <>
          <div class="cards">
            {JOB_STATES.map((state) => (
              <a class={`card card-${state}`} href={href('/jobs', { state })} key={state}>
                <span class="card-label">{state}</span>
                <span class="card-value" data-state-count={state}>
                  {count(data.by_state[state])}
                </span>
              </a>
            ))}
            <div class="card">
              <span class="card-label">oldest due job waits</span>
              <span class="card-value">
                {data.oldest_due_age_ms === null ? 'none due' : duration(data.oldest_due_age_ms)}
              </span>
            </div>
            <div class="card">
              <span class="card-label">finished, last minute</span>
              <span class="card-value">{count(data.finished_last_minute.completed)}</span>
              <span class="card-note">
                {count(data.finished_last_minute.failed)} failed ·{' '}
                {count(data.finished_last_minute.cancelled)} cancelled
              </span>
            </div>
          </div>

          <h2>Finished per minute</h2>
          {throughput.data ? <ThroughputChart minutes={throughput.data} /> : <p class="muted">Loading…</p>}

          <h2>Paused job types</h2>
          {paused.length === 0 ? (
            <p class="muted">None: workers claim every type.</p>
          ) : (
            <p class="paused-list">
              {paused.map((type) => (
                <a class="badge badge-paused" href={href('/job-types')} key={type.job_type}>
                  {type.job_type}
                </a>
              ))}
            </p>
          )}

          <h2>By job type</h2>
          <table class="table">
            <thead>
              <tr>
                <th>job type</th>
                {JOB_STATES.map((state) => (
                  <th class="number" key={state}>
                    {state}
                  </th>
                ))}
                <th />
              </tr>
            </thead>
            <tbody>
              {data.by_type.map((type) => (
                <tr key={type.job_type}>
                  <td>
                    <a href={href('/jobs', { job_type: type.job_type })}>{type.job_type}</a>
                  </td>
                  {JOB_STATES.map((state) => (
                    <td class="number" key={state}>
                      {type[state] === 0 ? (
                        <span class="muted">0</span>
                      ) : (
                        <a href={href('/jobs', { job_type: type.job_type, state })}>{count(type[state])}</a>
                      )}
                    </td>
                  ))}
                  <td>{type.paused ? <StateBadge state="paused" /> : null}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : stats.error ? null : (
        <p class="muted">Loading…</p>
      )}
    </section>
  );
}
