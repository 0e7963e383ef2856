// The live upload page in a real headless Chromium, one scenario per run (config.scenario):
//
//   upload    three files (one broken) through the picker to their final sentences; hostile names
//             shown as text; a reload mid-job restores every row; cancel; desktop and 375 px shots
//   token     with a secret: the user token from #token=, kept across a reload; none, no upload
//   fallback  Socket.IO blocked: the page follows GET /api/stream instead, a folder upload and a
//             cancel work over it, and a reload restores the rows
//   reload    under --reload a changed stylesheet is swapped without a navigation; a changed
//             script reloads the page
//   many      a thousand files: a row each, all reach done, the log stays capped
//
// Expected sentences and names come from the Python test (the messages package makes them).

import { rmSync, writeFileSync } from "node:fs";
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
  await sleep(200);
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

  step("cancel over HTTP");
  const doomed = await createJob(user, config.cancel.name);
  await report(doomed, { step: "hashing", progress: 10, context: { filename: config.cancel.name } });
  await waitForRow(page, config.cancel.name, { status: "processing", cancellable: true });
  await rowOf(page, config.cancel.name).locator(".cancel").click();
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
}

async function hotReload(open) {
  const { page } = await open();
  let navigations = 0;
  page.on("framenavigated", (frame) => {
    if (frame === page.mainFrame()) navigations += 1;
  });
  await page.goto(config.url);
  check((await page.locator('script[src="/static/reload.js"]').count()) === 1, "no reload.js under --reload");
  await waitUntil("the badge to say live", () => readOverview(page), (o) => o.badge === "live");
  await page.evaluate(() => {
    window.tidingsE2eMarker = "still the same page";
  });

  const sheet = join(config.staticDir, config.probe.css);
  const script = join(config.staticDir, config.probe.js);
  const color = () => page.evaluate(() => getComputedStyle(document.querySelector(".brand")).color);
  const links = () => page.locator(`link[rel="stylesheet"][href^="/static/${config.probe.css}"]`).count();
  try {
    step("a stylesheet the page uses");
    writeFileSync(sheet, ".brand { color: rgb(1, 2, 3); }\n");
    await page.evaluate((href) => {
      const link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = href;
      document.head.append(link);
    }, `/static/${config.probe.css}`);
    await waitUntil("the probe stylesheet to apply", color, (value) => value === "rgb(1, 2, 3)");
    await sleep(500); // the watcher has seen the file's creation; what follows is a change

    step("change it while the page is open: the new style applies without a navigation");
    const before = navigations;
    writeFileSync(sheet, ".brand { color: rgb(200, 10, 20); }\n");
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
  const overview = await waitUntil(
    `all ${count} files done`,
    () => readOverview(page),
    (o) => o.done === String(count),
    90_000,
  );
  const seconds = (Date.now() - started) / 1000;
  check(overview.rows === count, `${overview.rows} rows for ${count} files (rows must be keyed, once each)`);
  check(overview.percent === "100%", `overall shows ${overview.percent}`);
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

const SCENARIOS = { upload, fallback, token, reload: hotReload, many };
const scenario = SCENARIOS[config.scenario];
if (scenario === undefined) {
  console.error(`FAIL: no scenario ${config.scenario}; one of ${Object.keys(SCENARIOS).join(", ")}`);
  process.exit(2);
}
await run(scenario);
