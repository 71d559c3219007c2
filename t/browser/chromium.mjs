// What the browser tests (t/browser/*.test.mjs) share: where the test server,
// the browser and the artifacts are, and how Chromium is started. Run by
// t/60_browser.t, which sets
//   WEBSESSION_TEST_PORT       the test httpd's port
//   WEBSESSION_TEST_TLS_PORT   its TLS virtual host's port (websession_ssl), if any
//   WEBSESSION_ARTIFACTS       where screenshots and the browser's console go
//                              (default build/browser/)
//   CHROMIUM                   the browser (default /usr/bin/chromium)
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const top = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const PORT = Number(process.env.WEBSESSION_TEST_PORT) || 0;
export const TLS_PORT = Number(process.env.WEBSESSION_TEST_TLS_PORT) || 0;
export const ARTIFACTS = process.env.WEBSESSION_ARTIFACTS || path.join(top, 'build', 'browser');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const SKIP = PORT ? false : 'WEBSESSION_TEST_PORT is not set (run through t/60_browser.t)';

// The flags that work on this machine image, as root (playwright adds
// --headless and its own fresh --user-data-dir).
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                              '--disable-background-networking', '--disable-component-update',
                              '--disable-sync'];

/** Debian's headless Chromium, through playwright-core. */
export async function launchChromium() {
    const { chromium } = await import('playwright-core');
    return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 30000 });
}
