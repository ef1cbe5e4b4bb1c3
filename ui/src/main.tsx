import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, session, whenUnauthorized, type Whoami } from './api';
import { JobDetailPage } from './pages/job-detail';
import { JobTypesPage } from './pages/job-types';
import { JobsPage } from './pages/jobs';
import { OverviewPage } from './pages/overview';
import { SignInPage } from './pages/sign-in';
import { href, useRoute } from './router';
import { SessionContext, type Session } from './session';
import './styles.css';

type Status =
  | { kind: 'checking' }
  | { kind: 'signed-out'; reason: string | null }
  | { kind: 'unreachable'; message: string }
  | { kind: 'signed-in'; session: Session };

const signedIn = (whoami: Whoami): Status => ({
  kind: 'signed-in',
  session: { scope: whoami.scope, keyRequired: whoami.key_required },
});

function App() {
  const [status, setStatus] = useState<Status>({ kind: 'checking' });

  useEffect(() => {
    whenUnauthorized(() => {
      session.signOut();
      setStatus({ kind: 'signed-out', reason: 'The API no longer accepts this key: sign in again.' });
    });
    // A stored key is checked again (it may have been revoked); with none, the API may need none.
    api.whoami(session.key()).then(
      (whoami) => setStatus(signedIn(whoami)),
      (error: unknown) => {
        if (error instanceof ApiError && error.status === 401) {
          const hadKey = session.key() !== null;
          session.signOut();
          setStatus({ kind: 'signed-out', reason: hadKey ? 'This key is no longer accepted.' : null });
        } else {
          setStatus({ kind: 'unreachable', message: error instanceof Error ? error.message : String(error) });
        }
      },
    );
  }, []);

  if (status.kind === 'checking') return <p class="muted center">Connecting…</p>;
  if (status.kind === 'unreachable') {
    return (
      <p class="banner banner-error center" role="alert">
        {status.message}
      </p>
    );
  }
  if (status.kind === 'signed-out') {
    return (
      <SignInPage
        reason={status.reason}
        onSignedIn={(key, whoami) => {
          session.signIn(key);
          setStatus(signedIn(whoami));
        }}
      />
    );
  }
  return (
    <SessionContext.Provider value={status.session}>
      <Shell
        session={status.session}
        onSignOut={() => {
          session.signOut();
          setStatus({ kind: 'signed-out', reason: null });
        }}
      />
    </SessionContext.Provider>
  );
}

function Shell({ session: current, onSignOut }: { session: Session; onSignOut: () => void }) {
  const route = useRoute();
  const jobMatch = /^\/jobs\/([^/]+)$/.exec(route.path);
  const section =
    jobMatch || route.path === '/jobs' ? 'jobs' : route.path === '/job-types' ? 'types' : 'overview';
  const link = (name: string, target: string, label: string) => (
    <a
      href={href(target)}
      class={section === name ? 'active' : undefined}
      aria-current={section === name ? 'page' : undefined}
    >
      {label}
    </a>
  );

  return (
    <>
      <header class="topbar">
        <span class="brand">Job service</span>
        <nav class="nav">
          {link('overview', '/', 'Overview')}
          {link('jobs', '/jobs', 'Jobs')}
          {link('types', '/job-types', 'Job types')}
        </nav>
        <span class="toolbar-spacer" />
        <span class="scope" title="What this key may do">
          {current.keyRequired ? `key scope: ${current.scope}` : 'no key needed'}
          {current.scope === 'admin' ? '' : ' (read-only)'}
        </span>
        {current.keyRequired ? (
          <button type="button" class="button button-small" onClick={onSignOut}>
            Sign out
          </button>
        ) : null}
      </header>
      <main class="content">
        {jobMatch ? (
          <JobDetailPage jobId={decodeURIComponent(jobMatch[1])} key={jobMatch[1]} />
        ) : route.path === '/jobs' ? (
          <JobsPage route={route} />
        ) : route.path === '/job-types' ? (
          <JobTypesPage />
        ) : (
          <OverviewPage />
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
