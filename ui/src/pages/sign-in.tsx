import { useState } from 'preact/hooks';
import { api, ApiError, type Whoami } from '../api';

/**
 * Asks for an API key and checks it with GET /auth/whoami before keeping it. The form is handled here
 * and never submitted, so the key goes nowhere but into the Authorization header of API calls.
 */
export function SignInPage({
  onSignedIn,
  reason,
}: {
  onSignedIn: (key: string, whoami: Whoami) => void;
  reason: string | null;
}) {
  const [key, setKey] = useState('');
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (): Promise<void> => {
    const entered = key.trim();
    if (!entered) return;
    setBusy(true);
    setFailure(null);
    try {
      onSignedIn(entered, await api.whoami(entered));
    } catch (error) {
      setFailure(
        error instanceof ApiError && error.status === 401
          ? 'This key is not accepted.'
          : error instanceof Error
            ? error.message
            : String(error),
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="sign-in">
      <form
        class="sign-in-form"
        onSubmit={(event) => {
          event.preventDefault();
          void submit();
        }}
      >
        <h1>Job service</h1>
        <p class="muted">Sign in with an API key. It is kept in this tab only, until you close it.</p>
        {reason ? (
          <p class="banner banner-warn" role="alert">
            {reason}
          </p>
        ) : null}
        <label class="field">
          API key
          <input
            type="password"
            name="api-key"
            autocomplete="off"
            spellcheck={false}
            required
            value={key}
            onInput={(event) => setKey(event.currentTarget.value)}
          />
        </label>
        {failure ? (
          <p class="banner banner-error" role="alert">
            {failure}
          </p>
        ) : null}
        <button type="submit" class="button button-primary" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
