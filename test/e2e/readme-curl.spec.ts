import type { INestApplication } from '@nestjs/common';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { recordResponse } from '../support/openapi-contract';
import type { Json } from '../support/problems';
import { readmeCurlCommands } from '../support/readme';
import { startTestApp } from '../support/test-app';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/**
 * The `curl` lines of README.md, run as written, in order, by bash and curl against a test instance
 * (APP_ROLE=all) in place of localhost:3000. `<job_id>` is the job the last line that created one created,
 * `<next_cursor>` the cursor of the last page read. Each must succeed (2xx), and its answer is checked
 * against the OpenAPI document like every other e2e response.
 */

interface CurlAnswer {
  method: string;
  url: string;
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The headers curl wrote with -D: of the last response only (there is one; no redirect is followed). */
function parseHeaders(text: string): Record<string, string> {
  const blocks = text.trim().split(/\r?\n\r?\n/);
  const headers: Record<string, string> = {};
  for (const line of blocks[blocks.length - 1].split(/\r?\n/).slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}

describe('the curl lines of README.md, against a test instance', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let port: number;
  let scratch: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    // The hosts the README's http job and callback name may be called: POST /jobs refuses others.
    app = await startTestApp(db.url, {
      role: 'all',
      httpTargetAllow: ['hooks.example.com', 'orders.internal.example'],
    });
    await app.listen(0, '127.0.0.1');
    port = (app.getHttpServer().address() as AddressInfo).port;
    scratch = mkdtempSync(join(tmpdir(), 'readme-curl-'));
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  async function run(command: string): Promise<CurlAnswer> {
    const bodyFile = join(scratch, 'body');
    const headersFile = join(scratch, 'headers');
    // The README's own words, with curl told where to put what it got; a trailing comment stays a comment.
    const instrumented = command.replace(
      /^curl /,
      `curl -o ${bodyFile} -D ${headersFile} -w '%{method} %{http_code} %{url_effective}' `,
    );
    const { stdout } = await promisify(execFile)('bash', ['-c', instrumented]);
    const [method, status, url] = stdout.trim().split(' ');
    return {
      method,
      url,
      status: Number(status),
      headers: parseHeaders(readFileSync(headersFile, 'utf8')),
      body: readFileSync(bodyFile, 'utf8'),
    };
  }

  it('succeed one after the other, each as the document describes', async () => {
    const commands = readmeCurlCommands();
    expect(commands.length).toBeGreaterThanOrEqual(14);
    let lastJobId: string | undefined;
    let lastCursor: string | undefined;
    const answered: string[] = [];
    for (const { command, line } of commands) {
      const placeholders = [...command.matchAll(/<([a-z_]+)>/g)].map((match) => match[1]);
      const unknown = placeholders.filter((name) => name !== 'job_id' && name !== 'next_cursor');
      expect({ line, command, unknown }).toEqual({ line, command, unknown: [] });
      const substituted = command
        .replaceAll('localhost:3000', `127.0.0.1:${port}`)
        .replaceAll('<job_id>', lastJobId ?? 'no-job-created-yet')
        .replaceAll('<next_cursor>', lastCursor ?? 'no-page-read-yet');
      const answer = await run(substituted);
      recordResponse(answer);
      answered.push(`${answer.status} ${command}`);
      // On failure this shows the line and the problem it got.
      const succeeded = answer.status >= 200 && answer.status < 300;
      expect({ line, command, answer: succeeded ? 'a success' : `${answer.status} ${answer.body}` }).toEqual({
        line,
        command,
        answer: 'a success',
      });

      const body = JSON.parse(answer.body) as Json;
      if (answer.status === 201)
        lastJobId = (body.job_id ?? body.items?.[body.items.length - 1]?.job_id) as string;
      if (typeof body.next_cursor === 'string') lastCursor = body.next_cursor;

      if (command.includes('Idempotency-Key')) {
        // "repeating this returns the same job (201, header Idempotent-Replayed: true)"
        const replay = await run(substituted);
        recordResponse(replay);
        expect([
          replay.status,
          replay.headers['idempotent-replayed'],
          JSON.parse(replay.body).job_id,
        ]).toEqual([201, 'true', body.job_id]);
      }
      if (command.includes('wait_ms')) expect(body.state).toBe('completed');
    }
    expect(answered.length).toBe(commands.length);
  });
});
