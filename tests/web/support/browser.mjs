// Debian's Chromium driven by playwright-core: no browser download, a fresh profile per test,
// and the flags that keep it from calling home on an offline machine.
import { createRequire } from 'node:module';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(new URL('../../../web/package.json', import.meta.url));
const { chromium } = require('playwright-core');

export const CHROMIUM = process.env.DODOLENS_CHROMIUM ?? '/usr/bin/chromium';

const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let browsers = 0;

/**
 * Launches Chromium with a throwaway profile. `fakeMedia` gives it Chromium's synthetic camera
 * and microphone and grants them without a prompt. Each browser is its own client address
 * (`CF-Connecting-IP`, RFC 2544's benchmark range, which `wrangler dev` keeps as sent): the edge
 * allows 10 creations a minute per address, and a run of page tests creates more than that.
 * Returns { context, page, close }.
 */
export async function launch({ viewport = { width: 1024, height: 800 }, fakeMedia = false } = {}) {
  const profile = await mkdtemp(path.join(os.tmpdir(), 'dodolens-chromium-'));
  browsers += 1;
  const client = `198.19.${(browsers >> 8) & 255}.${browsers & 255}`;
  const args = [...FLAGS];
  if (fakeMedia) args.push('--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args,
    viewport,
    locale: 'fr-FR',
    extraHTTPHeaders: { 'CF-Connecting-IP': client },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  return {
    context,
    page,
    errors,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
