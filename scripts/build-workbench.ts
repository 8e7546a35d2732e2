// Builds the reviewers' workbench (web/workbench/) into dist/web/workbench with esbuild: one bundle
// of the app (preact, chart.js, pdf.js), its stylesheet and page, and pdf.js's worker beside them;
// and the analytics page's sign-in (web/analytics/) into dist/web/analytics, a script of its own.
// Runs in `npm run build`, so `npm ci` and the image build it too; the service serves the result.
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '../..');
const source = path.join(root, 'web/workbench');
const out = path.join(root, 'dist/web/workbench');
const require = createRequire(import.meta.url);

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const bundled = { bundle: true, target: 'es2022', minify: true, logLevel: 'warning' } as const;
await build({
  ...bundled,
  entryPoints: [path.join(source, 'main.tsx')],
  format: 'esm',
  sourcemap: true,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outfile: path.join(out, 'app.js'),
});
// A classic script (a global, no module) for the analytics page's plain script to use.
await build({
  ...bundled,
  entryPoints: [path.join(root, 'web/analytics/sign-in.ts')],
  format: 'iife',
  outfile: path.join(root, 'dist/web/analytics/sign-in.js'),
});
copyFileSync(path.join(source, 'index.html'), path.join(out, 'index.html'));
copyFileSync(path.join(source, 'workbench.css'), path.join(out, 'workbench.css'));
copyFileSync(require.resolve('pdfjs-dist/build/pdf.worker.min.mjs'), path.join(out, 'pdf.worker.min.mjs'));
