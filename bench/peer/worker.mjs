// The Node peer's worker: per update, one EVALSHA of merge.lua (the atomic merge), then
// @socket.io/redis-emitter publishes the resulting Event to the job's room, as a Node
// application on Socket.IO would report progress from a worker process.
//
// The pacing and the protocol are those of bench/tidings_worker.py: `--rate U` updates/s in total
// over `--jobs` jobs round-robin (0: as fast as `--concurrency` in-flight updates allow) for
// `--duration` s. It first sends one update per job and prints {"primed": true}, waits for a line
// on stdin, prints {"started": true}, paces, and prints {"updates", "seconds"}.
//
//   node worker.mjs --redis redis://127.0.0.1:6390/0 --jobs 100 --rate 1000 --duration 10
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { Emitter } from "@socket.io/redis-emitter";
import { Redis } from "ioredis";

const { values } = parseArgs({
  options: {
    redis: { type: "string", default: "redis://127.0.0.1:6379/0" },
    jobs: { type: "string", default: "100" },
    prefix: { type: "string", default: "bench-" },
    rate: { type: "string", default: "0" },
    duration: { type: "string", default: "5" },
    concurrency: { type: "string", default: "64" },
    t0: { type: "string", default: "0" },
  },
});
const jobs = Number(values.jobs);
const rate = Number(values.rate);
const duration = Number(values.duration);
const concurrency = Number(values.concurrency);
const t0 = Number(values.t0);

const redis = new Redis(values.redis);
redis.defineCommand("merge", {
  numberOfKeys: 3,
  lua: readFileSync(new URL("./merge.lua", import.meta.url), "utf8"),
});
const emitter = new Emitter(redis);
// The wall clock the load client reads (Python's time.time()): Date.now(), whole milliseconds
// truncated, so + 0.5 ms is the unbiased reading. Not performance.timeOrigin + performance.now():
// the monotonic clock drifts from the wall clock here (seen: 2.4 ms in 3 s), which made the
// peer's latencies wrong by milliseconds, negative in one run.
const now = () => (Date.now() + 0.5) / 1000;

async function update(index) {
  const jobId = `${values.prefix}${index % jobs}`;
  const sent = now() - t0;
  const json = await redis.merge(
    `peer:{${jobId}}:job`,
    `peer:{${jobId}}:extra`,
    `peer:{${jobId}}:events`,
    jobId,
    new Date().toISOString(),
    "extracting",
    "Extracting data from expenses.csv...",
    String(Math.floor(index / jobs) % 100),
    JSON.stringify({ sent: JSON.stringify(sent) }),
    "1000",
    "604800",
  );
  emitter.to(`job:${jobId}`).emit("job_update", JSON.parse(json));
}

async function main() {
  await Promise.all(Array.from({ length: jobs }, (_, index) => update(index)));
  console.log(JSON.stringify({ primed: true }));
  const lines = createInterface({ input: process.stdin });
  const line = await new Promise((resolve) => {
    lines.once("line", () => resolve(true));
    lines.once("close", () => resolve(false));
  });
  lines.close();
  if (!line) return { updates: 0, seconds: 0 };
  let sent = 0;
  let inflight = 0;
  let wake = () => {};
  console.log(JSON.stringify({ started: true }));
  const start = performance.now();
  const end = start + duration * 1000;
  const one = (index) =>
    update(index)
      .catch((error) => console.error(error))
      .finally(() => {
        inflight -= 1;
        wake();
      });
  while (performance.now() < end) {
    const target = rate > 0 ? (rate * (performance.now() - start)) / 1000 : Infinity;
    while (sent < target && inflight < concurrency) {
      inflight += 1;
      one(sent);
      sent += 1;
    }
    await new Promise((resolve) => {
      wake = resolve;
      setTimeout(resolve, rate > 0 ? 1 : 50);
    });
  }
  while (inflight > 0) await new Promise((resolve) => { wake = resolve; setTimeout(resolve, 10); });
  return { updates: sent, seconds: (performance.now() - start) / 1000 };
}

main()
  .then((result) => console.log(JSON.stringify(result)))
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => redis.quit());
