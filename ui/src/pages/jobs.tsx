import { useMemo } from 'preact/hooks';
import {
  api,
  isTerminal,
  JOB_STATES,
  type Job,
  type JobFilter,
  type JobPage,
  type JobState,
  type Stats,
} from '../api';
import { NoticeBar, useActions } from '../actions';
import { ConfirmDialog } from '../components/confirm-dialog';
import { ProblemBanner } from '../components/problem-banner';
import { StateBadge } from '../components/state-badge';
import { Time } from '../components/time';
import { count, duration, shortId } from '../format';
import { usePolling } from '../poll';
import { href, navigate, type Route } from '../router';
import { useCanOperate } from '../session';
import { jobTypeNames } from '../job-type-names';

const PAGE_SIZE = 25;

/**
 * Cursors of the pages before the current one, newest first, for "Newer": the API pages forward only
 * (keyset), so the way back is remembered here. Lost on reload; "Newest" always works.
 */
const newer = { filterKey: '', cursors: [] as string[] };
const newerPagesOf = (filterKey: string): string[] => {
  if (newer.filterKey !== filterKey) newer.cursors = [];
  newer.filterKey = filterKey;
  return newer.cursors;
};

/** Which unfinished jobs a bulk cancel by this filter hits; null when the API would refuse it. */
function bulkCancelFilter(filter: JobFilter): { job_type?: string; state?: 'pending' | 'running' } | null {
  if (filter.state && filter.state !== 'pending' && filter.state !== 'running') return null;
  if (!filter.state && !filter.job_type) return null;
  return { job_type: filter.job_type, state: filter.state as 'pending' | 'running' | undefined };
}

/** Jobs of `state` (and `jobType`, if given) right now, from the counters behind GET /stats. */
function countInState(stats: Stats, state: JobState, jobType: string | undefined): number {
  const counts = jobType ? stats.by_type.find((type) => type.job_type === jobType) : stats.by_state;
  return counts ? counts[state] : 0;
}

/**
 * How many jobs a bulk cancel by `filter` would hit now, exact: from the counters behind GET /stats (jobs
 * per type and state), never a count over the jobs table. Jobs created after this and before the confirm
 * that match the filter are cancelled too; the answer of the cancel says how many were.
 */
async function countMatching(filter: { job_type?: string; state?: 'pending' | 'running' }): Promise<number> {
  const stats = await api.stats();
  return filter.state
    ? countInState(stats, filter.state, filter.job_type)
    : countInState(stats, 'pending', filter.job_type) + countInState(stats, 'running', filter.job_type);
}

/** A state-filtered page is asked for again at least this often even when its count has not moved. */
const UNCHANGED_LIST_REFRESH_MS = 30_000;

/**
 * Loads a page of the list. Nothing indexes a job's state (so that finishing a job writes no index), so
 * `GET /jobs?state=` walks the jobs newest first until it has a page: cheap for a common state, a long
 * walk at 10 million jobs for a rare one. So a state-filtered list first reads the exact count of its
 * state from GET /stats (counters, cheap at any size): none, and the list is not asked for at all; the
 * same count as at the last refresh, and it is asked for only every 30 s. Unfiltered and type-filtered
 * lists follow an index and are asked for on every refresh.
 */
function pageLoader(filter: JobFilter, cursor: string | undefined) {
  let last: { page: JobPage; count: number; at: number } | undefined;
  return async (): Promise<JobPage> => {
    if (!filter.state) return api.jobs(filter, cursor, PAGE_SIZE);
    const count = countInState(await api.stats(), filter.state, filter.job_type);
    if (count === 0) return { items: [], next_cursor: null };
    if (last && last.count === count && Date.now() - last.at < UNCHANGED_LIST_REFRESH_MS) return last.page;
    const page = await api.jobs(filter, cursor, PAGE_SIZE);
    last = { page, count, at: Date.now() };
    return page;
  };
}

export function JobsPage({ route }: { route: Route }) {
  const canOperate = useCanOperate();
  const filter: JobFilter = {
    state: (JOB_STATES as string[]).includes(route.params.get('state') ?? '')
      ? (route.params.get('state') as JobState)
      : undefined,
    job_type: route.params.get('job_type') || undefined,
  };
  const cursor = route.params.get('cursor') || undefined;
  const newerPages = newerPagesOf(JSON.stringify([filter.state, filter.job_type]));
  const pageKey = JSON.stringify([filter.state, filter.job_type, cursor]);
  const loadPage = useMemo(() => pageLoader(filter, cursor), [pageKey]);
  const page = usePolling<JobPage>(loadPage, pageKey);
  const types = usePolling<string[]>(jobTypeNames, 'job-types', 60_000);
  const actions = useActions(page.refresh);
  const bulk = bulkCancelFilter(filter);

  const go = (next: { state?: string; job_type?: string; cursor?: string }): void =>
    navigate('/jobs', { state: next.state, job_type: next.job_type, cursor: next.cursor });
  const setFilter = (next: JobFilter): void => {
    newerPages.length = 0;
    go({ state: next.state, job_type: next.job_type });
  };

  const askBulkCancel = async (): Promise<void> => {
    if (!bulk) return;
    let matching: number;
    try {
      matching = await countMatching(bulk);
    } catch (error) {
      actions.failed(error);
      return;
    }
    const described = [
      bulk.state ? `${bulk.state}` : 'pending and running',
      bulk.job_type ? `jobs of type ${bulk.job_type}` : 'jobs of every type',
    ].join(' ');
    actions.setConfirming({
      title: `Cancel ${count(matching)} ${matching === 1 ? 'job' : 'jobs'}?`,
      body: (
        <>
          <p>
            Cancels all <strong>{described}</strong>:{' '}
            <strong data-testid="bulk-count">{count(matching)}</strong> right now. Running attempts are
            stopped by their workers.
          </p>
          <p class="muted">Matching jobs created before you confirm are cancelled too.</p>
        </>
      ),
      confirmLabel: `Cancel ${matching === 1 ? 'job' : 'jobs'}`,
      askReason: true,
      onConfirm: async (reason) => {
        const { matched } = await api.cancelMatching({ ...bulk, reason: reason || undefined });
        actions.setNotice({ kind: 'ok', text: `${count(matched)} jobs cancelled or being stopped.` });
        page.refresh();
      },
    });
  };

  const items = page.data?.items ?? [];
  const knownTypes = types.data ?? [];
  const typeOptions =
    filter.job_type && !knownTypes.includes(filter.job_type) ? [...knownTypes, filter.job_type] : knownTypes;

  return (
    <section>
      <h1>Jobs</h1>
      <div class="toolbar">
        <label class="field-inline">
          State
          <select
            name="state"
            value={filter.state ?? ''}
            onChange={(event) =>
              setFilter({
                ...filter,
                state: (event.currentTarget.value || undefined) as JobState | undefined,
              })
            }
          >
            <option value="">any</option>
            {JOB_STATES.map((state) => (
              <option value={state} key={state}>
                {state}
              </option>
            ))}
          </select>
        </label>
        <label class="field-inline">
          Job type
          <select
            name="job_type"
            value={filter.job_type ?? ''}
            onChange={(event) => setFilter({ ...filter, job_type: event.currentTarget.value || undefined })}
          >
            <option value="">any</option>
            {typeOptions.map((jobType) => (
              <option value={jobType} key={jobType}>
                {jobType}
              </option>
            ))}
          </select>
        </label>
        <span class="toolbar-spacer" />
        <span class="live" title="This page asks again every 5 seconds">
          live
        </span>
        {canOperate && bulk ? (
          <button type="button" class="button button-danger" onClick={() => void askBulkCancel()}>
            Cancel matching…
          </button>
        ) : null}
      </div>

      <NoticeBar notice={actions.notice} onDismiss={() => actions.setNotice(null)} />
      <ProblemBanner error={page.error} />

      <table class="table jobs-table">
        <thead>
          <tr>
            <th>job</th>
            <th>type</th>
            <th>state</th>
            <th class="number">attempts</th>
            <th class="number">priority</th>
            <th>created</th>
            <th>took</th>
            <th>error</th>
            {canOperate ? <th /> : null}
          </tr>
        </thead>
        <tbody>
          {items.map((job) => (
            <JobRow job={job} key={job.job_id} canOperate={canOperate} actions={actions} />
          ))}
        </tbody>
      </table>
      {page.data && items.length === 0 ? <p class="muted empty">No jobs match.</p> : null}
      {!page.data && !page.error ? <p class="muted">Loading…</p> : null}

      <nav class="pager" aria-label="Pages">
        <button
          type="button"
          class="button"
          disabled={!cursor}
          onClick={() => {
            newerPages.length = 0;
            go({ ...filter });
          }}
        >
          « Newest
        </button>
        <button
          type="button"
          class="button"
          disabled={!cursor || newerPages.length === 0}
          onClick={() => go({ ...filter, cursor: newerPages.shift() || undefined })}
        >
          ‹ Newer
        </button>
        <button
          type="button"
          class="button"
          disabled={!page.data?.next_cursor}
          onClick={() => {
            newerPages.unshift(cursor ?? '');
            go({ ...filter, cursor: page.data!.next_cursor! });
          }}
        >
          Older ›
        </button>
      </nav>
      <ConfirmDialog request={actions.confirming} onClose={() => actions.setConfirming(null)} />
    </section>
  );
}

function JobRow({
  job,
  canOperate,
  actions,
}: {
  job: Job;
  canOperate: boolean;
  actions: ReturnType<typeof useActions>;
}) {
  const took =
    job.started_at && job.finished_at
      ? duration(new Date(job.finished_at).getTime() - new Date(job.started_at).getTime())
      : null;
  return (
    <tr data-job-id={job.job_id}>
      <td>
        <a class="mono" href={href(`/jobs/${job.job_id}`)} title={job.job_id}>
          …{shortId(job.job_id)}
        </a>
      </td>
      <td>{job.job_type}</td>
      <td>
        <StateBadge state={job.state} />
        {job.cancel_requested_at && !isTerminal(job.state) ? <span class="muted"> stopping</span> : null}
      </td>
      <td class="number">
        {job.attempts}/{job.max_attempts}
      </td>
      <td class="number">{job.priority}</td>
      <td>
        <Time at={job.created_at} />
      </td>
      <td>{took ?? <span class="muted">–</span>}</td>
      <td class="error-cell">{job.error ? <code title={job.error.message}>{job.error.code}</code> : null}</td>
      {canOperate ? (
        <td class="row-actions">
          {!isTerminal(job.state) ? (
            <button type="button" class="button button-small" onClick={() => actions.cancelJob(job)}>
              Cancel
            </button>
          ) : null}
          {job.state === 'failed' || job.state === 'cancelled' ? (
            <button type="button" class="button button-small" onClick={() => void actions.retryJob(job)}>
              Retry
            </button>
          ) : null}
        </td>
      ) : null}
    </tr>
  );
}
