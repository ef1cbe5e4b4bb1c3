import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { api, ApiError, isTerminal, type Job } from './api';
import type { ConfirmRequest } from './components/confirm-dialog';
import { shortId } from './format';
import { navigate } from './router';

export interface Notice {
  kind: 'ok' | 'error';
  text: ComponentChildren;
}

/** A page's last action outcome and its confirmation dialog. */
export function useActions(afterChange: () => void) {
  const [confirming, setConfirming] = useState<ConfirmRequest | null>(null);
  const [notice, setNotice] = useState<Notice | null>(null);

  const failed = (error: unknown): void =>
    setNotice({
      kind: 'error',
      text: error instanceof ApiError ? `${error.status} ${error.title}: ${error.detail}` : String(error),
    });

  const cancelJob = (job: Job): void =>
    setConfirming({
      title: `Cancel job …${shortId(job.job_id)}?`,
      body: (
        <p>
          A {job.state} <code>{job.job_type}</code> job.{' '}
          {job.state === 'running'
            ? 'Its worker stops the running attempt within about a second; if the handler finishes first, the job keeps that outcome.'
            : 'No worker will run it.'}
        </p>
      ),
      confirmLabel: 'Cancel job',
      askReason: true,
      onConfirm: async (reason) => {
        const after = await api.cancel(job.job_id, reason || undefined);
        setNotice({
          kind: 'ok',
          text: isTerminal(after.state) ? 'Job cancelled.' : 'Cancel requested: the worker is stopping it.',
        });
        afterChange();
      },
    });

  const retryJob = async (job: Job): Promise<void> => {
    try {
      const created = await api.retry(job.job_id);
      navigate(`/jobs/${created.job_id}`);
    } catch (error) {
      failed(error);
    }
  };

  return { confirming, setConfirming, notice, setNotice, failed, cancelJob, retryJob };
}

export function NoticeBar({ notice, onDismiss }: { notice: Notice | null; onDismiss: () => void }) {
  if (!notice) return null;
  return (
    <div class={`banner ${notice.kind === 'ok' ? 'banner-ok' : 'banner-error'}`} role="status">
      <span>{notice.text}</span>
      <button type="button" class="link-button" onClick={onDismiss} aria-label="Dismiss">
        ×
      </button>
    </div>
  );
}
