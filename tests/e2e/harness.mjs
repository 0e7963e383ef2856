// What every scenario of the live page needs: Debian's Chromium driven by playwright-core (never
// a downloaded browser), a watchdog, the tidings HTTP API, and reading the page's rows.
//
// Run by tests/e2e/test_upload_page.py as `node <scenario script> '<json config>'`; the config
// names the server `url`, the `artifacts` directory, the `apiKey` and the scenario's own values.
// A failure exits non-zero with one line starting "FAIL:" and a screenshot in the artifacts.

import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

// playwright-core is a devDependency of client_js; ESM ignores NODE_PATH, so resolve it there.
const require = createRequire(new URL("../../client_js/package.json", import.meta.url));
const { chromium } = require("playwright-core");

export const config = JSON.parse(process.argv[2] ?? "{}");

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
/** No wait in a scenario is longer than this. */
export const WAIT_MS = 20_000;
/** The whole scenario, browser start to close. */
const WATCHDOG_MS = Number(config.watchdogMs ?? 100_000);

export class Failure extends Error {}

const started = Date.now();

export function step(text) {
  console.log(`- ${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s  ${text}`);
}

export function check(condition, message) {
  if (!condition) throw new Failure(message);
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A fresh profile (its own --user-data-dir) in Chromium. `problems` collects what must never
 * happen on the page: uncaught errors, dialogs (an alert would mean markup ran), CSP violations.
 */
export async function launch({ viewport = { width: 1100, height: 900 }, reducedMotion = "no-preference" } = {}) {
  const profile = mkdtempSync(join(tmpdir(), "tidings-e2e-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport,
    reducedMotion,
    timeout: WAIT_MS,
  });
  context.setDefaultTimeout(WAIT_MS);
  const page = context.pages()[0] ?? (await context.newPage());
  const problems = [];
  page.on("pageerror", (error) => problems.push(`uncaught error in the page: ${error.message}`));
  page.on("dialog", (dialog) => {
    problems.push(`a ${dialog.type()} dialog opened: ${dialog.message()}`);
    void dialog.dismiss();
  });
  page.on("console", (message) => {
    if (/Content Security Policy/i.test(message.text())) {
      problems.push(`CSP violation: ${message.text()}`);
    }
  });
  const close = async () => {
    await context.close().catch(() => undefined);
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, page, problems, close };
}

/** Run a scenario with a watchdog; report and exit non-zero on failure. */
export async function run(scenario) {
  const opened = [];
  const open = async (options) => {
    const browser = await launch(options);
    opened.push(browser);
    return browser;
  };
  const watchdog = setTimeout(() => {
    console.error(`FAIL: the scenario did not finish within ${WATCHDOG_MS / 1000} s`);
    process.exit(2);
  }, WATCHDOG_MS);
  try {
    await scenario(open);
    for (const { problems } of opened) check(problems.length === 0, problems.join("; "));
    console.log("ok");
  } catch (error) {
    const message = error instanceof Failure ? error.message : (error?.stack ?? String(error));
    console.error(`FAIL: ${message}`);
    for (const [index, { page }] of opened.entries()) {
      await page
        .screenshot({ path: join(config.artifacts, `${config.scenario}-failure-${index}.png`), fullPage: true })
        .catch(() => undefined);
    }
    process.exitCode = 1;
  } finally {
    clearTimeout(watchdog);
    for (const browser of opened) await browser.close();
  }
}

/** The tidings HTTP API, with the server's API key (workers' rights: create jobs, report progress). */
export async function api(method, path, body) {
  const response = await fetch(`${config.url}${path}`, {
    method,
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${config.apiKey}` },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const reply = await response.json();
  check(response.ok, `${method} ${path} answered ${response.status}: ${JSON.stringify(reply)}`);
  return reply;
}

/** A job of the page's user, driven by the test as a worker would drive it. */
export async function createJob(owner, filename) {
  const { job } = await api("POST", "/api/jobs", { owner, filename });
  return job.job_id;
}

export function report(jobId, update) {
  return api("POST", `/api/jobs/${encodeURIComponent(jobId)}/progress`, update);
}

/** The page's user id, as it keeps it in localStorage. */
export function userOf(page) {
  return page.evaluate(() => localStorage.getItem("tidings.userId"));
}

/** What every row of the file list shows, read from the DOM as a person would read it. */
export function readRows(page) {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll("#files > .file"), (row) => {
      const error = row.querySelector(".file-error");
      const cancel = row.querySelector(".cancel");
      return {
        name: row.querySelector(".file-name").textContent,
        status: row.dataset.status,
        state: row.querySelector(".file-state").textContent,
        message: row.querySelector(".file-message").textContent,
        percent: row.querySelector(".file-percent").textContent,
        valueNow: row.querySelector("[role=progressbar]").getAttribute("aria-valuenow"),
        steps: row.querySelector(".file-steps > summary").textContent,
        error: error.hidden
          ? null
          : {
              reason: row.querySelector(".file-error-reason").textContent,
              facts: row.querySelector(".file-error-facts").textContent,
            },
        cancellable: !cancel.hidden && !cancel.disabled,
      };
    }),
  );
}

/** The overview: counts on the stats cards, overall percent, connection badge. */
export function readOverview(page) {
  return page.evaluate(() => {
    const text = (id) => document.getElementById(id).textContent;
    return {
      queued: text("count-queued"),
      uploading: text("count-uploading"),
      processing: text("count-processing"),
      done: text("count-done"),
      errors: text("count-errors"),
      percent: text("overall-percent"),
      label: text("overall-label"),
      badge: text("connection"),
      transport: text("transport"),
      updated: text("updated"),
      logLines: document.getElementById("log").childElementCount,
      rows: document.querySelectorAll("#files > .file").length,
    };
  });
}

/**
 * Poll `read()` until `accept(value)` holds; on timeout fail with `what` and the last value seen,
 * so a failure says what the page showed instead.
 */
export async function waitUntil(what, read, accept, timeout = WAIT_MS) {
  const deadline = Date.now() + timeout;
  let value;
  for (;;) {
    value = await read();
    if (accept(value)) return value;
    if (Date.now() > deadline) {
      throw new Failure(`timed out waiting for ${what}; the page showed ${JSON.stringify(value, null, 1)}`);
    }
    await sleep(100);
  }
}

/** Wait until the row of `name` matches every field of `expected` (a RegExp tests a string). */
export async function waitForRow(page, name, expected, timeout = WAIT_MS) {
  const matches = (row) =>
    row !== undefined &&
    Object.entries(expected).every(([key, want]) =>
      want instanceof RegExp ? want.test(row[key] ?? "") : JSON.stringify(row[key]) === JSON.stringify(want),
    );
  const rows = await waitUntil(
    `the row of ${name} to show ${JSON.stringify(expected, (_, value) => (value instanceof RegExp ? String(value) : value))}`,
    () => readRows(page),
    (all) => matches(all.find((row) => row.name === name)),
    timeout,
  );
  return rows.find((row) => row.name === name);
}

/** The row of the file `name`, as a Playwright locator. */
export function rowOf(page, name) {
  return page.locator("#files > .file").filter({ has: page.locator(".file-name", { hasText: name }) });
}

/** Open a row's step timeline and read it: `[status, message]` per step. */
export async function readTimeline(page, name) {
  const details = rowOf(page, name).locator(".file-steps");
  if (!(await details.evaluate((node) => node.open))) await details.locator("summary").click();
  await details.locator(".timeline > li").first().waitFor(); // drawn on the toggle event
  return details.locator(".timeline > li").evaluateAll((items) =>
    items.map((item) => [item.dataset.status, item.querySelector(".step-message").textContent]),
  );
}

export function screenshot(page, name, options = {}) {
  const path = join(config.artifacts, `${name}.png`);
  step(`screenshot ${path}`);
  return page.screenshot({ path, fullPage: true, ...options });
}
