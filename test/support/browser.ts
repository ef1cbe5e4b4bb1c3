import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
// The same flags take the README's screenshots (scripts/dashboard-screenshots.js).
import CHROMIUM_ARGS from './chromium-args.json';

/** Debian's chromium package; CHROMIUM_PATH points elsewhere. `.ci/run` installs it when missing. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * A headless Chromium with nothing of its own going on (no updates, sync or background requests), so that
 * every request it makes is one the page made.
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`No Chromium at ${CHROMIUM_PATH}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}
