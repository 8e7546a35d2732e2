// `npm run check:readme`: runs the README's runnable shell blocks verbatim, so the README cannot drift
// from the service. A block is runnable when its fence says so (```sh runnable); an HTML comment on the
// line before the fence may name what its output must contain (<!-- expect: text | other text -->).
// Each block runs with bash (-euo pipefail) from the project's root, in a process group of its own that
// is stopped when the block ends, so that what it started in the background (the service, the EHR)
// stops with it; DATA_DIR points at a fresh folder. Ends with "README blocks: N ran verbatim, N failed".
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface RunnableBlock {
  /** The README line the block's code starts on. */
  line: number;
  code: string;
  expect: string[];
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const timeoutMs = Number(process.env.README_BLOCK_TIMEOUT_SECONDS ?? 300) * 1000;

/** The runnable blocks of a Markdown text, in order. */
export function runnableBlocks(markdown: string): RunnableBlock[] {
  const lines = markdown.split('\n');
  const blocks: RunnableBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^(`{3,})\s*(\S+)\s*(.*)$/.exec(lines[i]);
    if (!fence) continue;
    const end = lines.findIndex((l, j) => j > i && l.startsWith(fence[1]) && l.trim() === fence[1]);
    if (end < 0) throw new Error(`README.md:${i + 1}: a code block that never closes`);
    if (['sh', 'bash', 'shell'].includes(fence[2]) && fence[3].split(/\s+/).includes('runnable')) {
      const marker = /^<!--\s*expect:(.*)-->\s*$/.exec(lines[i - 1] ?? '');
      const expect = marker
        ? marker[1]
            .split('|')
            .map((t) => t.trim())
            .filter(Boolean)
        : [];
      blocks.push({ line: i + 2, code: lines.slice(i + 1, end).join('\n'), expect });
    }
    i = end;
  }
  return blocks;
}

async function run(block: RunnableBlock, dir: string): Promise<{ ok: boolean; why?: string }> {
  const script = path.join(dir, `block-${block.line}.sh`);
  writeFileSync(script, `${block.code}\n`);
  const child = spawn('bash', ['-euo', 'pipefail', script], {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DATA_DIR: path.join(dir, `data-${block.line}`) },
  });
  let output = '';
  const echo = (chunk: Buffer): void => {
    output += chunk.toString();
    process.stdout.write(chunk.toString().replace(/^/gm, '  | '));
  };
  child.stdout.on('data', echo);
  child.stderr.on('data', echo);
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const timer = setTimeout(() => void stopGroup(child.pid as number, 'SIGKILL'), timeoutMs);
  // The block's shell exits while what it started in the background still holds its output open.
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  await stopGroup(child.pid as number, 'SIGTERM');
  await closed;
  if (code !== 0) return { ok: false, why: code === null ? `stopped after ${timeoutMs / 1000} s` : `exit ${code}` };
  const missing = block.expect.filter((text) => !output.includes(text));
  return missing.length ? { ok: false, why: `output lacks ${missing.map((m) => JSON.stringify(m)).join(', ')}` } : { ok: true };
}

/** Stops what the block left running in the background: SIGTERM, and SIGKILL after 30 s. */
async function stopGroup(pgid: number, signal: NodeJS.Signals): Promise<void> {
  const alive = (): boolean => {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  process.kill(-pgid, signal);
  for (const deadline = Date.now() + 30_000; alive() && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 200));
  if (alive()) process.kill(-pgid, 'SIGKILL');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const readme = process.argv[2] ?? path.join(root, 'README.md');
  const blocks = runnableBlocks(readFileSync(readme, 'utf8'));
  if (!blocks.length) {
    process.stderr.write(`${readme} has no runnable block (\`\`\`sh runnable)\n`);
    process.exit(1);
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'readme-blocks-'));
  let [passed, failed] = [0, 0];
  for (const block of blocks) {
    process.stdout.write(`README.md:${block.line}: running\n`);
    const started = Date.now();
    const result = await run(block, dir);
    process.stdout.write(`README.md:${block.line}: ${result.ok ? 'ok' : `FAILED (${result.why})`} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    if (result.ok) passed++;
    else failed++;
  }
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`README blocks: ${passed} ran verbatim, ${failed} failed\n`);
  process.exit(failed ? 1 : 0);
}
