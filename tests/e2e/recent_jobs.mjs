// On an open server the live page lists the server's recent jobs, a worker's job without an owner
// among them, and choosing one follows it live; with a secret there is no such list. Run by
// tests/e2e/test_recent_jobs.py as `node recent_jobs.mjs '<json config>'` (config as in
// harness.mjs, plus the expected sentences, and the user token of the secret scenario).

import { api, check, config, readRows, report, run, screenshot, step, waitForRow, waitUntil } from "./harness.mjs";

const { sentences } = config;
const REGION = "Recent jobs on this server";

/** What the recent list shows: one entry per button, its accessible name; null when hidden. */
function readRecent(page) {
  return page.evaluate(() => {
    const section = document.getElementById("recent");
    if (section.hidden || section.getClientRects().length === 0) return null;
    return Array.from(section.querySelectorAll("li > button"), (button) => button.textContent);
  });
}

async function live(page) {
  await waitUntil("the page to go live", () => page.evaluate(() => document.getElementById("connection").textContent), (badge) => badge === "live");
}

async function open_server(open) {
  step("a worker reports a job with no owner");
  await api("POST", "/api/jobs", { job_id: "nightly-42", filename: "nightly.csv" });
  await report("nightly-42", { step: "duplicate_check", progress: 30, context: { filename: "nightly.csv" } });

  const { page } = await open();
  step("the page at / lists it under recent jobs, and does not follow it by itself");
  const listed = page.waitForResponse((response) => response.url().endsWith("/api/jobs/recent"));
  await page.goto(config.url);
  check((await listed).status() === 200, "GET /api/jobs/recent was refused on an open server");
  await live(page);
  const recent = await waitUntil("the recent list to show the worker's job", () => readRecent(page), (names) => names?.some((name) => name.includes("nightly.csv")));
  check(recent.some((name) => name.includes("Processing") && name.includes("30%")), `the entry does not say how the job stands: ${JSON.stringify(recent)}`);
  check((await readRows(page)).length === 0, "listing a job followed it before anyone chose it");

  step("choosing it (by its role and name, as a screen reader would) follows it live");
  const region = page.getByRole("region", { name: REGION });
  await region.getByRole("list").getByRole("button", { name: /nightly\.csv/ }).click();
  await waitForRow(page, "nightly.csv", { status: "processing", message: sentences.duplicate_check, percent: "30%" });
  check(new URL(page.url()).searchParams.getAll("job").includes("nightly-42"), `the address did not take the job: ${page.url()}`);
  await report("nightly-42", { step: "extracting", progress: 80 });
  await waitForRow(page, "nightly.csv", { status: "processing", message: sentences.extracting, percent: "80%" });

  step("when it ends the list is fetched again and says so");
  await report("nightly-42", { step: "complete", status: "done", context: { filename: "nightly.csv" } });
  await waitForRow(page, "nightly.csv", { status: "done" });
  await waitUntil("the recent entry to say Done", () => readRecent(page), (names) => names?.some((name) => name.includes("nightly.csv") && name.includes("Done")));
  await screenshot(page, "recent_jobs");
}

async function secret_server(open) {
  step("with a secret, a worker reports a job");
  await report("nightly-42", { step: "duplicate_check", progress: 30, context: { filename: "nightly.csv" } });

  const { page } = await open();
  step("the page, opened with a user token, asks for recent jobs, is refused, and shows no list");
  const listed = page.waitForResponse((response) => response.url().endsWith("/api/jobs/recent"));
  await page.goto(`${config.url}/#token=${config.token}`);
  check((await listed).status() === 403, "GET /api/jobs/recent was not refused with a secret");
  await live(page);
  check((await readRecent(page)) === null, "the recent list is shown on a server with a secret");
  const regions = await page.getByRole("region", { name: REGION }).count();
  check(regions === 0, `${regions} "${REGION}" regions are exposed with a secret`);
  check((await readRows(page)).length === 0, "the page shows a job its user may not see");
}

await run(config.scenario === "recent_jobs_secret" ? secret_server : open_server);
