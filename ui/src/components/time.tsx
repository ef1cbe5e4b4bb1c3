import { relative, timestamp } from '../format';

/** A moment as "12 s ago", with the exact local time on hover. */
export function Time({ at }: { at: string | null | undefined }) {
  if (!at) return <span class="muted">–</span>;
  return (
    <time dateTime={at} title={timestamp(at)}>
      {relative(at)}
    </time>
  );
}
