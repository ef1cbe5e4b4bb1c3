import { useState } from 'preact/hooks';
import { api, ApiError, type JobType, type Stats } from '../api';
import { NoticeBar, type Notice } from '../actions';
import { JsonBlock } from '../components/json-block';
import { ProblemBanner } from '../components/problem-banner';
import { StateBadge } from '../components/state-badge';
import { count } from '../format';
import { usePolling } from '../poll';
import { href } from '../router';
import { useCanOperate } from '../session';

interface JobTypesView {
  types: JobType[];
  stats: Stats;
}

const loadView = async (): Promise<JobTypesView> => {
  const [types, stats] = await Promise.all([api.jobTypes(), api.stats()]);
  return { types, stats };
};

export function JobTypesPage() {
  const canOperate = useCanOperate();
  const view = usePolling<JobTypesView>(loadView, 'job-types');
  const [notice, setNotice] = useState<Notice | null>(null);
  const [busy, setBusy] = useState<string | null>(null);

  const toggle = async (type: JobType): Promise<void> => {
    setBusy(type.job_type);
    try {
      const after = type.paused ? await api.resume(type.job_type) : await api.pause(type.job_type);
      setNotice({
        kind: 'ok',
        text: after.paused
          ? `${type.job_type} paused: workers claim none of its jobs; running attempts finish.`
          : `${type.job_type} resumed: workers claim its jobs again.`,
      });
      view.refresh();
    } catch (error) {
      setNotice({
        kind: 'error',
        text: error instanceof ApiError ? `${error.status} ${error.title}: ${error.detail}` : String(error),
      });
    } finally {
      setBusy(null);
    }
  };

  return (
    <section>
      <h1>Job types</h1>
      <NoticeBar notice={notice} onDismiss={() => setNotice(null)} />
      <ProblemBanner error={view.error} />
      {view.data ? (
        <div class="type-list">
          {view.data.types.map((type) => {
            const counts = view.data!.stats.by_type.find((entry) => entry.job_type === type.job_type);
            return (
              <article class="type-card" data-job-type={type.job_type} key={type.job_type}>
                <header class="title-row">
                  <h2>
                    <a href={href('/jobs', { job_type: type.job_type })}>{type.job_type}</a>
                  </h2>
                  <StateBadge state={type.paused ? 'paused' : 'active'} />
                  <span class="toolbar-spacer" />
                  {canOperate ? (
                    <button
                      type="button"
                      class={`button ${type.paused ? 'button-primary' : ''}`}
                      disabled={busy === type.job_type}
                      onClick={() => void toggle(type)}
                    >
                      {type.paused ? 'Resume' : 'Pause'}
                    </button>
                  ) : null}
                </header>
                <p>{type.description}</p>
                {counts ? (
                  <p class="muted">
                    {count(counts.pending)} pending · {count(counts.running)} running ·{' '}
                    {count(counts.completed)} completed · {count(counts.failed)} failed ·{' '}
                    {count(counts.cancelled)} cancelled
                  </p>
                ) : null}
                <details>
                  <summary>Payload schema</summary>
                  <JsonBlock value={type.payload_schema} label={`${type.job_type} payload schema`} />
                </details>
              </article>
            );
          })}
        </div>
      ) : view.error ? null : (
        <p class="muted">Loading…</p>
      )}
    </section>
  );
}
