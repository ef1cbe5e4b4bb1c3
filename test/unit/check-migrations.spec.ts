import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, appendFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SCRIPT = join(__dirname, '..', '..', 'scripts', 'check-migrations.sh');

/** The CI step that refuses an edit to a migration that has landed, run on a repository of its own. */
describe('scripts/check-migrations.sh', () => {
  let repo: string;
  const git = (...args: string[]): string =>
    execFileSync('git', ['-c', 'user.name=ci', '-c', 'user.email=ci@example.com', ...args], {
      cwd: repo,
      encoding: 'utf8',
    });
  const check = (): { status: number | null; output: string } => {
    const run = spawnSync('bash', [join(repo, 'scripts', 'check-migrations.sh')], { encoding: 'utf8' });
    return { status: run.status, output: run.stdout + run.stderr };
  };

  beforeEach(() => {
    repo = mkdtempSync(join(tmpdir(), 'check-migrations-'));
    mkdirSync(join(repo, 'scripts'));
    mkdirSync(join(repo, 'migrations'));
    cpSync(SCRIPT, join(repo, 'scripts', 'check-migrations.sh'));
    git('init', '-q');
    writeFileSync(join(repo, 'migrations', '1-first.ts'), 'first\n');
    git('add', '.');
    git('commit', '-q', '-m', 'first migration');
  });
  afterEach(() => rmSync(repo, { recursive: true, force: true }));

  it('passes when landed migrations are unchanged and a new one is added', () => {
    writeFileSync(join(repo, 'migrations', '2-second.ts'), 'second\n');
    git('add', '.');
    git('commit', '-q', '-m', 'second migration');
    expect(check()).toMatchObject({ status: 0 });
  });

  it('fails when a landed migration is changed by a later commit, or in the working tree', () => {
    appendFileSync(join(repo, 'migrations', '1-first.ts'), 'edited\n');
    expect(check()).toMatchObject({ status: 1, output: expect.stringMatching(/uncommitted changes/) });
    git('commit', '-q', '-am', 'edit a landed migration');
    expect(check()).toMatchObject({ status: 1, output: expect.stringMatching(/changed by commit/) });
  });

  it('fails when a landed migration is removed', () => {
    git('rm', '-q', 'migrations/1-first.ts');
    git('commit', '-q', '-m', 'remove a landed migration');
    expect(check()).toMatchObject({ status: 1, output: expect.stringMatching(/removed or renamed/) });
  });
});
