import { TextDecoder } from 'node:util';
import { unstorableJsonReason, storableText } from '../../persistence/storable-text';

/**
 * A response body as a job result: the parsed JSON when the response says it is JSON and all of it
 * arrived (and PostgreSQL can store it), else the text, in the charset the response names (UTF-8 by
 * default), without a character cut in half at the end and with what PostgreSQL cannot store replaced.
 */
export function responseBody(bytes: Buffer, truncated: boolean, contentType: string | undefined): unknown {
  const text = decodeText(bytes, contentType);
  if (!truncated && isJson(contentType)) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (unstorableJsonReason(JSON.stringify(parsed)) === null) return parsed;
    } catch {
      // Not JSON after all: kept as the text it is.
    }
  }
  return storableText(text, Number.MAX_SAFE_INTEGER);
}

/** `application/json`, `application/problem+json` and other `+json` types. */
function isJson(contentType: string | undefined): boolean {
  const mediaType = contentType?.split(';')[0].trim().toLowerCase() ?? '';
  return mediaType === 'application/json' || /^[a-z]+\/[^;]+\+json$/.test(mediaType);
}

function decodeText(bytes: Buffer, contentType: string | undefined): string {
  const charset = /;\s*charset="?([^";\s]+)"?/i.exec(contentType ?? '')?.[1];
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(charset ?? 'utf-8');
  } catch {
    decoder = new TextDecoder('utf-8');
  }
  // `stream: true` holds back the bytes of a character the cut split, instead of showing a broken one.
  return decoder.decode(bytes, { stream: true });
}
