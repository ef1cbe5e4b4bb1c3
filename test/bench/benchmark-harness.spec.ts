import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
/** A quick run of every scenario still starts a dozen processes and drains jobs on a busy machine. */
const HARNESS_TIMEOUT_MS = 360_000;

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node bench/<script> ...args` with `env` (the test run's server as DATABASE_URL, where given); resolves when it is done. */
function runBenchScript(script: string, args: string[], env: Record<string, string> = {}): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bench', script), ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    // 'close', not 'exit': only then has all of the output been read.
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function serverUrl(): string {
  const url = process.env.TEST_PG_ADMIN_URL;
  if (!url) throw new Error('TEST_PG_ADMIN_URL is not set: run the tests through jest (npm test)');
  return url;
}

/** GET /jobs timed on one table: per page, the p99 of each run and their median. */
interface ListingTimes {
  first_page: { p99_ms: { median: number; runs: number[] } };
  page_100: { p99_ms: { median: number; runs: number[] } };
  failed_page: { p99_ms: { median: number; runs: number[] } };
}

interface ComparisonRow {
  figure: string;
  ours: { stats: { median: number } } | null;
  peers: Record<string, { stats: { median: number } } | null | undefined>;
  ratio: number | null;
}

/**
 * The benchmark scripts the README's figures come from, run end to end at toy sizes: the figures are
 * meaningless at these sizes, but a script that no longer runs, or a figure that no longer reaches the
 * report, fails here instead of when someone next measures.
 */
describe('the benchmark harness', () => {
  let resultsDir: string;

  beforeAll(() => {
    resultsDir = mkdtempSync(join(tmpdir(), 'job-service-bench-results-'));
  });
  afterAll(() => rmSync(resultsDir, { recursive: true, force: true }));

  it(
    'npm run bench prints ours, each peer and the ratio for every figure the README compares',
    async () => {
      const run = await runBenchScript(
        'run.js',
        [
          '--runs',
          '1',
          '--jobs',
          '1000',
          '--drain-seconds',
          '20',
          '--latency-rate',
          '100',
          '--latency-seconds',
          '2',
          '--http-seconds',
          '1',
          '--grown-rows',
          '10000',
          '--results-dir',
          resultsDir,
        ],
        { DATABASE_URL: serverUrl() },
      );
      expect({ code: run.code, stderr: run.code === 0 ? '' : run.stderr }).toEqual({ code: 0, stderr: '' });

      const [file] = readdirSync(resultsDir).filter((name) => !name.startsWith('retention-'));
      const report = JSON.parse(readFileSync(join(resultsDir, file), 'utf8')) as {
        comparison: ComparisonRow[];
        peers: Record<string, unknown>;
        grown_table: {
          ratio_to_empty: number;
          empty_table: { jobs_per_second: { median: number } };
          listing: ListingTimes & { empty_table: ListingTimes };
        };
      };
      const peers = Object.keys(report.peers).sort();
      expect(peers).toEqual(['graphile-worker', 'pg-boss']);
      const rowOf = (start: string): ComparisonRow => {
        const found = report.comparison.find((row) => row.figure.trimStart().startsWith(start));
        if (!found)
          throw new Error(`no figure "${start}" in ${report.comparison.map((r) => r.figure).join(' | ')}`);
        return found;
      };
      // The figures of the README's performance table that have a peer to compare with.
      for (const figure of [
        'processing, best setting',
        'processing, defaults',
        'worker peak RSS, best setting',
        'enqueue-to-start at 100/s, p50',
        'enqueue-to-start at 100/s, p99',
        'p50, ours inserted by a plain client',
        'single create, 50 in flight',
        'batch create of 1,000',
        'the same, answered with the ids only',
        'creating process CPU per 1,000 jobs (ours: the api), batch answered in full',
        'creating process CPU per 1,000 jobs (ours: the api), batch ids only',
      ]) {
        const row = rowOf(figure);
        expect({ figure, ours: row.ours?.stats.median }).toEqual({ figure, ours: expect.any(Number) });
        for (const peer of peers) {
          expect({ figure, peer, value: row.peers[peer]?.stats.median }).toEqual({
            figure,
            peer,
            value: expect.any(Number),
          });
        }
        expect({ figure, ratio: Number.isFinite(row.ratio) && row.ratio! > 0 }).toEqual({
          figure,
          ratio: true,
        });
      }
      // The grown table's figures are ours alone.
      for (const figure of [
        'processing with 10,000 finished rows',
        'claim of',
        'GET /jobs p99, first page',
        'GET /jobs?state=failed p99',
      ]) {
        expect({ figure, ours: rowOf(figure).ours?.stats.median }).toEqual({
          figure,
          ours: expect.any(Number),
        });
      }
      // The grown table is compared with an empty one drained alongside it, in the same runs.
      const grown = report.grown_table;
      expect(grown.empty_table.jobs_per_second.median).toBeGreaterThan(0);
      expect(Number.isFinite(grown.ratio_to_empty) && grown.ratio_to_empty > 0).toBe(true);
      // So is the listing: a p99 per run on each table, the median reported.
      for (const times of [grown.listing, grown.listing.empty_table]) {
        for (const page of [times.first_page, times.page_100, times.failed_page]) {
          expect(page.p99_ms.runs).toHaveLength(1);
          expect(page.p99_ms.median).toBeGreaterThan(0);
        }
      }
      // The table printed is the report's.
      expect(run.stdout).toContain('ours / best peer');
      expect(run.stdout).toMatch(/^processing, best setting .*\d\.\d\d$/m);
    },
    HARNESS_TIMEOUT_MS,
  );

  it(
    "bench/db-cost.js measures the database's CPU, WAL and statements per job, with its rules and without (the README's scale-out figures)",
    async () => {
      // Which rules stay in force with each --rules: CHECK constraints, triggers.
      const kept = { on: [true, true], off: [false, false], checks: [true, false], triggers: [false, true] };
      for (const [rules, [checksKept, triggersKept]] of Object.entries(kept)) {
        const run = await runBenchScript('db-cost.js', ['--jobs', '300', '--batch', '10', '--rules', rules]);
        expect({ code: run.code, stderr: run.code === 0 ? '' : run.stderr }).toEqual({ code: 0, stderr: '' });
        const cost = JSON.parse(run.stdout) as Record<string, Record<string, number>> & {
          total_backend_cpu_ms_per_job: number;
          total_wal_bytes_per_job: number;
        };
        for (const part of ['create', 'claim_and_complete']) {
          expect(cost[part].backend_cpu_ms_per_job).toBeGreaterThan(0);
          expect(cost[part].wal_bytes_per_job).toBeGreaterThan(0);
          expect(cost[part].statements_per_job).toBeGreaterThan(0);
        }
        expect(cost.total_backend_cpu_ms_per_job).toBeGreaterThan(0);
        expect(cost.total_wal_bytes_per_job).toBeGreaterThan(0);
        // The figures are of a table with exactly the rules asked for in force while the jobs ran.
        const { checks, triggers } = cost.rules_in_force;
        expect({ rules, checks: checks > 0, triggers: triggers > 0 }).toEqual({
          rules,
          checks: checksKept,
          triggers: triggersKept,
        });
      }
    },
    HARNESS_TIMEOUT_MS,
  );

  it(
    'npm run bench:statements times each hot-path statement and the triggers that fire in it',
    async () => {
      const run = await runBenchScript('statement-profile.js', ['--rounds', '3', '--batch', '10'], {
        DATABASE_URL: serverUrl(),
      });
      expect({ code: run.code, stderr: run.code === 0 ? '' : run.stderr }).toEqual({ code: 0, stderr: '' });
      const output = run.stdout + run.stderr;
      expect(output).toMatch(/^claim of 10 +median \d+\.\d+ ms$/m);
      expect(output).toMatch(/^completion of 10 +median \d+\.\d+ ms$/m);
      expect(output).toMatch(/^completion of 10: trigger jobs_count_updated +median \d+\.\d+ ms/m);
    },
    HARNESS_TIMEOUT_MS,
  );

  it(
    'npm run bench:retention seeds finished jobs, purges them with a real worker and reports both phases',
    async () => {
      const run = await runBenchScript(
        'retention-purge.js',
        ['--rows', '5000', '--rate', '50', '--baseline-seconds', '2', '--results-dir', resultsDir],
        { DATABASE_URL: serverUrl() },
      );
      expect({ code: run.code, stderr: run.code === 0 ? '' : run.stderr }).toEqual({ code: 0, stderr: '' });
      const [file] = readdirSync(resultsDir).filter((name) => name.startsWith('retention-'));
      const report = JSON.parse(readFileSync(join(resultsDir, file), 'utf8')) as {
        purge: { deleted: number };
        left: { seeded_jobs: number };
        baseline: { jobs: number; p50_ms: number };
      };
      expect(report.purge.deleted).toBe(5000);
      expect(report.left.seeded_jobs).toBe(0);
      expect(report.baseline.jobs).toBeGreaterThan(0);
      expect(report.baseline.p50_ms).toEqual(expect.any(Number));
    },
    HARNESS_TIMEOUT_MS,
  );
});
