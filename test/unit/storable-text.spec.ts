import { storableText, unstorableJsonReason } from '../../src/persistence/storable-text';

describe('what PostgreSQL can store', () => {
  it('finds NUL and lone surrogates in serialised JSON, and only real escapes of them', () => {
    expect(unstorableJsonReason(JSON.stringify({ a: 'x\u0000y' }))).toMatch(/NUL/);
    expect(unstorableJsonReason(JSON.stringify({ a: '\ud800' }))).toMatch(/surrogate/);
    expect(unstorableJsonReason(JSON.stringify({ '\udc00': 1 }))).toMatch(/surrogate/);
    // A whole pair is stored as the character itself; a backslash followed by "u0000" is just text.
    expect(unstorableJsonReason(JSON.stringify({ a: '\u{1F600}' }))).toBeNull();
    expect(unstorableJsonReason(JSON.stringify({ a: '\\u0000 and \\ud800' }))).toBeNull();
    expect(unstorableJsonReason(JSON.stringify({ a: '\\\u0000' }))).toMatch(/NUL/);
  });

  it('cuts text without splitting a surrogate pair and replaces what cannot be stored', () => {
    expect(storableText(`${'x'.repeat(9)}\u{1F600}`, 10)).toBe('x'.repeat(9));
    expect(storableText(`${'x'.repeat(8)}\u{1F600}`, 10)).toBe(`${'x'.repeat(8)}\u{1F600}`);
    expect(storableText('a\u0000b\ud800c\udc00d', 100)).toBe('a\ufffdb\ufffdc\ufffdd');
    expect(storableText('\udc00\ud800', 100)).toBe('\ufffd\ufffd');
  });
});
