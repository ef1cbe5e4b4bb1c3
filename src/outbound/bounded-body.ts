import type { Readable } from 'node:stream';

export interface BoundedBody {
  bytes: Buffer;
  /** True when the response was longer than the bound; `bytes` holds its first `maxBytes`. */
  truncated: boolean;
}

/**
 * Reads at most `maxBytes` of a response body, then stops reading and destroys the stream (closing its
 * connection), so a response of any size costs at most `maxBytes` of memory.
 */
export async function readBounded(body: Readable, maxBytes: number): Promise<BoundedBody> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of body) {
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      if (length + buffer.length > maxBytes) {
        chunks.push(buffer.subarray(0, maxBytes - length));
        return { bytes: Buffer.concat(chunks, maxBytes), truncated: true };
      }
      chunks.push(buffer);
      length += buffer.length;
    }
  } finally {
    // Leaving the loop early (cut, abort, error) must not leave the rest of the response arriving.
    if (!body.readableEnded) discard(body);
  }
  return { bytes: Buffer.concat(chunks, length), truncated: false };
}

/** Drops a body unread and closes its connection; the abort this raises on the stream is expected. */
export function discard(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}
