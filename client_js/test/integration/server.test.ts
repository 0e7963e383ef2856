/**
 * The client against a real tidings server (started here, with the embedded store and with a
 * Redis store), through the real socket.io-client. Each test asserts the exact list of applied
 * seqs against the seqs the server handed out, so a lost, doubled or reordered event fails it.
 */
import { randomUUID } from "node:crypto";
import { pathToFileURL } from "node:url";

import { io, type Socket } from "socket.io-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import { createJobClient, type JobClient, type JobClientOptions } from "../../src/client.js";
import type { JobClientError } from "../../src/errors.js";
import type { Event } from "../../src/protocol.js";
import type { ConnectionStatus } from "../../src/store.js";
import { finish, run, startRedis, startServer, STEPS, waitFor, type Redis, type TidingsServer } from "./harness.js";

const SECRET = "integration-secret-0123456789abcdef";

const clients: JobClient[] = [];

afterEach(() => {
  for (const client of clients.splice(0)) client.destroy();
});

function watcher(server: TidingsServer, options: Omit<JobClientOptions, "url" | "transport"> = {}) {
  let socket: Socket | undefined;
  const live: string[] = [];
  const client = createJobClient({
    url: server.url,
    reconnectionDelay: 100,
    reconnectionDelayMax: 1_000,
    ...options,
    transport: (url, transportOptions) => {
      const made = io(url, transportOptions);
      // What arrives over the wire, before the client rule: to show which path each event took.
      for (const name of ["job_update", "job_complete", "job_error"] as const) {
        made.on(name, (event: Event) => live.push(`${event.job_id}@${event.seq}`));
      }
      socket = made;
      return made;
    },
  });
  clients.push(client);
  const applied: string[] = [];
  const snapshots: string[] = [];
  const statuses: ConnectionStatus[] = [];
  const errors: JobClientError[] = [];
  client.on("event", (event) => applied.push(`${event.job_id}@${event.seq}`));
  client.on("snapshot", (jobId, snapshot) => snapshots.push(`${jobId}@${snapshot === null ? "none" : snapshot.seq}`));
  client.on("status", (status) => statuses.push(status));
  client.on("error", (error) => errors.push(error));
  return {
    client,
    applied,
    snapshots,
    statuses,
    errors,
    live,
    entry: (jobId: string) => client.store.getState().jobs[jobId],
    socket: () => {
      if (socket === undefined) throw new Error("no socket yet");
      return socket;
    },
  };
}

type StoreKind = "embedded" | "redis";

/** A server with a secret, and for the Redis store its own redis-server, for one block's tests. */
function serverFor(kind: StoreKind, started: (server: TidingsServer, redis: Redis | undefined) => void): void {
  let redis: Redis | undefined;
  let server: TidingsServer | undefined;

  beforeAll(async () => {
    if (kind === "redis") redis = await startRedis();
    server = await startServer({ secret: SECRET, ...(redis === undefined ? {} : { redisUrl: redis.url }) });
    started(server, redis);
  });

  afterAll(async () => {
    await server?.stop();
    await redis?.stop();
  });
}

const jobOf = (kind: StoreKind) => `job-${kind}-${randomUUID().slice(0, 8)}`;

describe.each(["embedded", "redis"] as const)("a real tidings server, %s store", (kind) => {
  let server: TidingsServer;
  serverFor(kind, (started) => {
    server = started;
  });

  const newJob = () => jobOf(kind);

  it("watches a job subscribed before it exists, to completion, every seq exactly once", async () => {
    const jobId = newJob();
    const token = await server.token("user-1", { jobs: [jobId] });
    const w = watcher(server, { getToken: () => token });
    w.client.subscribe(jobId);
    await waitFor("the subscription", () => w.entry(jobId)?.subscription === "active");
    expect(w.entry(jobId)?.status).toBe("pending");
    expect(w.snapshots).toEqual([`${jobId}@none`]);

    const seqs = await run(server, jobId, STEPS, "user-1");
    seqs.push(await finish(server, jobId));
    await waitFor("the job to finish", () => w.entry(jobId)?.status === "done");
    expect(w.applied).toEqual(seqs);
    expect(seqs).toEqual(seqs.map((_, i) => `${jobId}@${i + 1}`));

    // The client grew the same state, timeline included, as the server holds.
    const truth = await server.snapshot(jobId, token);
    const mine = w.entry(jobId)?.snapshot;
    for (const field of ["epoch", "seq", "status", "step", "message", "progress", "extra", "result", "error", "steps"] as const) {
      expect(mine?.[field], field).toEqual(truth[field]);
    }
    expect(w.entry(jobId)?.filename).toBe(`${jobId}.csv`);
    expect(w.client.status).toBe("connected");
  });

  it("loses nothing when the transport drops mid-job: the missed events come from the resubscribe", async () => {
    const jobId = newJob();
    const token = await server.token("user-1", { jobs: [jobId] });
    // While `gate` is shut, getToken does not answer, so the reconnect cannot complete.
    let gate: Promise<void> | null = null;
    let openGate = () => undefined as void;
    const w = watcher(server, {
      getToken: async () => {
        if (gate !== null) await gate;
        return token;
      },
    });
    w.client.subscribe(jobId);
    await waitFor("the subscription", () => w.entry(jobId)?.subscription === "active");
    const seqs = await run(server, jobId, STEPS.slice(0, 2), "user-1");
    await waitFor("the first events", () => w.applied.length === 2);

    gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    w.socket().io.engine.close(); // the transport goes away; the manager reconnects by itself
    await waitFor("the client to notice", () => w.client.status === "reconnecting");
    const missed = await run(server, jobId, STEPS.slice(2), "user-1");
    seqs.push(...missed);
    openGate();
    gate = null;
    await waitFor("the reconnect", () => w.client.status === "connected");
    seqs.push(await finish(server, jobId));
    await waitFor("the job to finish", () => w.entry(jobId)?.status === "done");

    expect(w.applied).toEqual(seqs);
    expect(seqs).toEqual(seqs.map((_, i) => `${jobId}@${i + 1}`));
    // The control: those events never came over the wire live, so only the resubscribe
    // (epoch + since) can have brought them.
    for (const seq of missed) expect(w.live).not.toContain(seq);
    expect(w.snapshots).toEqual([`${jobId}@none`]);
    expect(w.statuses).toEqual(["connecting", "connected", "reconnecting", "connected"]);
  });

  it("marks a job the caller may not watch as forbidden, and lets its owner watch it", async () => {
    const jobId = newJob();
    await run(server, jobId, STEPS.slice(0, 1), "user-1");
    // A short wait: the server's refusals are asked about again for this long before they stand.
    const stranger = watcher(server, { getToken: () => server.token("user-2"), forbiddenGrace: 300 });
    const seen: string[] = [];
    stranger.client.store.subscribe((state) => {
      const subscription = state.jobs[jobId]?.subscription;
      if (subscription !== undefined && seen.at(-1) !== subscription) seen.push(subscription);
    });
    stranger.client.subscribe(jobId);
    await waitFor("the refusal", () => stranger.entry(jobId)?.subscription === "forbidden");
    expect(seen).toEqual(["pending", "forbidden"]);
    expect(stranger.entry(jobId)).toMatchObject({ status: "error", error: { code: "forbidden" }, snapshot: null });
    expect(stranger.errors.map((e) => [e.code, e.jobId])).toEqual([["forbidden", jobId]]);
    await expect(stranger.client.cancel(jobId)).rejects.toMatchObject({ name: "JobClientError", code: "forbidden" });
    // A job that does not exist reads the same, so ids cannot be probed.
    stranger.client.subscribe(`${jobId}-nope`);
    await waitFor("the refusal", () => stranger.entry(`${jobId}-nope`)?.subscription === "forbidden");

    const owner = watcher(server, { getToken: () => server.token("user-1") });
    owner.client.subscribe(jobId);
    await waitFor("the owner's subscription", () => owner.entry(jobId)?.subscription === "active");
    expect(owner.entry(jobId)).toMatchObject({ status: "processing", seq: 1 });
    expect(stranger.applied).toEqual([]);
  });

  it("shows a job watched before its worker creates it as waiting, then follows it", async () => {
    const jobId = newJob();
    const early = watcher(server, { getToken: () => server.token("user-1") });
    const seen: string[] = [];
    early.client.store.subscribe((state) => {
      const entry = state.jobs[jobId];
      const shown = entry === undefined ? undefined : `${entry.subscription}/${entry.status}`;
      if (shown !== undefined && seen.at(-1) !== shown) seen.push(shown);
    });
    early.client.subscribe(jobId);
    // The server refuses it until it exists (it cannot tell whose it is), so it stays pending.
    await waitFor("a refusal", () => early.socket().connected && early.entry(jobId)?.subscription === "pending");
    await run(server, jobId, STEPS.slice(0, 2), "user-1");
    await waitFor("its events", () => early.entry(jobId)?.seq === 2);
    expect(early.entry(jobId)).toMatchObject({ status: "processing", subscription: "active", error: null });
    expect(seen.filter((shown) => shown.startsWith("forbidden"))).toEqual([]);
    expect(seen[0]).toBe("pending/pending");
    expect(early.errors).toEqual([]);
    // The control: the server does refuse a job before it exists; without the grace that shows.
    const hasty = watcher(server, { getToken: () => server.token("user-1"), forbiddenGrace: 0 });
    hasty.client.subscribe(`${jobId}-later`);
    await waitFor("the refusal", () => hasty.entry(`${jobId}-later`)?.subscription === "forbidden");
  });

  it("refreshes an expired token through getToken, and misses nothing across the reconnect", async () => {
    const jobId = newJob();
    const tokens: number[] = [];
    const w = watcher(server, {
      // The first token lives two seconds at most; the server then closes the socket.
      getToken: () => {
        tokens.push(tokens.length);
        return server.token("user-1", { ttlSeconds: tokens.length === 1 ? 2 : 3600 });
      },
    });
    const seqs = await run(server, jobId, STEPS.slice(0, 1), "user-1");
    w.client.subscribe(jobId);
    await waitFor("the subscription", () => w.entry(jobId)?.subscription === "active");
    await waitFor("the server to drop the expired socket", () => w.statuses.includes("reconnecting"), 20_000);
    seqs.push(...(await run(server, jobId, STEPS.slice(1), "user-1")));
    await waitFor("the reconnect", () => w.client.status === "connected");
    seqs.push(await finish(server, jobId));
    await waitFor("the job to finish", () => w.entry(jobId)?.status === "done");
    expect(tokens.length).toBeGreaterThanOrEqual(2);
    expect(w.snapshots).toEqual([`${jobId}@1`]);
    expect([...w.snapshots.map((s) => s), ...w.applied]).toEqual([`${jobId}@1`, ...seqs.slice(1)]);
    expect(w.statuses.slice(0, 3)).toEqual(["connecting", "connected", "reconnecting"]);
    expect(w.statuses.at(-1)).toBe("connected");
  });

  it("is refused with an expired token, asks getToken again and gets in", async () => {
    const jobId = newJob();
    let calls = 0;
    const w = watcher(server, {
      getToken: () => {
        calls += 1;
        return server.token("user-1", { ttlSeconds: calls === 1 ? -60 : 3600 });
      },
    });
    await run(server, jobId, STEPS.slice(0, 2), "user-1");
    w.client.subscribe(jobId);
    await waitFor("the subscription", () => w.entry(jobId)?.subscription === "active");
    expect(calls).toBe(2);
    expect(w.errors.map((e) => [e.code, e.message])).toEqual([["unauthorized", "unauthorized"]]);
    expect(w.statuses).toEqual(["connecting", "reconnecting", "connected"]);
    expect(w.entry(jobId)?.seq).toBe(2);
  });

  it("follows every job of a user through the user room, and cancels one", async () => {
    const user = `user-${randomUUID().slice(0, 6)}`;
    const older = newJob();
    const newer = newJob();
    await run(server, older, STEPS.slice(0, 2), user);
    await finish(server, older);
    await run(server, newer, STEPS.slice(0, 1), user);
    const w = watcher(server, { getToken: () => server.token(user) });
    w.client.followUser();
    await waitFor("the listed jobs", () => w.entry(older)?.status === "done" && w.entry(newer)?.seq === 1);
    expect(w.client.store.getState().order).toEqual([older, newer]);

    const third = newJob(); // made after the client connected: it arrives through the user room
    const seqs = await run(server, third, STEPS, user);
    seqs.push(await finish(server, third));
    const elsewhere = newJob();
    await run(server, elsewhere, STEPS.slice(0, 1), "someone-else");
    await waitFor("the new job", () => w.entry(third)?.status === "done");
    expect(w.applied.filter((s) => s.startsWith(`${third}@`))).toEqual(seqs);
    expect(w.entry(elsewhere)).toBeUndefined();
    expect(w.client.store.getState().getAggregate()).toMatchObject({ total: 3, completed: 2, active: 1 });

    const listed = await w.client.listJobs();
    expect(listed.map((job) => job.job_id)).toEqual([third, newer, older]);
    const cancelled = await w.client.cancel(newer);
    expect(cancelled.cancel_requested).toBe(true);
    expect(w.entry(newer)?.cancelRequested).toBe(true);
  });
});

describe("a real tidings server, redis store, when Redis loses a job", () => {
  let server: TidingsServer;
  let redis: Redis;
  serverFor("redis", (started, itsRedis) => {
    server = started;
    if (itsRedis === undefined) throw new Error("a Redis store without its redis-server");
    redis = itsRedis;
  });

  it("replaces its state when Redis loses the job and it starts a new life", async () => {
    const jobId = jobOf("redis");
    const token = await server.token("user-1", { jobs: [jobId] });
    const w = watcher(server, { getToken: () => token });
    const order: string[] = [];
    w.client.on("event", (event) => order.push(`event ${event.epoch}:${event.seq}`));
    w.client.on("snapshot", (_id, snapshot) => order.push(`snapshot ${snapshot?.epoch ?? "-"}:${snapshot?.seq ?? 0}`));
    w.client.subscribe(jobId);
    await waitFor("the subscription", () => w.entry(jobId)?.subscription === "active");
    await run(server, jobId, STEPS.slice(0, 2), "user-1");
    await waitFor("the first life", () => w.entry(jobId)?.seq === 2);
    const first = w.entry(jobId)?.epoch as string;

    expect(await redis.command("FLUSHALL")).toBe("+OK");
    const again = await run(server, jobId, STEPS.slice(2), "user-1"); // upserts: a new epoch
    again.push(await finish(server, jobId));
    expect(again).toEqual([`${jobId}@1`, `${jobId}@2`, `${jobId}@3`, `${jobId}@4`]);
    await waitFor("the second life to finish", () => w.entry(jobId)?.status === "done");
    const second = w.entry(jobId)?.epoch as string;
    expect(second).not.toBe(first);

    // First life in order, then one snapshot of the new life at some k, then exactly k+1..4.
    const replaced = order.findIndex((line) => line.startsWith(`snapshot ${second}:`));
    expect(order.slice(0, replaced)).toEqual([`snapshot -:0`, `event ${first}:1`, `event ${first}:2`]);
    const k = Number(order[replaced]?.split(":")[1]);
    expect(order.slice(replaced + 1)).toEqual(
      [1, 2, 3, 4].filter((seq) => seq > k).map((seq) => `event ${second}:${seq}`),
    );
    // The timeline is the new life's alone, as the server has it.
    const truth = await server.snapshot(jobId, token);
    expect(w.entry(jobId)?.snapshot?.steps).toEqual(truth.steps);
    expect(w.entry(jobId)?.seq).toBe(4);
  });
});

describe("the browser bundle against a real server", () => {
  let server: TidingsServer;
  let hadWebSocket = false;

  beforeAll(async () => {
    server = await startServer({ secret: SECRET });
    // Node 20 has no WebSocket global; the bundle is the browser build, so lend it one.
    hadWebSocket = "WebSocket" in globalThis;
    if (!hadWebSocket) Object.assign(globalThis, { WebSocket: (await import("ws")).WebSocket });
  });

  afterAll(async () => {
    if (!hadWebSocket) Reflect.deleteProperty(globalThis, "WebSocket");
    await server?.stop();
  });

  it("watches a job to completion, as the live page does", async () => {
    const { bundlePath } = await import("../../scripts/bundle.mjs");
    const bundle = (await import(/* @vite-ignore */ pathToFileURL(bundlePath).href)) as typeof import("../../src/index.js");
    const jobId = `bundle-${randomUUID().slice(0, 8)}`;
    const token = await server.token("user-1", { jobs: [jobId] });
    const client = bundle.createJobClient({ url: server.url, getToken: () => token, transports: ["websocket"] });
    clients.push(client);
    const applied: string[] = [];
    client.on("event", (event) => applied.push(`${event.job_id}@${event.seq}`));
    client.subscribe(jobId);
    await waitFor("the subscription", () => client.store.getState().jobs[jobId]?.subscription === "active");
    const seqs = await run(server, jobId, STEPS, "user-1");
    seqs.push(await finish(server, jobId));
    await waitFor("the job to finish", () => client.store.getState().jobs[jobId]?.status === "done");
    expect(applied).toEqual(seqs);
    expect(client.store.getState().getAggregate()).toMatchObject({ total: 1, allCompleted: true, percentage: 100 });
  });
});

describe("a real tidings server in open mode", () => {
  let server: TidingsServer;

  beforeAll(async () => {
    server = await startServer();
  });

  afterAll(async () => {
    await server?.stop();
  });

  it("names the user with auth.user_id and watches any job", async () => {
    const jobId = `open-${randomUUID().slice(0, 8)}`;
    const w = watcher(server, { userId: "dev-user" });
    w.client.followUser();
    w.client.subscribe(jobId);
    await waitFor("the subscription", () => w.entry(jobId)?.subscription === "active");
    const seqs = await run(server, jobId, STEPS, "dev-user");
    seqs.push(await finish(server, jobId));
    await waitFor("the job to finish", () => w.entry(jobId)?.status === "done");
    expect(w.applied).toEqual(seqs);
    expect(await w.client.listJobs()).toEqual([expect.objectContaining({ job_id: jobId, owner: "dev-user" })]);
  });
});
