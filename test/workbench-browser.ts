// What the workbench's browser test and its benchmark (scripts/bench/workbench.ts) share: a headless
// Chromium, a person's account and sign-in, and opening a case from the queue.
/// <reference lib="dom" />
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { TestService } from './harness.js';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(chromiumPath)) {
    throw new Error(
      `Chromium is needed here and is not at ${chromiumPath}: npm test installs it as root on Debian (scripts/chromium.ts); else set CHROMIUM_PATH`,
    );
  }
  return chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
}

export interface Account {
  username: string;
  role: string;
  fhirUser: string;
  password: string;
  name: string;
}

/** A person's workbench account, made by the service's admin. */
export async function createAccount(service: Pick<TestService, 'server' | 'token'>, account: Account): Promise<void> {
  const made = await fetch(`${service.server.url}/auth/accounts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${service.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(account),
  });
  if (made.status !== 201) throw new Error(`the account ${account.username} was refused: ${made.status} ${await made.text()}`);
}

/** Signs in at the workbench of the service at `url`, as a person does, and waits for the queue. */
export async function signInAs(page: Page, url: string, username: string, password: string): Promise<void> {
  await page.goto(`${url}/workbench/`);
  await page.waitForSelector('input[name="password"]');
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('button[type="submit"]');
  await page.waitForSelector('table.queue[data-loaded="true"]');
}

/**
 * Opens case `taskId` from the queue with a click; answers the milliseconds from the click until the
 * first view was on screen (the patient, the questions, the diagnosis questioned) and until the
 * whole chart was (its completeness).
 */
export async function openFromQueue(page: Page, url: string, taskId: string): Promise<{ firstView: number; wholeChart: number }> {
  await page.goto(`${url}/workbench/#/`);
  await page.waitForSelector(`tr[data-task="${taskId}"] a`);
  const started = Date.now();
  await page.click(`tr[data-task="${taskId}"] a`);
  await page.waitForSelector('article.case[data-loaded="true"] .questions li');
  const firstView = Date.now() - started;
  await page.waitForSelector('.completeness');
  return { firstView, wholeChart: Date.now() - started };
}
