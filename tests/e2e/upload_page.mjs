// The live upload page in a real headless Chromium, one scenario per run (config.scenario):
//
//   upload    three files (one broken) through the picker to their final sentences; hostile names
//             shown as text; a reload mid-job restores every row; cancel; desktop and 375 px shots
//   token     with a secret: the user token from #token=, kept across a reload; none, no upload;
//             an expired one says so and does not fall back to the stream
//   fallback  Socket.IO blocked: the page follows GET /api/stream instead, a folder upload and a
//             cancel work over it, and a reload restores the rows
//   refetch   over the stream, events past a hole fetch the job's state once, not once each
//   reload    under --reload (GET /api/live) a changed stylesheet is swapped without a
//             navigation; a changed script reloads the page
//   many      a thousand files: a row each, all reach done, the log stays capped
//   controls  the upload settings (entity extraction, "Upload all", parallel uploads), the
//             uploading count, notifications, milestones, pulse and fade (and reduced motion),
//             freshness colours, error times, and a job finished before the page loaded
//
// Expected sentences and names come from the Python test (the messages package makes them).

import { rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

import {
  api,
  check,
  config,
  createJob,
  readOverview,
  readRows,
  readTimeline,
  report,
  rowOf,
  run,
  screenshot,
  sleep,
  step,
  userOf,
  waitForRow,
  waitUntil,
} from "./harness.mjs";

// Node 20 has no EventSource of its own; the eventsource package is a devDependency of client_js.
const { EventSource } = createRequire(new URL("../../client_js/package.json", import.meta.url))("eventsource");

const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The row a file of the config must end in. */
function finalRow(file) {
  const expected = { status: file.status };
  if (file.message !== undefined) expected.message = file.message;
  if (file.contains !== undefined) expected.message = new RegExp(escapeRegExp(file.contains));
  return expected;
}

async function expectFinal(page, file) {
  const row = await waitForRow(page, file.name, finalRow(file));
  if (file.error_code !== undefined) {
    check(row.error !== null, `${file.name} failed but shows no error details`);
    const facts = `Code ${file.error_code}, in the step ${file.error_step}.`;
    check(row.error.facts === facts, `${file.name}: error details say "${row.error.facts}", not "${facts}"`);
    check(row.error.reason.includes(file.contains), `${file.name}: error reason "${row.error.reason}"`);
    check(row.percent !== "100%", `${file.name} failed but its bar shows 100%`);
  } else {
    check(row.error === null, `${file.name} is ${row.status} but shows error details`);
    check(row.percent === "100%" && row.valueNow === "100", `${file.name} is done at ${row.percent}`);
  }
  check(!row.cancellable, `${file.name} is finished but still offers Cancel`);
  return row;
}

async function expectNoMarkup(page) {
  const injected = await page.locator("#files img, #files b, #log img, #log b").count();
  check(injected === 0, `${injected} elements were made from data (markup was rendered as HTML)`);
}

/** Drop files onto the drop zone as a drag from the desktop does (a DataTransfer of Files). */
async function drop(page, files) {
  const dataTransfer = await page.evaluateHandle((list) => {
    const transfer = new DataTransfer();
    for (const { name, content } of list) transfer.items.add(new File([content], name, { type: "text/csv" }));
    return transfer;
  }, files);
  await page.dispatchEvent("#dropzone", "dragover", { dataTransfer });
  await page.dispatchEvent("#dropzone", "drop", { dataTransfer });
}

/** Drive a job as a worker would, up to `upTo` steps of config.midJob.steps. */
async function driveSteps(jobId, steps) {
  for (const update of steps) {
    await report(jobId, update);
    await sleep(150); // lets the server estimate an ETA, as a real worker's pace would
  }
}

/** Records each sentence the page's live region is given (read by `said(page)`). */
function listenToAnnouncer(page) {
  return page.evaluate(() => {
    const region = document.getElementById("announcer");
    window.tidingsSaid = [];
    new MutationObserver(() => window.tidingsSaid.push(region.textContent)).observe(region, {
      childList: true,
      characterData: true,
      subtree: true,
    });
  });
}

function said(page) {
  return page.evaluate(() => window.tidingsSaid);
}

/** The Cancel button of a row as a screen reader has it: its text and its accessible name. */
function cancelButton(page, name) {
  return rowOf(page, name)
    .locator(".cancel")
    .evaluate((button) => ({ text: button.textContent, label: button.getAttribute("aria-label") }));
}

async function expectRestored(page, before) {
  const key = (row) => JSON.stringify([row.name, row.status, row.message, row.percent, row.steps]);
  const wanted = before.map(key).sort();
  await waitUntil(
    `the ${before.length} rows to come back as they were: ${JSON.stringify(wanted)}`,
    () => readRows(page),
    (rows) => JSON.stringify(rows.map(key).sort()) === JSON.stringify(wanted),
  );
}

// ---- scenarios ---------------------------------------------------------------------------

async function upload(open) {
  const { page } = await open();
  step("open the page: live over Socket.IO, no hot reload script");
  await page.goto(config.url);
  await waitUntil("the badge to say live via Socket.IO", () => readOverview(page), (o) =>
    o.badge === "live" && o.transport === "via Socket.IO",
  );
  const reloadScripts = await page.locator('script[src="/static/reload.js"]').count();
  check(reloadScripts === 0, "the page links reload.js although the server runs without --reload");
  const user = await userOf(page);
  check(/^web-[0-9a-f]{24}$/.test(user ?? ""), `the page made no user id: ${user}`);

  step("upload three files, one of them broken, through the file picker");
  await page.setInputFiles("#file-input", config.files.map((file) => file.path));
  for (const file of config.files) await expectFinal(page, file);
  const [good] = config.files;
  const timeline = await readTimeline(page, good.name);
  check(
    timeline.every(([status]) => status === "complete"),
    `the timeline of ${good.name} has unfinished steps: ${JSON.stringify(timeline)}`,
  );
  for (const message of good.timeline) {
    check(
      timeline.some(([, text]) => text === message),
      `the timeline of ${good.name} lacks "${message}": ${JSON.stringify(timeline)}`,
    );
  }
  const overview = await readOverview(page);
  check(
    overview.done === "2" && overview.errors === "1" && overview.percent === "100%",
    `the overview after three files: ${JSON.stringify(overview)}`,
  );
  check(/^updated /.test(overview.updated), `no "updated ... ago": ${overview.updated}`);
  check(overview.logLines > 0, "the live log is empty");

  step("a job in the middle of its steps");
  const mid = config.midJob;
  const midJob = await createJob(user, mid.name);
  await driveSteps(midJob, mid.before);
  await waitForRow(page, mid.name, { status: "processing", message: mid.midMessage, percent: mid.midPercent });
  await rowOf(page, good.name).locator(".file-steps > summary").click(); // one open timeline in the shot
  await readTimeline(page, mid.name);
  await screenshot(page, "upload-mid-job");

  step("hostile names: a dropped file and a job whose name is markup are shown as text");
  await drop(page, [{ name: config.hostile.raw, content: "a,b\n1,2\n" }]);
  await waitForRow(page, config.hostile.uploaded, { status: "done" });
  const hostileJob = await createJob(user, config.hostile.raw);
  await report(hostileJob, { step: "hashing", progress: 20, extra: { note: config.hostile.raw } });
  await waitForRow(page, config.hostile.raw, { status: "processing", percent: "20%" });
  await expectNoMarkup(page);

  step("a reload while the job is mid-way: every row comes back as it was");
  const before = await readRows(page);
  check(before.length === 6, `6 rows expected before the reload, saw ${before.length}`);
  await page.reload();
  await expectRestored(page, before);
  const restored = await readTimeline(page, mid.name);
  check(
    restored.length === mid.before.length + 1 && restored.at(-1)[0] === "in_progress",
    `the timeline of ${mid.name} after the reload: ${JSON.stringify(restored)}`,
  );

  step("the job goes on after the reload and finishes live");
  await driveSteps(midJob, mid.after);
  await waitForRow(page, mid.name, { status: "done", message: mid.doneMessage, percent: "100%" });
  await waitUntil("the live region to say so", () => page.textContent("#announcer"), (text) =>
    text === `${mid.name} is done.`,
  );

  step("the same file once more: the live region says it again, though the sentence is the same");
  await listenToAnnouncer(page);
  const again = await createJob(user, mid.name);
  await report(again, { step: "hashing", progress: 30, context: { filename: mid.name } });
  await waitUntil(`a second ${mid.name} row, processing`, () => readRows(page), (rows) =>
    rows.some((row) => row.name === mid.name && row.status === "processing"),
  );
  await report(again, { step: "complete", status: "done", context: { filename: mid.name, rows: 1 } });
  await waitUntil("the live region to say it again", () => said(page), (sentences) =>
    sentences.includes(`${mid.name} is done.`),
  );

  step("cancel one file from its row");
  const doomed = await createJob(user, config.cancel.name);
  await report(doomed, { step: "hashing", progress: 10, context: { filename: config.cancel.name } });
  await waitForRow(page, config.cancel.name, { status: "processing", cancellable: true });
  await rowOf(page, config.cancel.name).locator(".cancel").click();
  await waitForRow(page, config.cancel.name, { status: "cancelled", message: config.cancel.message });
  const snapshot = await api("GET", `/api/jobs/${doomed}`);
  check(snapshot.status === "cancelled", `the server has ${config.cancel.name} as ${snapshot.status}`);

  await expectNoMarkup(page);
  await screenshot(page, "upload-desktop");

  step("a 375 px phone screen: nothing wider than the screen");
  await page.setViewportSize({ width: 375, height: 812 });
  await waitUntil("the page to be 375 px wide", () => page.evaluate(() => window.innerWidth), (width) =>
    width === 375,
  );
  const widths = await page.evaluate(() => ({
    page: document.documentElement.scrollWidth,
    viewport: document.documentElement.clientWidth,
  }));
  check(widths.page <= widths.viewport, `at 375 px the page is ${widths.page} px wide`);
  await screenshot(page, "upload-narrow-375");
}

async function fallback(open) {
  const { context, page } = await open();
  step("block Socket.IO (polling and websocket) for this browser");
  let blocked = 0;
  await context.route(/\/socket\.io\//, (route) => {
    blocked += 1;
    return route.abort();
  });
  // A websocket that is answered by something other than Socket.IO (one unreadable frame, then
  // closed), as behind a middlebox: the client sees an error at once, as with a refused upgrade.
  await context.routeWebSocket(/\/socket\.io\//, (socket) => {
    blocked += 1;
    socket.send("x");
    socket.close();
  });
  await page.goto(config.url);
  await waitUntil("the badge to say live via server-sent events", () => readOverview(page), (o) =>
    o.badge === "live" && o.transport === "via server-sent events",
  );
  check(blocked > 0, "the page never tried Socket.IO, so the fallback was not what was tested");
  const user = await userOf(page);

  step("upload a folder of three files through the folder picker");
  await page.setInputFiles("#folder-input", config.folder);
  for (const file of config.files) await expectFinal(page, file);
  const { rows } = await readOverview(page);
  check(rows === config.files.length, `${rows} rows for a folder of ${config.files.length} files and a hidden one`);

  step("progress of a running job arrives over the stream");
  const mid = config.midJob;
  const midJob = await createJob(user, mid.name);
  await driveSteps(midJob, mid.before);
  await waitForRow(page, mid.name, { status: "processing", message: mid.midMessage, percent: mid.midPercent });

  step("cancel over HTTP; while the server has not answered, the button says so, to the eye and by name");
  const doomed = await createJob(user, config.cancel.name);
  await report(doomed, { step: "hashing", progress: 10, context: { filename: config.cancel.name } });
  await waitForRow(page, config.cancel.name, { status: "processing", cancellable: true });
  const idle = await cancelButton(page, config.cancel.name);
  check(idle.label === `Cancel ${config.cancel.name}`, `the Cancel button is named "${idle.label}"`);
  let release;
  const held = new Promise((resolve) => {
    release = resolve;
  });
  await context.route(/\/api\/jobs\/[^/]+\/cancel/, async (route) => {
    await held;
    await route.continue();
  });
  await rowOf(page, config.cancel.name).locator(".cancel").click();
  const busy = await waitUntil("the button to say Cancelling...", () => cancelButton(page, config.cancel.name), (button) =>
    button.text === "Cancelling...",
  );
  release();
  check(
    busy.label === `Cancelling ${config.cancel.name}`,
    `the button shows "Cancelling..." but is named "${busy.label}"`,
  );
  await waitForRow(page, config.cancel.name, { status: "cancelled", message: config.cancel.message });

  step("a reload: finished and running jobs come back over the stream alone");
  const before = await readRows(page);
  await page.reload();
  await waitUntil("the stream again", () => readOverview(page), (o) => o.transport === "via server-sent events");
  await expectRestored(page, before);
  await driveSteps(midJob, mid.after);
  await waitForRow(page, mid.name, { status: "done", message: mid.doneMessage });
  const overview = await readOverview(page);
  check(overview.transport === "via server-sent events", `switched to ${overview.transport}`);
  await screenshot(page, "fallback-sse");
}

/** A job first seen midway over the stream: three events past a hole, the state fetched once. */
async function refetch(open) {
  const { context, page } = await open();
  step("Socket.IO blocked; the stream replaced by one carrying events 5, 6 and 7 of an unknown job");
  await context.route(/\/socket\.io\//, (route) => route.abort());
  await context.routeWebSocket(/\/socket\.io\//, (socket) => socket.close());
  const jobId = "midway-7f3a";
  const name = "midway.csv";
  const at = (seq) => new Date(Date.UTC(2026, 10, 22, 10, 30, seq)).toISOString();
  const event = (seq) => ({
    job_id: jobId,
    epoch: "e1",
    seq,
    status: "processing",
    step: "field_detection",
    message: `Step ${seq} of ${name}`,
    progress: seq * 10,
    eta_seconds: null,
    timestamp: at(seq),
    extra: { filename: name },
    result: null,
    error: null,
  });
  const { timestamp, ...fields } = event(5);
  const snapshot = { ...fields, owner: "someone", created_at: at(0), updated_at: timestamp, cancel_requested: false, steps: [] };
  const frames = [5, 6, 7].map((seq) => `event: job_update\nid: ${jobId}:e1:${seq}\ndata: ${JSON.stringify(event(seq))}\n\n`);
  await context.route(/\/api\/stream(\?|$)/, (route) =>
    route.fulfill({
      status: 200,
      headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" },
      body: `retry: 600000\n\n${frames.join("")}`, // then the stream ends; it is not reopened here
    }),
  );
  // Counts the stream's events as they reach the page, ahead of the page's own listeners.
  await context.addInitScript(() => {
    const Native = window.EventSource;
    window.tidingsStreamEvents = 0;
    window.EventSource = class extends Native {
      constructor(...args) {
        super(...args);
        this.addEventListener("job_update", () => {
          window.tidingsStreamEvents += 1;
        });
      }
    };
  });
  const streamEvents = () => page.evaluate(() => window.tidingsStreamEvents);
  let fetches = 0;
  await context.route(new RegExp(`/api/jobs/${jobId}(\\?|$)`), async (route) => {
    fetches += 1;
    // Answered only once all three events are in, so each has had its chance to ask again.
    await waitUntil("the page to have all three events", streamEvents, (count) => count === 3);
    await route.fulfill({ status: 200, json: snapshot });
  });

  await page.goto(config.url);
  await waitUntil("the page to follow the stream", () => readOverview(page), (o) => o.transport === "via server-sent events");
  const row = await waitForRow(page, name, { status: "processing", message: `Step 7 of ${name}` });
  check(fetches === 1, `${fetches} requests for the state of one job (one per event past the hole)`);
  check(
    row.percent === "70%" && row.valueNow === "70",
    `the row is behind the last event: ${JSON.stringify(row)}`,
  );
}

async function token(open) {
  const { context, page } = await open();
  step("open the page with a user token in the fragment");
  await page.goto(`${config.url}/#token=${config.token}`);
  await waitUntil("the badge to say live", () => readOverview(page), (o) => o.badge === "live");
  const hash = await page.evaluate(() => location.hash);
  check(hash === "", `the token stays in the address bar: ${hash}`);
  const [file] = config.files;
  await page.setInputFiles("#file-input", [file.path]);
  await expectFinal(page, file);

  step("a reload keeps the token for this tab and restores the row");
  const before = await readRows(page);
  await page.reload();
  await expectRestored(page, before);

  step("control: a tab without the token may not upload");
  const other = await context.newPage();
  await other.goto(config.url);
  await other.setInputFiles("#file-input", [file.path]);
  const refused = await waitForRow(other, file.name, { status: "error", message: `Could not upload ${file.name}.` });
  check(refused.error?.reason === "unauthorized", `the refusal says ${JSON.stringify(refused.error)}`);
  const { rows } = await readOverview(other);
  check(rows === 1, `a tab without the token shows ${rows} rows`);
  await other.close();

  step("a link whose token has expired: the page says so, and does not fall back to the stream");
  const stale = await context.newPage();
  await stale.clock.install(); // the page's timers, run on by the test rather than waited for
  const streams = [];
  stale.on("request", (request) => {
    if (new URL(request.url()).pathname === "/api/stream") streams.push(request.url());
  });
  await stale.goto(`${config.url}/#token=${config.expiredToken}`);
  const notice = () => stale.evaluate(() => {
    const node = document.getElementById("notice");
    return { text: node.textContent, hidden: node.hidden, html: node.innerHTML };
  });
  const shown = await waitUntil("the page to say the session expired", notice, (n) => !n.hidden && n.text !== "");
  check(shown.text === config.sessionExpired, `the notice says "${shown.text}"`);
  check(shown.html === config.sessionExpired, `the notice is markup: ${shown.html}`);
  await stale.clock.runFor(6_000); // past the page's wait for Socket.IO (FALLBACK_AFTER_MS)
  const overview = await readOverview(stale);
  check(overview.transport === "via Socket.IO", `after the refusal the page went ${overview.transport}`);
  check(overview.badge === "offline", `the badge says ${overview.badge}`);
  check(streams.length === 0, `the page opened the event stream with a refused token: ${streams.join(", ")}`);
  await stale.close();
}

async function hotReload(open) {
  const { page } = await open();
  let navigations = 0;
  page.on("framenavigated", (frame) => {
    if (frame === page.mainFrame()) navigations += 1;
  });
  // What the server tells reload.js on GET /api/live, heard here too on a stream of the test's own.
  const reloads = [];
  const stream = new EventSource(`${config.url}/api/live`);
  stream.onmessage = ({ data }) => {
    const message = JSON.parse(data);
    if (message.event === "reload-css") reloads.push(message.path);
  };
  await page.goto(config.url);
  check((await page.locator('script[src="/static/reload.js"]').count()) === 1, "no reload.js under --reload");
  await waitUntil("the hot reload indicator", () => page.locator("#hot-reload").textContent(), (text) => text === "Hot reload on");
  await waitUntil("the badge to say live", () => readOverview(page), (o) => o.badge === "live");
  await waitUntil("the test's own stream to be open", async () => stream.readyState, (state) => state === EventSource.OPEN);
  await page.evaluate(() => {
    window.tidingsE2eMarker = "still the same page";
  });

  const sheet = join(config.staticDir, config.probe.css);
  const script = join(config.staticDir, config.probe.js);
  const color = () => page.evaluate(() => getComputedStyle(document.querySelector(".brand")).color);
  const links = () => page.locator(`link[rel="stylesheet"][href^="/static/${config.probe.css}"]`).count();
  try {
    step("a stylesheet the page uses");
    const sheetPath = `/static/${config.probe.css}`;
    const told = () => reloads.filter((path) => path === sheetPath).length;
    writeFileSync(sheet, ".brand { color: rgb(1, 2, 3); }\n");
    // The watcher's news of the file's creation, in before the page uses it: what follows is a change.
    await waitUntil("the watcher to tell of the new file", async () => told(), (count) => count > 0);
    const toldOfCreation = told();
    await page.evaluate((href) => {
      const link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = href;
      document.head.append(link);
    }, `/static/${config.probe.css}`);
    await waitUntil("the probe stylesheet to apply", color, (value) => value === "rgb(1, 2, 3)");

    step("change it while the page is open: the new style applies without a navigation");
    const before = navigations;
    writeFileSync(sheet, ".brand { color: rgb(200, 10, 20); }\n");
    await waitUntil("the watcher to tell of the change", async () => told(), (count) => count > toldOfCreation);
    await waitUntil("the changed style to apply", color, (value) => value === "rgb(200, 10, 20)");
    await waitUntil("the old stylesheet to go", links, (count) => count === 1);
    const marker = await page.evaluate(() => window.tidingsE2eMarker);
    check(marker === "still the same page" && navigations === before, "the page navigated for a CSS change");

    step("change a script: the page reloads");
    writeFileSync(script, "// probe\n");
    await waitUntil("a reload", async () => navigations, (count) => count > before);
    await page.waitForLoadState("load");
    const after = await page.evaluate(() => window.tidingsE2eMarker ?? null);
    check(after === null, "a script changed but the page was not reloaded");
    await screenshot(page, "hot-reload");
  } finally {
    stream.close();
    rmSync(sheet, { force: true });
    rmSync(script, { force: true });
  }
}

async function many(open) {
  const { page } = await open({ viewport: { width: 1100, height: 900 } });
  await page.goto(config.url);
  await waitUntil("the badge to say live", () => readOverview(page), (o) => o.badge === "live");
  await page.evaluate(() => {
    window.tidingsLongTasks = [];
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.tidingsLongTasks.push(entry.duration);
    }).observe({ type: "longtask", buffered: true });
  });
  const count = config.count;
  step(`drop ${count} files at once`);
  const files = Array.from({ length: count }, (_, index) => {
    const n = String(index + 1).padStart(4, "0");
    return { name: `file-${n}.csv`, content: `id,value\n${n},${index * 7}\n` };
  });
  const started = Date.now();
  await drop(page, files);
  await waitUntil(`all ${count} files done`, () => readOverview(page), (o) => o.done === String(count), 90_000);
  const seconds = (Date.now() - started) / 1000;
  // The counts and the overall bar are drawn in separate frames: wait for the bar too.
  const overview = await waitUntil("the overall bar to reach 100%", () => readOverview(page), (o) => o.percent === "100%");
  check(overview.rows === count, `${overview.rows} rows for ${count} files (rows must be keyed, once each)`);
  check(overview.logLines <= config.logLimit, `the live log holds ${overview.logLines} lines`);
  const statuses = await page.evaluate(() =>
    Array.from(document.querySelectorAll("#files > .file"), (row) => row.dataset.status),
  );
  check(statuses.every((status) => status === "done"), "not every row shows done");
  const longTasks = await page.evaluate(() => window.tidingsLongTasks);
  const longest = Math.max(0, ...longTasks);
  // Figures, not assertions: timing depends on the machine.
  console.log(
    `figures: ${count} files done in ${seconds.toFixed(1)} s; ` +
      `${longTasks.length} long tasks (over 50 ms), the longest ${longest.toFixed(0)} ms`,
  );
  await screenshot(page, "many-files", { fullPage: false });
}

/** Records every notification the page shows, `[kind, text]` (read by `notes(page)`). */
function listenToNotes(page) {
  return page.evaluate(() => {
    window.tidingsNotes = [];
    new MutationObserver((changes) => {
      for (const change of changes) {
        for (const node of change.addedNodes) window.tidingsNotes.push([node.dataset.kind, node.querySelector(".note-text").textContent]);
      }
    }).observe(document.getElementById("notes"), { childList: true });
  });
}

function notes(page) {
  return page.evaluate(() => window.tidingsNotes);
}

/** "updated N s ago" and its colour, on the header or on a row. */
function agoOf(locator) {
  return locator.evaluate((node) => ({ text: node.textContent, freshness: node.dataset.freshness ?? null }));
}

function animationOf(page, selector) {
  return page.locator(selector).first().evaluate((node) => getComputedStyle(node).animationName);
}

async function controls(open) {
  const { page } = await open();
  await page.clock.install(); // time flows as ever; the freshness step moves it on
  const held = []; // upload requests the test has not let through yet
  let holding = true;
  let cutOff = false; // the next upload is cut off, as a dropped connection would
  await page.route("**/api/upload*", (route) => {
    if (cutOff) {
      cutOff = false;
      void route.abort("connectionreset");
    } else if (holding) held.push(route);
    else void route.continue();
  });
  const jobIds = [];
  page.on("response", async (response) => {
    if (new URL(response.url()).pathname !== "/api/upload" || response.status() !== 202) return;
    jobIds.push(...(await response.json()).jobs.map((job) => job.job_id));
  });
  await page.goto(config.url);
  await waitUntil("the badge to say live", () => readOverview(page), (o) => o.badge === "live");
  await listenToNotes(page);
  const user = await userOf(page);

  step("the settings are labelled form controls");
  await page.getByLabel("Extract entities").check();
  await page.getByLabel("Wait for \u201cUpload all\u201d").check();
  const parallel = page.getByLabel("Parallel uploads");
  await parallel.fill("2");
  await parallel.press("Tab"); // committed: the change event
  const uploadAll = page.getByRole("button", { name: "Upload all" });
  check(await uploadAll.isVisible(), "no Upload all button in the Upload all mode");
  check(await uploadAll.isDisabled(), "Upload all is enabled with nothing to upload");

  step("files added wait for Upload all");
  await page.setInputFiles("#file-input", [...config.files, config.spare].map((file) => file.path));
  for (const file of [...config.files, config.spare]) {
    await waitForRow(page, file.name, { status: "waiting", message: /Upload all/ });
  }
  check(held.length === 0, `${held.length} files went up before Upload all was pressed`);
  check((await page.textContent("#held-count")) === "4 files waiting", `held: ${await page.textContent("#held-count")}`);
  await rowOf(page, config.spare.name).locator(".cancel").click();
  await waitForRow(page, config.spare.name, { status: "cancelled" });
  check((await page.textContent("#held-count")) === "3 files waiting", `held after a cancel: ${await page.textContent("#held-count")}`);

  step("Upload all, two at a time: two go up, the third waits its turn");
  await uploadAll.click();
  await waitUntil("two uploads at the server", async () => held.length, (count) => count === 2);
  const during = await waitUntil("the uploading count", () => readOverview(page), (o) => o.uploading === "2");
  check(during.queued === "1", `one file should wait its turn: ${JSON.stringify(during)}`);
  check(held.length === 2, `${held.length} uploads at once with parallel uploads at 2`);
  holding = false;
  for (const route of held.splice(0)) await route.continue();
  for (const file of config.files) await waitForRow(page, file.name, { status: "done" });
  check(jobIds.length === 3, `${jobIds.length} uploads answered`);

  step("entity extraction was asked for with every file");
  for (const jobId of jobIds) {
    const job = await api("GET", `/api/jobs/${jobId}`);
    check(job.steps.some((entry) => entry.step === "entity_extraction"), `${jobId} ran no entity extraction`);
  }

  step("pulse and fade, a done notification");
  check((await animationOf(page, '.stat[data-kind="done"]')) === "pulse", "the done count did not pulse");
  check((await animationOf(page, ".file-message.fade")) === "fade", "no sentence faded in");
  await waitUntil("a done notification", () => notes(page), (seen) => seen.some(([kind]) => kind === "done"));

  step("a failure, uploading at once: an error notification and error details with a time");
  await page.getByLabel("Upload at once").check();
  check(await page.locator("#upload-all-group").isHidden(), "Upload all is still offered when files go up at once");
  await page.setInputFiles("#file-input", [config.broken.path]);
  const broken = await waitForRow(page, config.broken.name, { status: "error" });
  check(broken.error !== null, "the failed file has no error details");
  const failedAt = await rowOf(page, config.broken.name)
    .locator(".file-error-time")
    .evaluate((node) => ({ text: node.textContent, at: node.dateTime }));
  check(/^Failed at \d\d:\d\d:\d\d$/.test(failedAt.text) && !Number.isNaN(Date.parse(failedAt.at)), `error time: ${JSON.stringify(failedAt)}`);
  await waitUntil("an error notification", () => notes(page), (seen) =>
    seen.some(([kind, text]) => kind === "error" && text.includes(config.broken.name)),
  );

  step("an upload cut off: an error notification, and the time in its error details");
  cutOff = true;
  await page.setInputFiles("#file-input", [config.cutOff.path]);
  await waitForRow(page, config.cutOff.name, { status: "error" });
  await waitUntil("an upload error notification", () => notes(page), (seen) =>
    seen.some(([kind, text]) => kind === "error" && text.startsWith(`Could not upload ${config.cutOff.name}`)),
  );
  const cutAt = await rowOf(page, config.cutOff.name).locator(".file-error-time").textContent();
  check(/^Failed at \d\d:\d\d:\d\d$/.test(cutAt ?? ""), `the cut-off upload's error time: ${cutAt}`);
  const dismiss = page.locator(".note-close").first();
  const label = await dismiss.getAttribute("aria-label");
  check(/^Dismiss: /.test(label ?? ""), `the close button of a notification is named ${label}`);

  step("a milestone every ten files");
  const milestoneJobs = [];
  for (let index = 0; index < 10; index += 1) milestoneJobs.push(await createJob(user, `milestone-${index}.csv`));
  for (const [index] of milestoneJobs.entries()) await waitForRow(page, `milestone-${index}.csv`, { status: "queued" });
  for (const jobId of milestoneJobs) await report(jobId, { step: "complete", status: "done", context: { rows: 1 } });
  const milestones = await waitUntil("the milestone note", () => notes(page), (seen) =>
    seen.some(([kind]) => kind === "milestone"),
  );
  check(
    JSON.stringify(milestones.filter(([kind]) => kind === "milestone")) === JSON.stringify([["milestone", "Milestone: 10 files done."]]),
    `milestones: ${JSON.stringify(milestones)}`,
  );
  await waitUntil("the milestone in the live log", () => page.textContent("#log"), (text) => text.includes("Milestone: 10 files done."));

  step("freshness: green under 5 s, yellow under 30 s, red after");
  const thresholds = await page.evaluate(async () => {
    const { freshness } = await import("/static/feedback.js");
    return [0, 4_999, 5_000, 29_999, 30_000].map((ms) => freshness(0, ms));
  });
  check(JSON.stringify(thresholds) === JSON.stringify(["fresh", "fresh", "recent", "recent", "stale"]), `thresholds: ${thresholds}`);
  const probe = await createJob(user, "fresh.csv");
  await report(probe, { step: "hashing", progress: 10, context: { filename: "fresh.csv" } });
  await waitForRow(page, "fresh.csv", { status: "processing" });
  await page.clock.pauseAt(Date.now() + 500);
  const colours = [];
  for (const advance of [0, 10_000, 25_000]) {
    await page.clock.runFor(advance);
    const ago = await agoOf(rowOf(page, "fresh.csv").locator(".file-ago"));
    const seconds = /^updated (\d+) s ago$/.exec(ago.text)?.[1];
    const expected = ago.text === "updated just now" ? "fresh" : seconds === undefined ? "stale" : Number(seconds) < 5 ? "fresh" : Number(seconds) < 30 ? "recent" : "stale";
    check(ago.freshness === expected, `"${ago.text}" is coloured ${ago.freshness}`);
    colours.push(ago.freshness);
  }
  check(colours[1] === "recent" && colours[2] === "stale", `the colours as time passed: ${colours}`);
  const header = await agoOf(page.locator("#updated"));
  check(header.freshness === "stale", `the header's "${header.text}" is coloured ${header.freshness}`);
  await page.clock.resume();
  await screenshot(page, "controls");

  step("a job finished minutes before the page loaded is not 'updated just now'; reduced motion");
  const later = await open({ reducedMotion: "reduce" });
  await later.page.addInitScript((id) => localStorage.setItem("tidings.userId", id), user);
  await later.page.clock.install({ time: Date.now() + 120_000 }); // this page opens two minutes on
  await later.page.goto(config.url);
  const agos = await waitUntil(
    "all 15 rows back, each with its time",
    () => later.page.locator("#files .file-ago").evaluateAll((nodes) => nodes.map((node) => [node.textContent, node.dataset.freshness])),
    (rows) => rows.length === 15 && rows.every(([text]) => text !== ""),
  );
  for (const [text, colour] of agos) {
    check(/^updated \d+ min ago$/.test(text) && colour === "stale", `a finished job shows "${text}" (${colour})`);
  }
  check((await animationOf(later.page, ".stat.pulse")) === "none", "the stats pulse under prefers-reduced-motion");
}

const SCENARIOS = { upload, fallback, refetch, token, reload: hotReload, many, controls };
const scenario = SCENARIOS[config.scenario];
if (scenario === undefined) {
  console.error(`FAIL: no scenario ${config.scenario}; one of ${Object.keys(SCENARIOS).join(", ")}`);
  process.exit(2);
}
await run(scenario);
