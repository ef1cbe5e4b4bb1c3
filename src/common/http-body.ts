import type { FastifyInstance } from 'fastify';
import { isUtf8 } from 'node:buffer';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { RequestValidationError } from '../jobs/jobs.errors';
import {
  MALFORMED_JSON,
  PAYLOAD_TOO_LARGE,
  ProblemError,
  UNREADABLE_BODY,
  toProblem,
  UNSUPPORTED_MEDIA_TYPE,
  type Problem,
} from './problem-details.filter';
import { unstorableJsonProblems } from './storable-json';
import { toFieldError } from './validation';

/** `application/json` and `application/<anything>+json`, with or without parameters. */
const JSON_MEDIA_TYPE = /^application\/(?:[^;\s/]+\+)?json[\t ]*(?:;|$)/i;
/** The charset parameter of a Content-Type, when it has one. */
const CHARSET_PARAMETER = /;[\t ]*charset[\t ]*=[\t ]*"?([^";\t ]*)"?/i;
/** JSON's own whitespace, then an object or an array: other JSON texts are no request body. */
const OBJECT_OR_ARRAY = /^[\t\n\r ]*[[{]/;

const NOT_UTF8: Problem = {
  ...MALFORMED_JSON,
  detail: 'The request body is not valid UTF-8, so it is not JSON',
};
const UNSUPPORTED_ENCODING: Problem = {
  status: 415,
  code: 'unsupported_media_type',
  detail: 'The request body encoding is not supported',
};

/** The Content-Encodings a client may compress a body with, and how each is undone. */
const DECODERS: Record<string, (bytes: Buffer, options: { maxOutputLength: number }) => Buffer> = {
  gzip: gunzipSync,
  'x-gzip': gunzipSync,
  deflate: inflateSync,
  br: brotliDecompressSync,
};

/**
 * The body as sent before any Content-Encoding, or the problem that refuses it. Decompressed, it may not
 * exceed the limit either: a small compressed body must not become a large one.
 */
function decode(
  bytes: Buffer,
  contentEncoding: string | undefined,
  limitBytes: number,
): Buffer | ProblemError {
  const encoding = (contentEncoding ?? 'identity').trim().toLowerCase();
  if (encoding === 'identity' || encoding === '') return bytes;
  const decoder = Object.hasOwn(DECODERS, encoding) ? DECODERS[encoding] : undefined;
  if (!decoder) return new ProblemError(UNSUPPORTED_ENCODING);
  try {
    return decoder(bytes, { maxOutputLength: limitBytes });
  } catch (error) {
    const tooLarge = (error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE';
    return new ProblemError(tooLarge ? PAYLOAD_TOO_LARGE : UNREADABLE_BODY);
  }
}

/**
 * Reads every request body itself, up to `limitBytes` (Fastify refuses a longer one with 413 before it is
 * read), and refuses with a problem what is not a JSON object or array: 415 for a body that is not JSON or
 * not UTF-8 by its charset or compressed other than by gzip, deflate or br, 400 for bytes that are not UTF-8, for malformed JSON and for JSON that the
 * database would not give back exactly as sent (see unstorableJsonProblems; that check needs the body's
 * text, as JSON.parse has already rounded its numbers). A refused body never reaches a controller, so it
 * changes nothing. An empty body is `{}` when declared JSON and absent otherwise.
 */
export function parseJsonBodies(instance: FastifyInstance, limitBytes: number): void {
  instance.removeAllContentTypeParsers();
  instance.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: limitBytes }, (request, raw, done) => {
    const contentType = request.headers['content-type'] ?? '';
    const isJson = JSON_MEDIA_TYPE.test(contentType);
    if ((raw as Buffer).length === 0) return done(null, isJson ? {} : undefined);
    if (!isJson) return done(new ProblemError(UNSUPPORTED_MEDIA_TYPE));
    const bytes = decode(raw as Buffer, request.headers['content-encoding'], limitBytes);
    if (bytes instanceof ProblemError) return done(bytes);
    const charset = CHARSET_PARAMETER.exec(contentType)?.[1]?.toLowerCase();
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      return done(new ProblemError(UNSUPPORTED_ENCODING));
    }
    if (!isUtf8(bytes)) return done(new ProblemError(NOT_UTF8));
    let text = bytes.toString('utf8');
    // A byte order mark is no part of the JSON text (RFC 8259 lets a parser ignore it).
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    let body: unknown;
    try {
      if (!OBJECT_OR_ARRAY.test(text)) throw new SyntaxError('not an object or array');
      body = JSON.parse(text);
    } catch {
      return done(new ProblemError(MALFORMED_JSON));
    }
    const problems = unstorableJsonProblems(text, body);
    if (problems.length > 0) {
      return done(new ProblemError(toProblem(new RequestValidationError(problems.map(toFieldError)))));
    }
    done(null, body);
  });
}
