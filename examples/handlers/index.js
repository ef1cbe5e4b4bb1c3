// @ts-check
// A handler module: an array of plain definitions { type, description, payload_schema, run }. No NestJS,
// no decorators, no dependency on the service. Load it with HANDLER_MODULES=<this folder or package name>.
'use strict';

const { createHash } = require('node:crypto');

/** @typedef {import('../../src/handlers/handler-definition').HandlerDefinition} HandlerDefinition */
/** @typedef {import('../../src/handlers/handler-definition').JobContext} JobContext */

/** @type {HandlerDefinition[]} */
module.exports = [
  {
    type: 'text.stats',
    description: 'Counts the lines, words and characters of `text`; returns the `top` most frequent words.',
    payload_schema: {
      type: 'object',
      properties: {
        text: { type: 'string', maxLength: 100000 },
        top: { type: 'integer', minimum: 1, maximum: 20, default: 3 },
      },
      required: ['text'],
      additionalProperties: false,
    },
    /**
     * @param {{ text: string, top?: number }} payload
     * @param {JobContext} context
     */
    run(payload, context) {
      const words = payload.text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];
      const counts = new Map();
      for (const [index, word] of words.entries()) {
        // Long inputs check the signal now and then: a cancelled or timed-out job stops early.
        if (index % 10000 === 0) context.signal.throwIfAborted();
        counts.set(word, (counts.get(word) ?? 0) + 1);
      }
      const top = [...counts.entries()]
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
        .slice(0, payload.top ?? 3)
        .map(([word, count]) => ({ word, count }));
      context.logger.info('text counted', { words: words.length });
      return {
        lines: payload.text === '' ? 0 : payload.text.split('\n').length,
        words: words.length,
        characters: [...payload.text].length,
        top,
      };
    },
  },
  {
    type: 'checksum.sha256',
    description:
      'Returns the SHA-256 of `data`, read as UTF-8 text or, with `encoding: "base64"`, as base64.',
    payload_schema: {
      type: 'object',
      properties: {
        data: { type: 'string', maxLength: 1000000 },
        encoding: { enum: ['utf8', 'base64'] },
      },
      required: ['data'],
      additionalProperties: false,
    },
    /** @param {{ data: string, encoding?: 'utf8' | 'base64' }} payload */
    run(payload) {
      if (payload.encoding === 'base64' && !/^[A-Za-z0-9+/]*={0,2}$/.test(payload.data)) {
        // permanent: retrying the same input cannot help, so the job fails at once.
        throw Object.assign(new Error('data is not valid base64'), {
          code: 'invalid_base64',
          permanent: true,
        });
      }
      const hash = createHash('sha256').update(payload.data, payload.encoding ?? 'utf8');
      return { sha256: hash.digest('hex') };
    },
  },
];
