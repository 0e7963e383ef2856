/**
 * The SSE fallback against a real tidings server: Socket.IO really cannot connect (the client
 * looks for it under a path the server does not serve), so the client falls back to the server's
 * event streams and its HTTP API, through a real EventSource (the `eventsource` package: Node 20
 * has none of its own).
 */
import { randomUUID } from "node:crypto";

import { EventSource } from "eventsource";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import { createJobClient, type JobClient, type JobClientOptions } from "../../src/client.js";
import type { JobClientError } from "../../src/errors.js";
import { createJobStore } from "../../src/store.js";
import { finish, run, startServer, STEPS, waitFor, type TidingsServer } from "./harness.js";

const SECRET = "sse-test-secret-0123456789abcdef0123";
const clients: JobClient[] = [];

afterEach(() => {
  for (const client of clients.splice(0)) client.destroy();
});

/** A client whose Socket.IO cannot get through, and what it lets through, in order. */
function watcher(server: TidingsServer, options: Omit<JobClientOptions, "url"> = {}) {
  const urls: string[] = [];
  const client = createJobClient({
    url: server.url,
    path: "/no-socket-io-here", // the server answers 404: every Socket.IO attempt fails
    transports: ["polling"],
    reconnectionDelay: 100,
    reconnectionDelayMax: 1_000,
    fallback: "sse",
    eventSource: (url) => {
      urls.push(new URL(url).pathname);
      return new EventSource(url);
    },
    ...options,
  });
  clients.push(client);
  const log: string[] = [];
  const applied: string[] = [];
  const errors: JobClientError[] = [];
  client.on("event", (event) => {
    applied.push(`${event.job_id}@${event.seq}`);
    log.push(`${event.job_id}@${event.seq}`);
  });
  client.on("snapshot", (jobId, snapshot) => log.push(`${jobId}@snapshot ${snapshot === null ? "none" : snapshot.seq}`));
  client.on("error", (error) => errors.push(error));
  return { client, applied, log, errors, urls, entry: (jobId: string) => client.store.getState().jobs[jobId] };
}

/** Each event is the next one after what was shown before it (a snapshot, or the last event). */
function inOrder(log: string[], jobId: string): boolean {
  let at = -1;
  for (const line of log.filter((l) => l.startsWith(`${jobId}@`))) {
    const [, what] = line.split("@") as [string, string];
    if (what.startsWith("snapshot")) {
      at = what === "snapshot none" ? 0 : Number(what.split(" ")[1]);
    } else if (Number(what) !== at + 1) {
      return false;
    } else {
      at += 1;
    }
  }
  return true;
}

describe("the SSE fallback against a real server", () => {
  let server: TidingsServer;
  let open: TidingsServer;

  beforeAll(async () => {
    [server, open] = await Promise.all([startServer({ secret: SECRET }), startServer()]);
  });

  afterAll(async () => {
    await Promise.all([server?.stop(), open?.stop()]);
  });

  const newJob = () => `sse-${randomUUID().slice(0, 8)}`;

  it("falls back when Socket.IO cannot connect, and follows every job of the user over one stream", async () => {
    const user = `user-${randomUUID().slice(0, 6)}`;
    const older = newJob();
    const newer = newJob();
    await run(server, older, STEPS.slice(0, 2), user);
    await finish(server, older);
    await run(server, newer, STEPS.slice(0, 1), user);
    const w = watcher(server, { getToken: () => server.token(user) });
    w.client.followUser();
    await waitFor("the fallback", () => w.client.transport === "sse" && w.client.status === "connected");
    // Socket.IO really was tried and really failed.
    expect(w.errors.filter((e) => e.code === "connection_failed").length).toBeGreaterThanOrEqual(2);
    expect(w.client.store.getState().connection.transport).toBe("sse");
    expect(w.urls).toEqual(["/api/stream"]);
    // The finished job comes from the listing, the running one from the listing or the stream.
    await waitFor("the listed jobs", () => w.entry(older)?.status === "done" && w.entry(newer)?.seq === 1);

    const third = newJob(); // made after the stream opened: it arrives through it
    const seqs = await run(server, third, STEPS, user);
    seqs.push(await finish(server, third));
    const elsewhere = newJob();
    await run(server, elsewhere, STEPS.slice(0, 1), "someone-else");
    await waitFor("the new job", () => w.entry(third)?.status === "done");
    expect(w.applied.filter((s) => s.startsWith(`${third}@`))).toEqual(seqs);
    expect(w.entry(elsewhere)).toBeUndefined();

    // Requests go over HTTP with the token in a header.
    expect((await w.client.listJobs()).map((job) => job.job_id)).toEqual([third, newer, older]);
    const cancelled = await w.client.cancel(newer);
    expect(cancelled.cancel_requested).toBe(true);
    expect(w.entry(newer)?.cancelRequested).toBe(true);
    await expect(w.client.cancel(elsewhere)).rejects.toMatchObject({ name: "JobClientError", code: "forbidden" });
  });

  it("does not fall back when the server refuses the token: the streams would refuse it too", async () => {
    const client = createJobClient({
      url: server.url,
      getToken: () => "not-a-token",
      reconnectionDelay: 100,
      reconnectionDelayMax: 200,
      fallback: "sse",
      fallbackAttempts: 1,
      eventSource: (url) => new EventSource(url),
    });
    clients.push(client);
    const codes: string[] = [];
    client.on("error", (error) => codes.push(error.code));
    client.subscribe(newJob());
    await waitFor("three refusals", () => codes.filter((code) => code === "unauthorized").length >= 3);
    expect(client.transport).toBe("socket.io");
  });

  it("watches one job over its own stream: waiting before it exists, then every event once, to the end", async () => {
    const jobId = newJob();
    const w = watcher(open, { userId: "dev-user" });
    w.client.subscribe(jobId);
    await waitFor("the fallback", () => w.client.transport === "sse" && w.entry(jobId)?.subscription === "active");
    expect(w.entry(jobId)).toMatchObject({ status: "pending", snapshot: null });
    const seqs = await run(open, jobId, STEPS, "dev-user");
    seqs.push(await finish(open, jobId));
    await waitFor("the job to finish", () => w.entry(jobId)?.status === "done");
    expect(inOrder(w.log, jobId)).toBe(true);
    expect(w.entry(jobId)?.seq).toBe(seqs.length);
    expect(w.urls).toContain(`/api/jobs/${jobId}/stream`);
    const truth = await open.snapshot(jobId);
    expect(w.entry(jobId)?.snapshot?.steps).toEqual(truth.steps);
    expect(w.client.status).toBe("connected");
  });

  it("catches a job up from where the store is, with the events it lacks", async () => {
    const jobId = newJob();
    await run(open, jobId, STEPS.slice(0, 2), "dev-user");
    const known = await open.snapshot(jobId); // what a server-rendered page was made with: seq 2
    const seqs = await run(open, jobId, STEPS.slice(2), "dev-user");
    const requests: string[] = [];
    const w = watcher(open, {
      userId: "dev-user",
      store: createJobStore({ snapshots: [known] }),
      fetch: (input, init) => {
        const url = new URL(String(input));
        requests.push(`${url.pathname}?${[...url.searchParams].filter(([key]) => key !== "user_id").map((p) => p.join("=")).join("&")}`);
        return fetch(input, init);
      },
    });
    w.client.subscribe(jobId);
    await waitFor("the missed events", () => w.client.transport === "sse" && w.entry(jobId)?.seq === 2 + seqs.length);
    expect(requests).toContain(`/api/jobs/${jobId}/events?epoch=${known.epoch}&since=2`);
    expect(inOrder([`${jobId}@snapshot 2`, ...w.log], jobId)).toBe(true);
    expect(w.entry(jobId)?.steps).toEqual((await open.snapshot(jobId)).steps);
  });

  it("(control: the order check catches a duplicate and a hole)", () => {
    expect(inOrder(["j@snapshot 2", "j@3", "j@4"], "j")).toBe(true);
    expect(inOrder(["j@snapshot 2", "j@3", "j@3"], "j")).toBe(false);
    expect(inOrder(["j@snapshot none", "j@1", "j@3"], "j")).toBe(false);
  });
});
