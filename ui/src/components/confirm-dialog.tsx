import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';

export interface ConfirmRequest {
  title: string;
  body: ComponentChildren;
  confirmLabel: string;
  /** Offer a free-text reason (stored as the cancelled jobs' error message). */
  askReason?: boolean;
  onConfirm: (reason: string) => Promise<void>;
}

/**
 * A modal <dialog>: the browser keeps focus inside it and Escape closes it. The action runs only on the
 * explicit confirm button; its failure is shown in the dialog, which stays open.
 */
export function ConfirmDialog({ request, onClose }: { request: ConfirmRequest | null; onClose: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);

  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (request && !element.open) {
      setReason('');
      setFailure(null);
      setBusy(false);
      element.showModal();
    } else if (!request && element.open) {
      element.close();
    }
  }, [request]);

  const confirm = async (): Promise<void> => {
    if (!request) return;
    setBusy(true);
    setFailure(null);
    try {
      await request.onConfirm(reason.trim());
      onClose();
    } catch (error) {
      setFailure(error instanceof Error ? error.message : String(error));
    } finally {
      setBusy(false);
    }
  };

  return (
    <dialog ref={dialog} class="dialog" onClose={onClose} aria-labelledby="confirm-title">
      {request ? (
        <form
          method="dialog"
          onSubmit={(event) => {
            event.preventDefault();
            void confirm();
          }}
        >
          <h2 id="confirm-title">{request.title}</h2>
          <div class="dialog-body">{request.body}</div>
          {request.askReason ? (
            <label class="field">
              Reason (optional)
              <input
                type="text"
                maxLength={1000}
                value={reason}
                onInput={(event) => setReason(event.currentTarget.value)}
              />
            </label>
          ) : null}
          {failure ? (
            <p class="banner banner-error" role="alert">
              {failure}
            </p>
          ) : null}
          <div class="dialog-actions">
            <button type="button" class="button" onClick={onClose} disabled={busy}>
              Back
            </button>
            <button type="submit" class="button button-danger" disabled={busy}>
              {busy ? 'Working…' : request.confirmLabel}
            </button>
          </div>
        </form>
      ) : null}
    </dialog>
  );
}
