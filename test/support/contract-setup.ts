import { recordResponse, takeViolations, watchedServer, watchedUrl } from './openapi-contract';

/**
 * Runs before every test file (jest `setupFilesAfterEnv`): every response a test receives from the service
 * (an app of startTestApp or a process of spawnService), through supertest or fetch(), is checked against the OpenAPI document the
 * service serves. A response the document does not describe fails the test that received it (in afterEach,
 * so that no try/catch around a request can hide it).
 */

function failOnViolations(): void {
  const found = takeViolations().violations;
  if (found.length === 0) return;
  throw new Error(
    `${found.length} response(s) disagree with the OpenAPI document (/docs-json):\n- ${found.join('\n- ')}`,
  );
}

interface SupertestResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text?: string;
  body?: unknown;
}

// supertest: every request ends in Test#assert, with or without expectations, before its promise settles.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const SupertestTest = require('supertest/lib/test') as {
  prototype: {
    assert(
      this: { app: unknown; method: string; url: string },
      error: unknown,
      res: unknown,
      fn: unknown,
    ): void;
  };
};
const assertResponse = SupertestTest.prototype.assert;
SupertestTest.prototype.assert = function (error, res, fn) {
  const response = res as SupertestResponse | undefined;
  // Only the service's own apps (startTestApp): a test may build a bare Nest app to try one piece alone.
  const watched = watchedServer(this.app);
  if (response && typeof response.status === 'number' && watched) {
    const text =
      typeof response.text === 'string'
        ? response.text
        : response.body === undefined ||
            (typeof response.body === 'object' &&
              response.body !== null &&
              Object.keys(response.body).length === 0)
          ? ''
          : JSON.stringify(response.body);
    recordResponse({
      method: this.method,
      url: this.url,
      status: response.status,
      headers: response.headers,
      body: text,
    });
  }
  return assertResponse.call(this, error, res, fn);
};

const originalFetch = globalThis.fetch;
globalThis.fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
  const response = await originalFetch(input, init);
  const url = new URL(input instanceof Request ? input.url : input.toString());
  const watched = watchedUrl(url);
  if (watched) {
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    recordResponse({
      method,
      url: url.href,
      status: response.status,
      headers: Object.fromEntries(response.headers.entries()),
      body: await response.clone().text(),
      servesApi: watched.servesApi,
    });
  }
  return response;
};

afterEach(failOnViolations);
afterAll(failOnViolations);
