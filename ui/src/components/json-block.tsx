import { json } from '../format';

export function JsonBlock({ value, label }: { value: unknown; label: string }) {
  return (
    <pre class="json" aria-label={label}>
      {json(value)}
    </pre>
  );
}
