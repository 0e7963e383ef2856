// The Node peer's server: Socket.IO 4.8 with the official Redis adapter, speaking the part of
// the tidings protocol the benchmark uses (`subscribe` {job_id} -> join the job's room, ack with
// the job's stored state; events arrive as `job_update` from the worker's emitter).
//
// With REDIS_CLUSTER=1, REDIS_URL names one node of a Redis Cluster, and the adapter is the
// sharded one (`createShardedAdapter`, Redis 7 sharded pub/sub, a channel per room) over
// node-redis cluster clients, as the adapter documents it for a cluster.
//
//   PORT=8001 REDIS_URL=redis://127.0.0.1:6390/0 node server.mjs
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { Redis } from "ioredis";
import { createCluster } from "redis";

const port = Number(process.env.PORT ?? 8001);
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379/0";
const cluster = process.env.REDIS_CLUSTER === "1";
const JOB_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

const pubClient = cluster ? createCluster({ rootNodes: [{ url: redisUrl }] }) : new Redis(redisUrl);
const subClient = pubClient.duplicate();
const store = pubClient.duplicate();
if (cluster) await Promise.all([pubClient, subClient, store].map((client) => client.connect()));
// The job's hash: node-redis spells the command hGetAll, ioredis hgetall.
const readJob = (key) => (cluster ? store.hGetAll(key) : store.hgetall(key));

const httpServer = createServer();
const io = new Server(httpServer, {
  adapter: cluster
    ? createShardedAdapter(pubClient, subClient, { subscriptionMode: "dynamic" })
    : createAdapter(pubClient, subClient),
  transports: ["websocket", "polling"],
  pingInterval: 25000,
  pingTimeout: 20000,
  maxHttpBufferSize: 64 * 1024,
  perMessageDeflate: false,
});

io.on("connection", (socket) => {
  socket.on("subscribe", async (payload, ack) => {
    const reply = typeof ack === "function" ? ack : () => {};
    const jobId = payload?.job_id;
    if (typeof jobId !== "string" || !JOB_ID.test(jobId)) {
      reply({ ok: false, error: { code: "invalid_request", message: "Bad job id." } });
      return;
    }
    try {
      const job = await readJob(`peer:{${jobId}}:job`);
      if (!job.epoch) {
        reply({ ok: false, error: { code: "forbidden", message: "You may not watch this job." } });
        return;
      }
      socket.join(`job:${jobId}`);
      reply({ ok: true, job: { job_id: jobId, ...job } });
    } catch {
      reply({ ok: false, error: { code: "unavailable", message: "The store does not answer." } });
    }
  });
});

httpServer.listen(port, "127.0.0.1", () => console.log(`peer listening on ${port}`));

const stop = () => {
  io.close();
  for (const client of [pubClient, subClient, store]) client.disconnect();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
