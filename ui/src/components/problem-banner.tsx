import type { ApiError } from '../api';

/** What went wrong with the last call, in the API's own words (its problem document). */
export function ProblemBanner({ error }: { error: ApiError | undefined }) {
  if (!error) return null;
  const forbidden = error.status === 403;
  return (
    <div class={`banner ${forbidden ? 'banner-warn' : 'banner-error'}`} role="alert">
      <strong>
        {error.status ? `${error.status} ` : ''}
        {error.title}
      </strong>
      {error.detail ? <span> {error.detail}</span> : null}
    </div>
  );
}
