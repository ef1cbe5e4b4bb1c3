import { useEffect, useMemo, useState } from 'preact/hooks';

/**
 * Routes live in the URL's fragment (#/jobs?state=failed): the server has one page to serve, reloads and
 * shared links land on the same view, and nothing in the fragment is ever sent to the server.
 */
export interface Route {
  path: string;
  params: URLSearchParams;
}

function routeOf(fragment: string): Route {
  const hash = fragment.replace(/^#/, '') || '/';
  const [path, search = ''] = hash.split('?', 2);
  return { path, params: new URLSearchParams(search) };
}

export function href(path: string, params: Record<string, string | undefined> = {}): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) search.set(name, value);
  const text = search.toString();
  return `#${path}${text ? `?${text}` : ''}`;
}

export function navigate(path: string, params: Record<string, string | undefined> = {}): void {
  location.hash = href(path, params);
}

export function useRoute(): Route {
  const [fragment, setFragment] = useState(() => location.hash);
  useEffect(() => {
    const changed = (): void => setFragment(location.hash);
    addEventListener('hashchange', changed);
    // The effect runs after the first paint: a change in between fired its event before anyone listened
    // (a link followed while the page was still loading), so read the fragment again now.
    changed();
    return () => removeEventListener('hashchange', changed);
  }, []);
  return useMemo(() => routeOf(fragment), [fragment]);
}
