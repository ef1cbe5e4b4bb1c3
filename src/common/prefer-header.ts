/** The response header that tells a client its `Prefer: return=minimal` was honoured (RFC 7240). */
export const PREFERENCE_APPLIED_HEADER = 'Preference-Applied';
export const RETURN_MINIMAL = 'return=minimal';

/**
 * Whether a `Prefer` request header (RFC 7240) asks for `return=minimal`. Preferences are separated by
 * commas (several Prefer headers arrive joined that way), each may carry `;` parameters, names are
 * case-insensitive and a value may be quoted. Only the first `return` preference counts, as the RFC says
 * of a preference given twice; anything this service does not know is ignored.
 */
export function prefersMinimalReturn(header: string | string[] | undefined): boolean {
  if (header === undefined) return false;
  const text = Array.isArray(header) ? header.join(',') : header;
  for (const preference of text.split(',')) {
    const [token] = preference.split(';');
    const equals = token.indexOf('=');
    const name = (equals < 0 ? token : token.slice(0, equals)).trim().toLowerCase();
    if (name !== 'return') continue;
    const value = equals < 0 ? '' : unquote(token.slice(equals + 1).trim());
    return value.toLowerCase() === 'minimal';
  }
  return false;
}

function unquote(value: string): string {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
}
