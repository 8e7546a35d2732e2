// The reviewers' workbench: sign-in, then the queue, a case (its chart), the conversation with the
// referrer and the opinion editor, each a page addressed by the URL's hash so the browser's back
// button and bookmarks work. Everything is read and written through the FHIR API with the person's token.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { completeSignIn, currentUser, accessToken, signIn, signOut, type User } from './auth.js';
import { CasePage } from './case-page.js';
import { Queue } from './queue.js';
import { loadSettings } from './settings.js';

function useRoute(): string[] {
  const parts = () => location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  const [route, setRoute] = useState(parts);
  useEffect(() => {
    const changed = () => setRoute(parts());
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return route;
}

function Shell({ user }: { user: User }) {
  const [page, id, tab] = useRoute();
  useEffect(() => document.querySelector<HTMLElement>('main h1')?.focus(), [page, id, tab]);
  return (
    <>
      <a class="skip" href="#main">
        Skip to the page
      </a>
      <header class="top">
        <a class="brand" href="#/">
          Second opinion workbench
        </a>
        <nav aria-label="Workbench">
          <a href="#/" aria-current={page ? undefined : 'page'}>
            Queue
          </a>
        </nav>
        <span class="who" data-role={user.role}>
          {user.name ?? user.username} · {user.role}
        </span>
        <button type="button" class="secondary" onClick={() => void signOut()}>
          Sign out
        </button>
      </header>
      <main id="main">{page === 'case' && id ? <CasePage taskId={id} tab={tab ?? 'chart'} user={user} /> : <Queue user={user} />}</main>
    </>
  );
}

async function start(): Promise<void> {
  const root = document.getElementById('app') as HTMLElement;
  const refusal = await completeSignIn();
  if (refusal) {
    root.textContent = '';
    render(
      <main class="refused">
        <h1>Sign-in refused</h1>
        <p role="alert">{refusal}</p>
        <button type="button" onClick={() => void signIn()}>
          Sign in again
        </button>
      </main>,
      root,
    );
    return;
  }
  if (!accessToken()) await signIn();
  await loadSettings();
  root.textContent = ''; // the loading line
  render(<Shell user={currentUser() as User} />, root);
}

void start();
