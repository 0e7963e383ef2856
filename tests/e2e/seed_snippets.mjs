// The seed documents' React snippets (client_js/test/compat/seed-snippets.tsx, mounted by
// seed-page.tsx) in Chromium against a real tidings server. The page is bundled here with esbuild
// and served from this script on the server's own origin (playwright routes /seed/ to it; every
// other request reaches the server), since the snippets use relative URLs as the documents do.
// Run by tests/e2e/test_seed_snippets.py as `node seed_snippets.mjs '<json config>'` (config as in
// harness.mjs; `scenario` picks one below).

import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

import { check, config, createJob, report, run, screenshot, step, waitUntil } from "./harness.mjs";

const CLIENT = fileURLToPath(new URL("../../client_js/", import.meta.url));
// esbuild is a devDependency of client_js; ESM ignores NODE_PATH, so resolve it there.
const { build } = createRequire(`${CLIENT}package.json`)("esbuild");

const PAGE = `<!doctype html><html lang="en"><meta charset="utf-8"><title>Seed snippets</title>
<div id="root"></div><script type="module" src="/seed/page.js"></script></html>`;

async function bundle() {
  const result = await build({
    absWorkingDir: CLIENT,
    entryPoints: ["test/compat/seed-page.tsx"],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "es2020",
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "silent",
  });
  return result.outputFiles[0].text;
}

/** A browser whose /seed/ on the server's origin is the bundled page. */
async function seedBrowser(open) {
  step("bundle the documents' snippets with esbuild");
  const script = await bundle();
  const browser = await open();
  const origin = new URL(config.url).origin;
  await browser.context.route(
    (url) => url.origin === origin && url.pathname.startsWith("/seed/"),
    (route) => {
      const isScript = new URL(route.request().url()).pathname === "/seed/page.js";
      return route.fulfill(isScript ? { contentType: "text/javascript", body: script } : { contentType: "text/html", body: PAGE });
    },
  );
  return browser;
}

function seedUrl(params) {
  const query = new URLSearchParams(params.flatMap(([key, values]) => values.map((value) => [key, value])));
  return `${config.url}/seed/?${query}`;
}

/** What the modal shows, read from the DOM as a person (or a screen reader) reads it; null when closed. */
function readModal(page) {
  return page.evaluate(() => {
    const dialog = document.querySelector("[role=dialog]");
    if (dialog === null) return { open: false, closedNote: document.body.textContent.includes("modal closed") };
    const bars = {};
    for (const bar of dialog.querySelectorAll("li [role=progressbar]")) {
      bars[bar.getAttribute("aria-label")] = bar.getAttribute("aria-valuetext");
    }
    return {
      open: true,
      title: document.getElementById(dialog.getAttribute("aria-labelledby"))?.textContent,
      overall: dialog.querySelector("[aria-label='Overall progress']").getAttribute("aria-valuenow"),
      summary: dialog.querySelector("[role=status]").textContent,
      bars,
      errors: Array.from(dialog.querySelectorAll("[data-tidings=upload-error]"), (node) => node.textContent),
    };
  });
}

function waitForModal(page, what, accept) {
  return waitUntil(what, () => readModal(page), accept);
}

/** The documents' FileStatusLine of each file, by file id. */
function readStatusLines(page, ids) {
  return page.evaluate((fileIds) => Object.fromEntries(fileIds.map((id) => [id, document.querySelector(`[aria-label="status of ${id}"]`)?.textContent ?? null])), ids);
}

async function connected(page) {
  await waitUntil("the documents' MyComponent to say Connected", () => page.evaluate(() => document.body.textContent), (text) => text.includes("✅ Connected"));
}

/** Two jobs of the page's user, shown in the modal and by their status lines. */
async function openModalOn(open, user, names) {
  const ids = [];
  for (const name of names) ids.push(await createJob(user, name));
  const { page } = await seedBrowser(open);
  step(`the page follows ${user} and opens the modal on ${ids.join(", ")}`);
  await page.goto(seedUrl([["user", [user]], ["upload", ids], ["file", ids]]));
  await connected(page);
  await waitForModal(page, "the modal with a bar per upload at 0%", (modal) =>
    modal.open && modal.title === "Uploading files" && modal.summary === "0% of 2 uploads" &&
    names.every((name) => modal.bars[name] === "0%, in progress"),
  );
  return { page, ids };
}

async function modalCloses(open) {
  const { page, ids } = await openModalOn(open, "seed-user", ["a.csv", "b.csv"]);
  const [a, b] = ids;
  step("a worker reports progress: the bars, the overall bar and the store's entries follow");
  await report(a, { step: "duplicate_check", progress: 40 });
  await report(b, { step: "field_detection", progress: 20 });
  await waitForModal(page, "the bars at 40% and 20%, overall 30%", (modal) =>
    modal.open && modal.bars["a.csv"] === "40%, in progress" && modal.bars["b.csv"] === "20%, in progress" &&
    modal.overall === "30" && modal.summary === "30% of 2 uploads",
  );
  await waitUntil("the status lines of both files", () => readStatusLines(page, ids), (lines) =>
    lines[a] === "duplicate_check 40% running" && lines[b] === "field_detection 20% running",
  );
  await screenshot(page, "seed_modal");

  step("one finishes: its bar completes and the modal stays open for the other");
  await report(a, { step: "complete", status: "done" });
  await waitForModal(page, "a.csv completed, b.csv still going", (modal) =>
    modal.open && modal.bars["a.csv"] === "100%, completed" && modal.bars["b.csv"] === "20%, in progress" && modal.overall === "60",
  );

  step("the other finishes: the modal closes itself (the documents' onClose)");
  await report(b, { step: "complete", status: "done" });
  await waitForModal(page, "the modal to close itself", (modal) => !modal.open && modal.closedNote);
  await waitUntil("the status lines to say completed", () => readStatusLines(page, ids), (lines) =>
    lines[a] === "complete 100% completed" && lines[b] === "complete 100% completed",
  );
}

async function modalStaysOpen(open) {
  const { page, ids } = await openModalOn(open, "seed-user", ["c.csv", "d.csv"]);
  const [c, d] = ids;
  step("one finishes, the other never does: the modal stays open");
  await report(c, { step: "complete", status: "done" });
  await waitForModal(page, "c.csv completed", (modal) => modal.open && modal.bars["c.csv"] === "100%, completed");
  await report(d, { step: "extracting", progress: 50 }); // seen after c's completion was rendered
  const modal = await waitForModal(page, "d.csv at 50%", (seen) => !seen.open || seen.bars["d.csv"] === "50%, in progress");
  check(modal.open, "the modal closed while an upload was still going");
  check(modal.summary === "75% of 2 uploads", `the summary says ${JSON.stringify(modal.summary)}`);
  await screenshot(page, "seed_modal_unfinished");

  step("the unfinished one fails: the modal stays open with the reason, until it is closed");
  await report(d, { step: "error", status: "error", error: { code: "bad_csv", message: "The CSV has no header." } });
  await waitForModal(page, "the failure and its reason", (seen) =>
    seen.open && seen.summary === "1 of 2 uploads failed." && seen.errors.some((text) => text.includes("The CSV has no header.")),
  );
  await page.getByRole("dialog", { name: "Uploading files" }).getByRole("button", { name: "Close" }).click();
  await waitForModal(page, "the Close button to close it", (seen) => !seen.open && seen.closedNote);
}

const csv = (name, text) => ({ name, mimeType: "text/csv", buffer: Buffer.from(text) });

async function uploads(open) {
  const { page } = await seedBrowser(open);
  await page.goto(seedUrl([]));

  step("002's hook: the file input posts to /api/files/upload and shows the overall progress");
  await page.getByLabel("files", { exact: true }).setInputFiles([
    csv("people.csv", "name,email\nAda,ada@example.com\n"),
    csv("money.csv", "when,amount\n2024-01-02,$12.50\n"),
  ]);
  await waitUntil("the overall progress to reach 100.0%", () => page.evaluate(() => document.body.textContent), (text) =>
    text.includes("Overall Progress: 100.0%"),
  );

  step("000's chain upload: liveSystem.uploadFiles reports each file to the end");
  await page.locator("#fileInput").setInputFiles([
    csv("chain-a.csv", "name,email\nGrace,grace@example.com\n"),
    csv("chain-b.csv", "when,amount\n2024-02-03,$7.00\n"),
  ]);
  await page.getByRole("button", { name: "Upload all" }).click();
  const lines = (label) => page.getByRole("list", { name: label }).locator("li").allTextContents();
  const log = await waitUntil("the chain upload to complete", () => lines("upload log"), (seen) =>
    seen.at(-1) === "Upload complete: 2 success, 0 failed",
  );
  for (const expected of ["[0] chain-a.csv: 100% (done)", "[1] chain-b.csv: 100% (done)"]) {
    check(log.includes(expected), `the log lacks ${expected}: ${JSON.stringify(log)}`);
  }

  step("000's job list: this browser's four uploads, with id, type, filename and created_at");
  const listed = await waitUntil("the job list", () => lines("listed jobs"), (seen) => seen.length > 0);
  const pattern = /^job-[\w-]+ upload (\S+): 100% \(done\) since \d{4}-\d\d-\d\dT[\d:.]+Z$/;
  check(listed.every((line) => pattern.test(line)), `a listed job lacks the documents' fields: ${JSON.stringify(listed)}`);
  const names = listed.map((line) => line.match(pattern)[1]).sort();
  check(JSON.stringify(names) === JSON.stringify(["chain-a.csv", "chain-b.csv", "money.csv", "people.csv"]), `listed ${JSON.stringify(names)}`);

  step("000's progress stream: the first file's job, read by onmessage");
  await waitUntil("the stream's line", () => lines("progress stream"), (seen) => seen.includes("chain-a.csv: 100% (done)"));
  await screenshot(page, "seed_uploads");
}

const SCENARIOS = { seed_modal: modalCloses, seed_modal_unfinished: modalStaysOpen, seed_uploads: uploads };
await run(SCENARIOS[config.scenario]);
