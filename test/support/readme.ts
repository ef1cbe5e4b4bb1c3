import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');

export interface CodeBlock {
  language: string;
  code: string;
  /** The line of the README the block starts on, for messages. */
  line: number;
}

/** The fenced code blocks of README.md, in order. */
export function readmeBlocks(): CodeBlock[] {
  const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n');
  const blocks: CodeBlock[] = [];
  let open: CodeBlock | null = null;
  lines.forEach((text, index) => {
    const fence = /^\s*```(\S*)\s*$/.exec(text);
    if (fence && !open) {
      open = { language: fence[1], code: '', line: index + 1 };
    } else if (fence && open) {
      blocks.push(open);
      open = null;
    } else if (open) {
      open.code += `${text.replace(/^ {2}/, '')}\n`;
    }
  });
  return blocks;
}

/**
 * The `curl` commands of the README's shell blocks, in order: a line ending in a backslash, or inside a
 * single-quoted string, goes on to the next.
 */
export function readmeCurlCommands(): { command: string; line: number }[] {
  const commands: { command: string; line: number }[] = [];
  for (const block of readmeBlocks().filter((candidate) => candidate.language === 'bash')) {
    let pending = '';
    let continued = false;
    for (const text of block.code.split('\n')) {
      if (pending === '' && text.trim().startsWith('#')) continue;
      pending =
        pending === '' ? text : `${pending}${continued ? '' : '\n'}${continued ? text.trimStart() : text}`;
      continued = false;
      const insideQuotes = (pending.match(/'/g)?.length ?? 0) % 2 === 1;
      if (insideQuotes) continue;
      if (pending.endsWith('\\')) {
        pending = `${pending.slice(0, -1).trimEnd()} `;
        continued = true;
        continue;
      }
      const command = pending.trim();
      if (/^curl\s/.test(command)) commands.push({ command, line: block.line });
      pending = '';
    }
  }
  return commands;
}
