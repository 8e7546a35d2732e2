// Run before `npm test`: the analytics page test drives a real headless Chromium through playwright-core,
// which ships no browser. Finds one (CHROMIUM_PATH, else Debian's /usr/bin/chromium); when it is
// missing and this runs as root on Debian or Ubuntu, installs the distribution's package; otherwise
// stops with the command to run, so that `npm ci && npm test` needs no manual step where it can have none.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

function run(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
}

if (existsSync(chromiumPath)) process.exit(0);
if (process.env.CHROMIUM_PATH) {
  process.stderr.write(`CHROMIUM_PATH names ${chromiumPath}, which does not exist\n`);
  process.exit(1);
}
const canInstall = process.getuid?.() === 0 && existsSync('/usr/bin/apt-get');
if (!canInstall) {
  process.stderr.write(
    [
      'The analytics page test needs Chromium, which is not at /usr/bin/chromium. Either:',
      '  - install it: sudo apt-get install -y --no-install-recommends chromium (Debian; on Ubuntu chromium-browser), or',
      '  - point CHROMIUM_PATH at a Chromium or Chrome binary you have.',
      '',
    ].join('\n'),
  );
  process.exit(1);
}
process.stdout.write("Chromium is missing: installing Debian's chromium package for the analytics page test\n");
if (!run('apt-get', ['update', '-qq']) || !run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium']) || !existsSync(chromiumPath)) {
  process.stderr.write('Installing chromium failed; install it by hand or set CHROMIUM_PATH\n');
  process.exit(1);
}
