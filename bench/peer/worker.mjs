// The Node peer's worker: per update, one EVALSHA of merge.lua (the atomic merge), then
// @socket.io/redis-emitter publishes the resulting Event to the job's room, as a Node
// application on Socket.IO would report progress from a worker process.
//
// The pacing and the protocol are those of bench/tidings_worker.py: `--rate U` updates/s in total
// over `--jobs` jobs round-robin (0: as fast as `--concurrency` in-flight updates allow) for
// `--duration` s. It first sends one update per job and prints {"primed": true}, waits for a line
// on stdin, prints {"started": true}, paces, and prints {"updates", "seconds"}.
//
// With --cluster, --redis names one node of a Redis Cluster (the server's REDIS_CLUSTER=1): the
// merge runs on the job's master through node-redis' cluster client, and the Event is published
// for the sharded adapter (see `sharded()`).
//
//   node worker.mjs --redis redis://127.0.0.1:6390/0 --jobs 100 --rate 1000 --duration 10
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { Emitter } from "@socket.io/redis-emitter";
import { Redis } from "ioredis";
import { createCluster, defineScript } from "redis";

const { values } = parseArgs({
  options: {
    redis: { type: "string", default: "redis://127.0.0.1:6379/0" },
    jobs: { type: "string", default: "100" },
    prefix: { type: "string", default: "bench-" },
    rate: { type: "string", default: "0" },
    duration: { type: "string", default: "5" },
    concurrency: { type: "string", default: "64" },
    t0: { type: "string", default: "0" },
    cluster: { type: "boolean", default: false },
  },
});
const jobs = Number(values.jobs);
const rate = Number(values.rate);
const duration = Number(values.duration);
const concurrency = Number(values.concurrency);
const t0 = Number(values.t0);

const script = readFileSync(new URL("./merge.lua", import.meta.url), "utf8");

// One Redis server: ioredis, and @socket.io/redis-emitter for the classic adapter.
function classic() {
  const redis = new Redis(values.redis);
  redis.defineCommand("merge", { numberOfKeys: 3, lua: script });
  const emitter = new Emitter(redis);
  return {
    merge: (...args) => redis.merge(...args),
    publish: (jobId, event) => emitter.to(`job:${jobId}`).emit("job_update", event),
    quit: () => redis.quit(),
  };
}

// A Redis Cluster: what the sharded adapter in its "dynamic" mode publishes for
// io.to(room).emit(...), which @socket.io/redis-emitter does not speak: ClusterAdapter's
// BROADCAST message, JSON (the adapter's encode() for data without binary), SPUBLISHed on the
// room's own shard channel `socket.io#<nsp>#<room>#` (dynamicChannel()). The uid is no server's,
// so that every server delivers it.
async function sharded() {
  const redis = createCluster({
    rootNodes: [{ url: values.redis }],
    scripts: {
      // The keys first, so FIRST_KEY_INDEX 0 routes the call to the job's master.
      merge: defineScript({
        NUMBER_OF_KEYS: 3,
        FIRST_KEY_INDEX: 0,
        SCRIPT: script,
        transformArguments: (...args) => args,
      }),
    },
  });
  await redis.connect();
  return {
    merge: (...args) => redis.merge(...args),
    publish: (jobId, event) => {
      const room = `job:${jobId}`;
      const message = {
        uid: "worker",
        nsp: "/",
        type: 3, // MessageType.BROADCAST
        data: {
          packet: { type: 2, data: ["job_update", event], nsp: "/" }, // an EVENT packet
          opts: { rooms: [room], except: [], flags: {} },
        },
      };
      return redis.sPublish(`socket.io#/#${room}#`, JSON.stringify(message));
    },
    quit: () => redis.quit(),
  };
}

const redis = values.cluster ? await sharded() : classic();
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
  await redis.publish(jobId, JSON.parse(json));
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
