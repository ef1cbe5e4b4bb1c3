import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { jobInvariantViolations } from '../support/job-invariants';
import { servedContract } from '../support/openapi-contract';
import { readmeBlocks, ROOT } from '../support/readme';

/**
 * The code of README.md is code: its TypeScript blocks compile under the project's own tsconfig, and its
 * JSON examples of a job and of /stats are valid by the OpenAPI document (and the job one the database
 * allows).
 */

/** Modules the README's blocks import by a name of their own, and what stands for them here. */
const STAND_INS: Record<string, string> = {
  // The client a user generates with openapi-typescript: the project's own, generated the same way.
  'job-service-api.ts': "export * from '<root>/test/support/generated/job-service-api';\n",
};

describe('README.md', () => {
  it('has TypeScript blocks that compile with the project tsconfig', async () => {
    const blocks = readmeBlocks().filter((block) => block.language === 'ts');
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    // Inside the project, so that its node_modules resolve; rootDirs lets `./job-handler` in a block placed
    // at src/handlers/ resolve to the project's src/handlers/job-handler.ts.
    const folder = mkdtempSync(join(ROOT, '.readme-check-'));
    try {
      const files = blocks.map((block, index) => {
        // A block whose first line names its file (`// src/handlers/email-send.handler.ts`) is put there.
        const named = /^\/\/ (\S+\.ts)\s*$/m.exec(block.code.split('\n')[0]);
        const file = join(folder, named ? named[1] : `readme-block-${index + 1}-line-${block.line}.ts`);
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, block.code);
        return relative(folder, file);
      });
      for (const [name, source] of Object.entries(STAND_INS)) {
        writeFileSync(join(folder, name), source.replace('<root>', relative(folder, ROOT) || '.'));
      }
      writeFileSync(
        join(folder, 'tsconfig.json'),
        JSON.stringify({
          extends: '../tsconfig.json',
          compilerOptions: { rootDirs: ['..', '.'], noEmit: true },
          include: [],
          files,
        }),
      );
      const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
      const result = await promisify(execFile)(process.execPath, [
        tsc,
        '-p',
        join(folder, 'tsconfig.json'),
      ]).then(
        () => '',
        (error: { stdout?: string }) => error.stdout ?? String(error),
      );
      expect(result).toBe('');
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('shows a job and /stats as the OpenAPI document describes them', () => {
    const blocks = readmeBlocks()
      .filter((block) => block.language === 'json')
      .map((block) => JSON.parse(block.code) as Record<string, unknown>);
    const job = blocks.find((block) => 'job_id' in block);
    const stats = blocks.find((block) => 'by_state' in block);
    const contract = servedContract();
    expect(contract.schemaViolations({ $ref: '#/components/schemas/JobDetailResponse' }, job)).toEqual([]);
    expect(jobInvariantViolations(job!)).toEqual([]);
    expect(contract.schemaViolations({ $ref: '#/components/schemas/StatsResponse' }, stats)).toEqual([]);
  });
});
