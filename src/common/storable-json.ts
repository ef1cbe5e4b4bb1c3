import { unstorableTextReason } from '../persistence/storable-text';
import { fieldPath, type FieldProblem } from './dto-validation';

/** Deeper bodies are refused before validation walks them (recursively, on the call stack). */
export const MAX_JSON_DEPTH = 64;
/** A hostile body can hold thousands of problems; the first ones say enough. */
const MAX_PROBLEMS = 100;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

/**
 * Every reason why a JSON body (`text`, and `body`, what JSON.parse made of it) would not come back from
 * the database exactly as sent, each with the field it concerns:
 * - nesting deeper than MAX_JSON_DEPTH;
 * - a NUL character or an unpaired UTF-16 surrogate in a string or key (PostgreSQL's text and jsonb
 *   store Unicode characters, and these are none);
 * - a `__proto__` key (JavaScript that copies the object, here or in a handler, turns it into a prototype);
 * - a number whose decimal value a double does not hold (1e400, 1e-400, 12345678901234567890): JSON.parse
 *   has already rounded it, so only the text can tell.
 * Iterative, so a hostile body cannot overflow the stack here.
 */
export function unstorableJsonProblems(text: string, body: unknown): FieldProblem[] {
  const problems = unstorableValues(body);
  if (problems.length < MAX_PROBLEMS) {
    const inexact = inexactNumberOffsets(text, MAX_PROBLEMS - problems.length);
    if (inexact.length > 0) problems.push(...numberProblems(text, inexact));
  }
  return problems;
}

interface Visit {
  value: unknown;
  depth: number;
  parent: Visit | null;
  key: string | number;
}

function unstorableValues(body: unknown): FieldProblem[] {
  if (body === null || typeof body !== 'object') return [];
  const problems: FieldProblem[] = [];
  const report = (parent: Visit, key: string | number, message: string): void => {
    problems.push({ field: pathOf({ value: undefined, depth: parent.depth + 1, parent, key }), message });
  };
  // Only containers are visited; strings are checked where they are found, other values need nothing.
  const pending: Visit[] = [{ value: body, depth: 0, parent: null, key: '' }];
  while (pending.length > 0 && problems.length < MAX_PROBLEMS) {
    const visit = pending.pop()!;
    if (visit.depth >= MAX_JSON_DEPTH) {
      problems.push({ field: pathOf(visit), message: `is nested deeper than ${MAX_JSON_DEPTH} levels` });
      continue;
    }
    const container = visit.value as Record<string | number, unknown>;
    const keys = Array.isArray(container) ? null : Object.keys(container);
    const count = keys ? keys.length : (visit.value as unknown[]).length;
    // Children go on the stack last first, so that problems come out in document order.
    for (let index = count - 1; index >= 0; index--) {
      const key = keys ? keys[index] : index;
      const keyProblem = keys ? unstorableKeyMessage(key as string) : null;
      if (keyProblem) {
        report(visit, key, keyProblem);
        continue;
      }
      const value = container[key];
      if (typeof value === 'string') {
        const reason = unstorableTextReason(value);
        if (reason) report(visit, key, `must not contain ${reason}`);
      } else if (value !== null && typeof value === 'object') {
        pending.push({ value, depth: visit.depth + 1, parent: visit, key });
      }
    }
  }
  return problems;
}

function unstorableKeyMessage(key: string): string | null {
  if (key === '__proto__') {
    return '__proto__ is not accepted as a key: JavaScript that copies the object would make it its prototype';
  }
  const reason = unstorableTextReason(key);
  return reason ? `the key must not contain ${reason}` : null;
}

function pathOf(visit: Visit): string {
  const keys: (string | number)[] = [];
  for (let at: Visit | null = visit; at?.parent; at = at.parent) keys.push(at.key);
  return keys.reduceRight<string>((path, key) => fieldPath(path, key), '') || '(body)';
}

/**
 * Offsets of the number tokens of `text` (valid JSON) whose value a double does not hold exactly, at most
 * `limit`. One pass; strings are skipped with indexOf, and a number of up to 15 digits without an exponent
 * is exact by construction (a double holds 15 significant decimal digits), so only longer ones or ones
 * with an exponent are parsed and compared.
 */
export function inexactNumberOffsets(text: string, limit = Infinity): number[] {
  const offsets: number[] = [];
  const length = text.length;
  let at = 0;
  while (at < length && offsets.length < limit) {
    const char = text.charCodeAt(at);
    if (char === QUOTE) {
      at = endOfString(text, at);
    } else if (char === MINUS || (char >= ZERO && char <= NINE)) {
      const start = at;
      const end = endOfNumber(text, at);
      at = end;
      if (end - start > 15 || hasExponent(text, start, end)) {
        if (!isExactDouble(text.slice(start, end))) offsets.push(start);
      }
    } else {
      at += 1;
    }
  }
  return offsets;
}

/** The offset just past the string that opens at `open`. */
function endOfString(text: string, open: number): number {
  let close = open;
  for (;;) {
    close = text.indexOf('"', close + 1);
    if (close < 0) return text.length;
    let backslashes = 0;
    while (text.charCodeAt(close - 1 - backslashes) === BACKSLASH) backslashes += 1;
    if (backslashes % 2 === 0) return close + 1;
  }
}

function endOfNumber(text: string, start: number): number {
  let at = start + 1;
  for (; at < text.length; at++) {
    const char = text.charCodeAt(at);
    const partOfNumber =
      (char >= ZERO && char <= NINE) ||
      char === DOT ||
      char === LOWER_E ||
      char === UPPER_E ||
      char === PLUS ||
      char === MINUS;
    if (!partOfNumber) break;
  }
  return at;
}

function hasExponent(text: string, start: number, end: number): boolean {
  for (let at = start; at < end; at++) {
    const char = text.charCodeAt(at);
    if (char === LOWER_E || char === UPPER_E) return true;
  }
  return false;
}

/** Whether the double that JSON number `token` parses to has the very decimal value the token writes. */
export function isExactDouble(token: string): boolean {
  const value = Number(token);
  if (!Number.isFinite(value)) return false;
  // String() gives the shortest decimal that reads back as the same double: the value it is stored as.
  const shortest = String(value);
  if (shortest === token) return true;
  const written = decimalOf(token);
  const stored = decimalOf(shortest);
  return (
    written.negative === stored.negative &&
    written.digits === stored.digits &&
    written.exponent === stored.exponent
  );
}

interface Decimal {
  negative: boolean;
  /** Significant digits, without leading or trailing zeros; empty for zero. */
  digits: string;
  /** The value is digits * 10^exponent. */
  exponent: number;
}

const NUMBER_TOKEN = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/** The normalised decimal a JSON number token (or String(double)) writes: 1.10, 11e-1 and 1.1 are one. */
function decimalOf(token: string): Decimal {
  const [, sign, whole, fraction = '', exponent = '0'] = NUMBER_TOKEN.exec(token) ?? [];
  const all = `${whole ?? ''}${fraction}`;
  let first = 0;
  while (first < all.length && all.charCodeAt(first) === ZERO) first += 1;
  // JSON has a single zero: -0 and 0 are the same value (PostgreSQL stores both as 0).
  if (first === all.length) return { negative: false, digits: '', exponent: 0 };
  let end = all.length;
  while (all.charCodeAt(end - 1) === ZERO) end -= 1;
  return {
    negative: sign === '-',
    digits: all.slice(first, end),
    exponent: Number(exponent) - fraction.length + (all.length - end),
  };
}

/** Problems for the inexact numbers that start at `offsets` (ascending), naming each one's field. */
function numberProblems(text: string, offsets: number[]): FieldProblem[] {
  const problems: FieldProblem[] = [];
  // The containers around the current position: an object's current key, or an array's current index.
  const path: { key: string | number; isObject: boolean }[] = [];
  let expectingKey = false;
  let next = 0;
  let at = 0;
  while (at < text.length && next < offsets.length) {
    const char = text.charCodeAt(at);
    if (char === QUOTE) {
      const end = endOfString(text, at);
      if (expectingKey) path[path.length - 1].key = JSON.parse(text.slice(at, end)) as string;
      expectingKey = false;
      at = end;
      continue;
    }
    if (char === OPEN_BRACE) {
      path.push({ key: '', isObject: true });
      expectingKey = true;
    } else if (char === OPEN_BRACKET) {
      path.push({ key: 0, isObject: false });
    } else if (char === CLOSE_BRACE || char === CLOSE_BRACKET) {
      path.pop();
      expectingKey = false;
    } else if (char === COMMA) {
      const container = path[path.length - 1];
      if (container.isObject) expectingKey = true;
      else container.key = (container.key as number) + 1;
    } else if (char === COLON) {
      expectingKey = false;
    } else if (at === offsets[next]) {
      const token = text.slice(at, endOfNumber(text, at));
      const field = path.reduce<string>((prefix, { key }) => fieldPath(prefix, key), '') || '(body)';
      problems.push({ field, message: inexactNumberMessage(token) });
      next += 1;
    }
    at += 1;
  }
  return problems;
}

function inexactNumberMessage(token: string): string {
  const shown = token.length > 40 ? `${token.slice(0, 40)}…` : token;
  const value = Number(token);
  if (!Number.isFinite(value)) {
    return `${shown} is beyond the range of a JSON number (a 64-bit float); it cannot be stored`;
  }
  return `${shown} cannot be stored exactly: a JSON number (a 64-bit float) holds it as ${String(value)}`;
}
