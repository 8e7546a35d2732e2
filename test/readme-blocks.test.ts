// The README's runnable blocks, as scripts/readme-blocks.ts finds them (CI runs them with
// `npm run check:readme`): "Try it" is one, it waits for the service before calling it, and it says
// what its output must show.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { runnableBlocks } from '../scripts/readme-blocks.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');

describe('runnable README blocks', () => {
  it('are the fenced sh blocks marked runnable, with the expectations of the comment before them', () => {
    const markdown = [
      '```sh',
      'not run',
      '```',
      '<!-- expect: one | two -->',
      '```sh runnable',
      'echo one',
      'echo two',
      '```',
      '```json runnable',
      '{}',
      '```',
    ].join('\n');
    expect(runnableBlocks(markdown)).toEqual([{ line: 6, code: 'echo one\necho two', expect: ['one', 'two'] }]);
    expect(() => runnableBlocks('```sh runnable\necho never closed')).toThrow('README.md:1: a code block that never closes');
  });

  it('include "Try it", which waits for readiness before it calls the service and shows a case opened', () => {
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    const tryIt = runnableBlocks(readme).find((b) => b.line > readme.slice(0, readme.indexOf('## Try it')).split('\n').length);
    expect(tryIt).toBeDefined();
    const lines = tryIt?.code.split('\n') ?? [];
    const firstCall = lines.findIndex((l) => /curl|npm run -s token/.test(l));
    expect(lines.findIndex((l) => l.startsWith('npm run -s wait-ready'))).toBeGreaterThan(-1);
    expect(lines.findIndex((l) => l.startsWith('npm run -s wait-ready'))).toBeLessThan(firstCall);
    expect(tryIt?.expect).toContain('"resourceType":"Task"');
  });
});
