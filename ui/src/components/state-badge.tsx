/** A job state or an attempt outcome, coloured by what it means. */
export function StateBadge({ state }: { state: string }) {
  return <span class={`badge badge-${state}`}>{state.replace('_', ' ')}</span>;
}
