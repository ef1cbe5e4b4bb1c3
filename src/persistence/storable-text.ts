/**
 * What PostgreSQL can store as text or jsonb, and how to make a message storable. Its text types hold no
 * NUL character, and jsonb refuses the escape \u0000 and any escaped lone UTF-16 surrogate, which
 * JSON.stringify writes for a string holding half of a surrogate pair.
 */

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
// eslint-disable-next-line no-control-regex -- NUL is exactly what PostgreSQL cannot store
const NUL = /\u0000/g;
/** An escape jsonb refuses, preceded by an even number of backslashes (so it is an escape, not text). */
const UNSTORABLE_JSON_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

/** Why JSON text produced by JSON.stringify cannot be stored as jsonb, or null when it can. */
export function unstorableJsonReason(json: string): string | null {
  const escape = UNSTORABLE_JSON_ESCAPE.exec(json);
  if (!escape) return null;
  return /\\u0000$/i.test(escape[0])
    ? 'it contains the NUL character (\\u0000), which PostgreSQL cannot store'
    : 'it contains half of a UTF-16 surrogate pair (not a Unicode character), which PostgreSQL cannot store';
}

/**
 * The text with every NUL and every lone surrogate replaced by U+FFFD, cut to at most `maxLength`
 * UTF-16 units without splitting a surrogate pair.
 */
export function storableText(text: string, maxLength: number): string {
  let cut = text.length > maxLength ? text.slice(0, maxLength) : text;
  // A pair cut in two would leave its first half at the end.
  if (cut.length < text.length && /[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return cut.replace(NUL, '\ufffd').replace(LONE_SURROGATE, '\ufffd');
}
