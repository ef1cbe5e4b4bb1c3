/**
 * What PostgreSQL can store as text or jsonb, and how to make a message storable. Its text types hold no
 * NUL character, and jsonb refuses the escape \u0000 and any escaped lone UTF-16 surrogate, which
 * JSON.stringify writes for a string holding half of a surrogate pair.
 */

/** With the `u` flag a class of surrogates matches only unpaired ones: a pair is one code point. */
const UNPAIRED_SURROGATE = /[\ud800-\udfff]/u;
const UNPAIRED_SURROGATES = new RegExp(UNPAIRED_SURROGATE, 'gu');
// eslint-disable-next-line no-control-regex -- NUL is exactly what PostgreSQL cannot store
const NULS = /\u0000/g;
const NUL_REASON = 'the NUL character (\\u0000), which PostgreSQL cannot store';
const SURROGATE_REASON = 'an unpaired UTF-16 surrogate (\\ud800-\\udfff), which is no Unicode character';

/** An escape jsonb refuses, preceded by an even number of backslashes (so it is an escape, not text). */
const UNSTORABLE_JSON_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

/** Why JSON text produced by JSON.stringify cannot be stored as jsonb, or null when it can. */
export function unstorableJsonReason(json: string): string | null {
  const escape = UNSTORABLE_JSON_ESCAPE.exec(json);
  if (!escape) return null;
  return `it contains ${/\\u0000$/i.test(escape[0]) ? NUL_REASON : SURROGATE_REASON}`;
}

/** Why PostgreSQL cannot store `text` as it is (a NUL, or an unpaired surrogate), or null when it can. */
export function unstorableTextReason(text: string): string | null {
  if (text.includes('\u0000')) return NUL_REASON;
  return UNPAIRED_SURROGATE.test(text) ? SURROGATE_REASON : null;
}

/**
 * The text with every NUL and every lone surrogate replaced by U+FFFD, cut to at most `maxLength`
 * UTF-16 units without splitting a surrogate pair.
 */
export function storableText(text: string, maxLength: number): string {
  let cut = text.length > maxLength ? text.slice(0, maxLength) : text;
  // A pair cut in two would leave its first half at the end.
  if (cut.length < text.length && /[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return cut.replace(NULS, '\ufffd').replace(UNPAIRED_SURROGATES, '\ufffd');
}
