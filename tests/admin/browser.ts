/**
 * @module
 * Headless Chromium for the dashboard's end-to-end tests (Debian's `chromium` driven by
 * `playwright-core`). Outside CI a test skips with a printed reason when Chromium is missing;
 * under `CI=true` a missing browser fails the run. Screenshots go to `tests/artifacts/`.
 */

import { type Browser, chromium } from "playwright-core";

/** Where Debian installs Chromium. */
export const CHROMIUM = "/usr/bin/chromium";
/** Where screenshots are written (gitignored). */
export const ARTIFACTS = new URL("../artifacts/", import.meta.url).pathname;

/** Why browser tests cannot run here, or null when they can. Throws under CI. */
export function browserUnavailable(): string | null {
  try {
    Deno.statSync(CHROMIUM);
    return null;
  } catch {
    const why = `${CHROMIUM} is missing (apt-get install -y chromium)`;
    if (Deno.env.get("CI") === "true") {
      throw new Error(`CI=true but browser tests cannot run: ${why}`);
    }
    return why;
  }
}

/**
 * Launches headless Chromium. Playwright gives every `launch()` a fresh temporary profile
 * (`--user-data-dir`) of its own and removes it on close, so no state leaks between runs.
 */
export async function launchBrowser(): Promise<Browser & { dispose(): Promise<void> }> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
    ],
  });
  return Object.assign(browser, {
    dispose: async () => {
      await browser.close().catch(() => {});
    },
  });
}

/** The path of a screenshot named `name` (the folder is created). */
export async function artifact(name: string): Promise<string> {
  await Deno.mkdir(ARTIFACTS, { recursive: true });
  return `${ARTIFACTS}${name}`;
}
