// The live page follows any job by its id, in open mode: a job a worker reported (it belongs to
// no user of the page) shows up when opened at /?job=<id>, at /jobs/<id>, or through the
// "Follow a job" form, and comes back on the next visit. Run by tests/e2e/test_follow_job.py as
// `node follow_job.mjs '<json config>'` (config as in harness.mjs, plus the expected sentences).

import { api, check, config, readRows, report, run, sleep, step, waitForRow, waitUntil } from "./harness.mjs";

const { sentences } = config;

await run(async (open) => {
  step("a worker reports two jobs; one more has not started");
  await api("POST", "/api/jobs", { job_id: "worker-7f3a", filename: "expenses.csv" });
  await report("worker-7f3a", { step: "duplicate_check", progress: 15, context: { filename: "expenses.csv" } });
  await api("POST", "/api/jobs", { job_id: "worker-b2", filename: "march.eml" });
  await report("worker-b2", { step: "extracting", progress: 40, context: { filename: "march.eml" } });

  const control = await open();
  step("control: the page at / does not show a worker's job (it follows only its own user)");
  await control.page.goto(config.url);
  await waitUntil("the page to go live", () => control.page.evaluate(() => document.getElementById("connection").textContent), (badge) => badge === "live");
  await sleep(1_000);
  check((await readRows(control.page)).length === 0, "the page at / shows jobs it was never asked to follow");

  const { page } = await open();
  step("/?job=worker-7f3a shows that job");
  await page.goto(`${config.url}/?job=worker-7f3a`);
  await waitForRow(page, "expenses.csv", { status: "processing", message: sentences.duplicate_check, percent: "15%" });

  step("/jobs/worker-late follows a job that does not exist yet, and shows it when it starts");
  await page.goto(`${config.url}/jobs/worker-late`);
  await waitForRow(page, "worker-late", { message: "Waiting for job worker-late to start..." });
  await waitForRow(page, "expenses.csv", { message: sentences.duplicate_check }); // remembered
  await report("worker-late", { step: "extracting", progress: 70 });
  await waitForRow(page, "worker-late", { status: "processing", message: sentences.extracting, percent: "70%" });

  step("the form follows a job by id and puts it in the address");
  await page.fill("#job-id", "worker-b2");
  await page.click("#open-job button[type=submit]");
  await waitForRow(page, "march.eml", { status: "processing", percent: "40%" });
  check(new URL(page.url()).searchParams.getAll("job").includes("worker-b2"), `the address did not take the job: ${page.url()}`);
  await report("worker-b2", { step: "complete", status: "done", context: { filename: "march.eml" } });
  await waitForRow(page, "march.eml", { status: "done" });

  step("a fresh visit to / shows every job followed before (open mode keeps them)");
  await page.goto(config.url);
  for (const name of ["expenses.csv", "worker-late", "march.eml"]) await waitForRow(page, name, {});
});
