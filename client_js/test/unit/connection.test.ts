/** The connection: tokens, refusals, reconnects, status, and the requests that are not `subscribe`. */
import { afterEach, describe, expect, it, vi } from "vitest";

import { createJobClient, type JobClient } from "../../src/client.js";
import { MAX_SUBSCRIBES_IN_FLIGHT } from "../../src/subscriptions.js";
import { JobClientError } from "../../src/errors.js";
import type { ConnectionStatus } from "../../src/store.js";
import { ev, fakeTransport, flush, snap, type Sent } from "../fake-socket.js";

let client: JobClient | undefined;

afterEach(() => {
  client?.destroy();
  client = undefined;
  vi.useRealTimers();
});

function setup(options: Parameters<typeof createJobClient>[0] = {}) {
  const transport = fakeTransport();
  client = createJobClient({ url: "http://tidings.test", transport: transport.factory, ...options });
  const statuses: ConnectionStatus[] = [];
  const errors: JobClientError[] = [];
  client.on("status", (status) => statuses.push(status));
  client.on("error", (error) => errors.push(error));
  return { client, transport, statuses, errors };
}

describe("the socket", () => {
  it("is not made until something needs it, then goes websocket first with polling after", () => {
    const { client, transport } = setup();
    expect(transport.sockets).toHaveLength(0);
    expect(client.status).toBe("disconnected");
    client.subscribe("job-1");
    expect(transport.sockets).toHaveLength(1);
    const { options, url } = transport.last();
    expect(url).toBe("http://tidings.test");
    expect(options.transports).toEqual(["websocket", "polling"]);
    expect(options.tryAllTransports).toBe(true);
    expect(options.forceNew).toBe(true);
    expect(options.reconnection).toBe(true);
    expect(options.randomizationFactor).toBe(0.5);
    expect(client.status).toBe("connecting");
  });

  it("removes its listeners when destroyed", () => {
    const { client, transport } = setup();
    client.subscribe("job-1");
    const socket = transport.last();
    expect(socket.listenerCount()).toBe(7);
    client.destroy();
    expect(socket.listenerCount()).toBe(0);
    expect(socket.active).toBe(false);
  });
});

describe("auth", () => {
  it("asks getToken on every connect, so a reconnect carries a fresh token", async () => {
    let n = 0;
    const getToken = vi.fn(async () => `token-${++n}`);
    const { client, transport } = setup({ getToken, userId: "ignored-when-there-is-a-token" });
    client.subscribe("job-1");
    const socket = transport.last();
    expect(await socket.open()).toEqual({ token: "token-1" });
    socket.drop();
    expect(await socket.open()).toEqual({ token: "token-2" });
    expect(getToken).toHaveBeenCalledTimes(2);
  });

  it("sends user_id when there is no token (a server in open mode)", async () => {
    const { client, transport } = setup({ userId: "user-1", getToken: () => null });
    client.subscribe("job-1");
    expect(await transport.last().open()).toEqual({ user_id: "user-1" });
  });

  it("connects without a token when getToken fails, and says why", async () => {
    const { client, transport, errors } = setup({
      getToken: () => Promise.reject(new Error("no session")),
    });
    client.subscribe("job-1");
    expect(await transport.last().open()).toEqual({});
    expect(errors.map((e) => e.code)).toEqual(["unauthorized"]);
  });

  it("retries a refused connection with backoff, asking for a new token each time", async () => {
    vi.useFakeTimers();
    let n = 0;
    const getToken = vi.fn(() => `token-${++n}`);
    const { client, transport, statuses, errors } = setup({
      getToken,
      reconnectionDelay: 1_000,
      reconnectionDelayMax: 8_000,
      randomizationFactor: 0.5,
      random: () => 0.5, // no jitter: the delays are exactly 1 s, 2 s, 4 s, 8 s, 8 s
    });
    client.subscribe("job-1");
    const socket = transport.last();
    const expected = [1_000, 2_000, 4_000, 8_000, 8_000];
    for (const [i, delay] of expected.entries()) {
      await socket.refuse("unauthorized");
      expect(socket.connectCalls).toBe(i + 1);
      await vi.advanceTimersByTimeAsync(delay - 1);
      expect(socket.connectCalls).toBe(i + 1);
      await vi.advanceTimersByTimeAsync(1);
      expect(socket.connectCalls).toBe(i + 2);
    }
    expect(client.store.getState().connection).toMatchObject({
      status: "reconnecting",
      error: { code: "unauthorized", message: "unauthorized" },
      attempts: 5,
    });
    await socket.open();
    expect(socket.auths.map((a) => a.token)).toEqual(["token-1", "token-2", "token-3", "token-4", "token-5", "token-6"]);
    expect(client.store.getState().connection).toEqual({ status: "connected", error: null, attempts: 0, transport: "socket.io" });
    expect(statuses).toEqual(["connecting", "reconnecting", "connected"]);
    expect(errors).toHaveLength(5);
    expect(errors.every((e) => e instanceof JobClientError && e.code === "unauthorized")).toBe(true);
  });

  it("keeps the jitter within the randomization factor", async () => {
    vi.useFakeTimers();
    const { client, transport } = setup({
      reconnectionDelay: 1_000,
      randomizationFactor: 0.5,
      random: () => 0, // the shortest possible: 1 s - 50 %
    });
    client.subscribe("job-1");
    const socket = transport.last();
    await socket.refuse();
    await vi.advanceTimersByTimeAsync(499);
    expect(socket.connectCalls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.connectCalls).toBe(2);
  });

  it("reconnects by itself when the server closes the socket (an expired token)", async () => {
    vi.useFakeTimers();
    const getToken = vi.fn().mockReturnValueOnce("old").mockReturnValueOnce("fresh");
    const { client, transport, statuses } = setup({ getToken, random: () => 0.5 });
    client.subscribe("job-1");
    const socket = transport.last();
    await socket.open();
    socket.only("subscribe").answer({ ok: true, job: snap(2), events: [], recovered: false });
    await flush();
    socket.serverDisconnect();
    expect(client.status).toBe("reconnecting");
    await vi.advanceTimersByTimeAsync(1_000);
    expect(socket.connectCalls).toBe(2);
    await socket.open();
    expect(socket.auths.map((a) => a.token)).toEqual(["old", "fresh"]);
    expect(socket.only("subscribe").payload).toEqual({ job_id: "job-1", epoch: "e1", since: 2 });
    expect(statuses).toEqual(["connecting", "connected", "reconnecting", "connected"]);
  });

  it("waits out a rate_limited refusal's retry_after, then its backoff, and says so in the store", async () => {
    vi.useFakeTimers();
    const { client, transport, errors } = setup({
      getToken: () => "token",
      reconnectionDelay: 1_000,
      reconnectionDelayMax: 8_000,
      random: () => 0.5, // no jitter
    });
    client.subscribe("job-1");
    const socket = transport.last();
    // Wrong tokens (1 s, 2 s), then the address's budget is spent: 10 s, and then the 4 s backoff.
    const refusals: [string, unknown, number][] = [
      ["unauthorized", undefined, 1_000],
      ["unauthorized", undefined, 2_000],
      ["rate_limited", { retry_after: 10 }, 14_000],
    ];
    for (const [i, [message, data, delay]] of refusals.entries()) {
      await socket.refuse(message, data);
      await vi.advanceTimersByTimeAsync(delay - 1);
      expect(socket.connectCalls).toBe(i + 1);
      await vi.advanceTimersByTimeAsync(1);
      expect(socket.connectCalls).toBe(i + 2);
    }
    const sentence =
      "The server refuses connections from this address for now (too many wrong credentials from it); trying again in 10 s.";
    expect(errors.map((e) => [e.code, e.message])).toEqual([
      ["unauthorized", "unauthorized"],
      ["unauthorized", "unauthorized"],
      ["rate_limited", sentence],
    ]);
    expect(errors[2]).toBeInstanceOf(JobClientError);
    expect(client.store.getState().connection).toEqual({
      status: "reconnecting",
      error: { code: "rate_limited", message: sentence },
      attempts: 3,
      transport: "socket.io",
    });
    await socket.open();
    expect(client.store.getState().connection).toEqual({ status: "connected", error: null, attempts: 0, transport: "socket.io" });
    expect(socket.only("subscribe").payload).toEqual({ job_id: "job-1" });
  });

  it.each([
    ["keeps the jitter after retry_after (the shortest: 5 s + 1 s - 50 %)", { retry_after: 5 }, 5_500],
    ["(control: without retry_after, the backoff alone)", undefined, 500],
    ["(control: a retry_after that is no number counts as none)", { retry_after: "soon" }, 500],
  ])("%s", async (_name, data, delay) => {
    vi.useFakeTimers();
    const { client, transport, errors } = setup({ getToken: () => "token", reconnectionDelay: 1_000, random: () => 0 });
    client.subscribe("job-1");
    const socket = transport.last();
    await socket.refuse("rate_limited", data);
    await vi.advanceTimersByTimeAsync(delay - 1);
    expect(socket.connectCalls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.connectCalls).toBe(2);
    expect(errors[0]?.code).toBe("rate_limited");
    expect(errors[0]?.message).toMatch(data?.retry_after === 5 ? /trying again in 5 s\.$/ : /trying again shortly\.$/);
  });

  it("does not connect before retry_after when asked to (disconnect() and connect(), a new token)", async () => {
    vi.useFakeTimers();
    const { client, transport, statuses } = setup({ getToken: () => "token", reconnectionDelay: 1_000, random: () => 0.5 });
    client.subscribe("job-1");
    const socket = transport.last();
    await socket.refuse("rate_limited", { retry_after: 30 });
    await vi.advanceTimersByTimeAsync(10_000);
    client.disconnect();
    client.connect();
    expect(client.status).toBe("connecting");
    // 20 s of the 30 are left; the attempt count started afresh, so the backoff is 1 s.
    await vi.advanceTimersByTimeAsync(20_999);
    expect(socket.connectCalls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.connectCalls).toBe(2);
    await socket.open();
    expect(statuses).toEqual(["connecting", "reconnecting", "disconnected", "connecting", "connected"]);
  });

  it("(control: past retry_after, connect() connects at once)", async () => {
    vi.useFakeTimers();
    const { client, transport } = setup({ getToken: () => "token", reconnectionDelay: 1_000, random: () => 0.5 });
    client.subscribe("job-1");
    const socket = transport.last();
    await socket.refuse("rate_limited", { retry_after: 30 });
    client.disconnect();
    await vi.advanceTimersByTimeAsync(30_000);
    expect(socket.connectCalls).toBe(1);
    client.connect();
    expect(socket.connectCalls).toBe(2);
  });

  it("leaves transport failures to the manager's own reconnection", async () => {
    vi.useFakeTimers();
    const { client, transport } = setup();
    client.subscribe("job-1");
    const socket = transport.last();
    await socket.open();
    socket.drop("ping timeout");
    await vi.advanceTimersByTimeAsync(60_000);
    expect(socket.connectCalls).toBe(1); // socket.active: socket.io-client reconnects itself
    expect(client.status).toBe("reconnecting");
  });
});

describe("status", () => {
  it("goes disconnected on disconnect() and picks every watch up again on connect()", async () => {
    const { client, transport, statuses } = setup();
    client.subscribe("job-1");
    const socket = transport.last();
    await socket.open();
    socket.only("subscribe").answer({ ok: true, job: snap(4), events: [], recovered: false });
    await flush();
    client.disconnect();
    expect(client.status).toBe("disconnected");
    client.connect();
    expect(client.status).toBe("connecting");
    await socket.open();
    expect(socket.only("subscribe").payload).toEqual({ job_id: "job-1", epoch: "e1", since: 4 });
    expect(statuses).toEqual(["connecting", "connected", "disconnected", "connecting", "connected"]);
  });

  it("records when each job last heard something", async () => {
    let clock = 1_000;
    const { client, transport } = setup({ now: () => clock });
    client.subscribe("job-1");
    const socket = transport.last();
    await socket.open();
    expect(client.lastEventAt("job-1")).toBeNull();
    socket.only("subscribe").answer({ ok: true, job: snap(1), events: [], recovered: false });
    await flush();
    expect(client.lastEventAt("job-1")).toBe(1_000);
    clock = 4_000;
    socket.push("job_update", ev(2));
    expect(client.lastEventAt("job-1")).toBe(4_000);
    clock = 9_000;
    socket.push("job_update", ev(2)); // a duplicate is not news
    expect(client.lastEventAt("job-1")).toBe(4_000);
  });
});

describe("subscriptions", () => {
  it("counts subscribers and unsubscribes on the server after the last one", async () => {
    const { client, transport } = setup();
    const first = client.subscribe("job-1");
    const second = client.subscribe("job-1");
    const socket = transport.last();
    await socket.open();
    expect(socket.pending("subscribe")).toHaveLength(1);
    socket.only("subscribe").answer({ ok: true, job: snap(1), events: [], recovered: false });
    await flush();
    first();
    first(); // twice is once
    expect(socket.pending("unsubscribe")).toHaveLength(0);
    expect(client.watched()).toEqual(["job-1"]);
    second();
    expect(socket.only("unsubscribe").payload).toEqual({ job_id: "job-1" });
    expect(client.watched()).toEqual([]);
    socket.push("job_update", ev(2));
    expect(client.store.getState().jobs["job-1"]?.seq).toBe(1);
    expect(client.store.getState().jobs["job-1"]?.subscription).toBe("none");
  });

  it("leaves a job the application cleared cleared when it stops watching it", async () => {
    const { client, transport } = setup();
    const stopA = client.subscribe("a");
    const stopB = client.subscribe("b");
    const socket = transport.last();
    await socket.open();
    for (const sent of socket.pending("subscribe")) {
      const id = String(sent.payload["job_id"]);
      sent.answer({ ok: true, job: snap(4, { job: id, status: id === "a" ? "done" : "processing" }), events: [], recovered: false });
    }
    await flush();
    expect(client.store.getState().getAggregate().allSettled).toBe(false);
    client.store.getState().clearStatus("b");
    stopB();
    expect(client.store.getState().jobs["b"]).toBeUndefined();
    expect(client.store.getState().getAggregate()).toMatchObject({ total: 1, allSettled: true });
    stopA();
    expect(client.store.getState().jobs["a"]?.subscription).toBe("none"); // kept, and marked unwatched
  });

  it("resumes from what the store holds when a job is watched again", async () => {
    const { client, transport } = setup();
    const stop = client.subscribe("job-1");
    const socket = transport.last();
    await socket.open();
    socket.only("subscribe").answer({ ok: true, job: snap(3), events: [], recovered: false });
    await flush();
    stop();
    client.subscribe("job-1");
    expect(socket.only("subscribe").payload).toEqual({ job_id: "job-1", epoch: "e1", since: 3 });
  });

  it("survives a subscribe, unsubscribe, subscribe in one tick (StrictMode effects)", async () => {
    const { client, transport } = setup();
    client.subscribe("job-1");
    const socket = transport.last();
    await socket.open();
    client.subscribe("job-1")(); // mount, unmount ...
    const stop = client.subscribe("job-1"); // ... mount again
    void stop;
    await flush();
    // Only the last answer counts.
    for (const sent of socket.pending("subscribe")) {
      sent.answer({ ok: true, job: snap(2), events: [], recovered: false });
    }
    await flush();
    expect(client.watched()).toEqual(["job-1"]);
    expect(client.store.getState().jobs["job-1"]).toMatchObject({ seq: 2, subscription: "active" });
  });

  it("asks quietly about a forbidden job for a while, then marks it in the store and stops", async () => {
    vi.useFakeTimers();
    let clock = 0;
    const { client, transport, errors } = setup({ now: () => clock, random: () => 0.5, forbiddenGrace: 30_000 });
    client.subscribe("secret");
    const socket = transport.last();
    await socket.open();
    const refuse = () =>
      socket.only("subscribe").answer({ ok: false, error: { code: "forbidden", message: "You may not watch this job." } });
    refuse();
    await flush();
    expect(client.store.getState().jobs["secret"]).toMatchObject({ status: "pending", subscription: "pending", error: null });
    expect(errors).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_000); // the first retry's backoff
    clock = 30_000; // past the grace: this refusal is the last word
    refuse();
    await flush();
    expect(client.store.getState().jobs["secret"]).toMatchObject({
      status: "error",
      subscription: "forbidden",
      error: { code: "forbidden", message: "You may not watch this job." },
    });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(JobClientError);
    expect(errors[0]?.code).toBe("forbidden");
    expect(errors[0]?.jobId).toBe("secret");
    await vi.advanceTimersByTimeAsync(120_000);
    expect(socket.pending("subscribe")).toHaveLength(0);
    // A new connection (a new token, say) asks again, and an allowed answer clears the mark.
    socket.drop();
    await socket.open();
    socket.only("subscribe").answer({ ok: true, job: null, events: [], recovered: false });
    await flush();
    expect(client.store.getState().jobs["secret"]).toMatchObject({ status: "pending", error: null, subscription: "active" });
  });

  it.each([
    ["shows a job watched before its worker creates it as waiting, never as forbidden", 30_000, ["pending", "pending"]],
    ["(control: with no grace the same refusal marks it forbidden at once)", 0, ["forbidden", "error"]],
  ])("%s", async (_name, forbiddenGrace, firstSeen) => {
    vi.useFakeTimers();
    const { client, transport, errors } = setup({ random: () => 0.5, forbiddenGrace });
    client.subscribe("early");
    const socket = transport.last();
    await socket.open();
    // Not created yet: the server cannot tell the caller owns it, so it refuses.
    socket.only("subscribe").answer({ ok: false, error: { code: "forbidden", message: "You may not watch this job." } });
    await flush();
    const entry = client.store.getState().jobs["early"];
    expect([entry?.subscription, entry?.status]).toEqual(firstSeen);
    expect(errors.map((e) => e.code)).toEqual(forbiddenGrace === 0 ? ["forbidden"] : []);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(socket.pending("subscribe")).toHaveLength(forbiddenGrace === 0 ? 0 : 1);
    if (forbiddenGrace === 0) return;
    // The worker has created it now.
    socket.only("subscribe").answer({ ok: true, job: snap(1, { job: "early" }), events: [], recovered: false });
    await flush();
    expect(client.store.getState().jobs["early"]).toMatchObject({ subscription: "active", status: "processing", seq: 1, error: null });
    expect(errors).toEqual([]);
  });

  it("retries a subscribe refused as unavailable or rate limited, quietly: not failed, no error", async () => {
    vi.useFakeTimers();
    const { client, transport, errors } = setup({ random: () => 0.5 });
    const applied: number[] = [];
    client.on("event", (event) => applied.push(event.seq));
    client.subscribe("job-1");
    const socket = transport.last();
    await socket.open();
    socket.only("subscribe").answer({ ok: false, error: { code: "unavailable", message: "The store is down." } });
    await flush();
    expect(client.store.getState().jobs["job-1"]?.subscription).toBe("pending");
    socket.push("job_update", ev(2)); // held while the subscribe waits: the position is not known
    await vi.advanceTimersByTimeAsync(999);
    expect(socket.pending("subscribe")).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    socket.only("subscribe").answer({ ok: false, error: { code: "rate_limited", message: "Slow down." } });
    await flush();
    expect(client.store.getState().jobs["job-1"]?.subscription).toBe("pending");
    await vi.advanceTimersByTimeAsync(1_999); // backing off: 1 s, then 2 s
    expect(socket.pending("subscribe")).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    socket.only("subscribe").answer({ ok: true, job: snap(1), events: [], recovered: false });
    await flush();
    expect(client.store.getState().jobs["job-1"]).toMatchObject({ subscription: "active", seq: 2 });
    expect(applied).toEqual([2]);
    expect(errors).toEqual([]);
  });

  it("reads a subscribe answered with nothing as unavailable, and asks again", async () => {
    vi.useFakeTimers();
    const { client, transport, errors } = setup({ random: () => 0.5 });
    client.subscribe("job-1");
    const socket = transport.last();
    await socket.open();
    socket.only("subscribe").answer(undefined);
    await flush();
    expect(errors).toEqual([]);
    expect(client.store.getState().jobs["job-1"]?.subscription).toBe("pending");
    await vi.advanceTimersByTimeAsync(1_000);
    socket.only("subscribe").answer({ ok: true, job: snap(3), events: [], recovered: false });
    await flush();
    expect(client.store.getState().jobs["job-1"]).toMatchObject({ subscription: "active", seq: 3 });
  });
});

describe("the subscribe queue", () => {
  const ids = Array.from({ length: 40 }, (_, i) => `job-${i + 1}`);
  const ok = (sent: Sent) =>
    sent.answer({ ok: true, job: snap(1, { job: String(sent.payload["job_id"]) }), events: [], recovered: false });

  it(`keeps at most ${MAX_SUBSCRIBES_IN_FLIGHT} subscribes on the wire, on a reconnect as on the first connect`, async () => {
    const { client, transport } = setup();
    for (const id of ids) client.subscribe(id);
    const socket = transport.last();
    await socket.open();
    let most = 0;
    for (let round = 0; round < 2; round += 1) {
      const asked: string[] = [];
      while (socket.pending("subscribe").length > 0) {
        const pending = socket.pending("subscribe");
        most = Math.max(most, pending.length);
        expect(pending).toHaveLength(Math.min(MAX_SUBSCRIBES_IN_FLIGHT, ids.length - asked.length));
        const first = pending[0] as Sent;
        asked.push(String(first.payload["job_id"]));
        ok(first); // one answer makes room for exactly one more
        await flush();
      }
      expect(asked).toEqual(ids); // each once, in the order they were watched
      socket.drop();
      await socket.open();
    }
    expect(most).toBe(MAX_SUBSCRIBES_IN_FLIGHT);
    expect(ids.every((id) => client.store.getState().jobs[id]?.subscription === "active")).toBe(true);
  });

  it("pauses the whole queue on rate_limited, then goes on; nothing is failed or reported", async () => {
    vi.useFakeTimers();
    const { client, transport, errors } = setup({ random: () => 0.5, reconnectionDelay: 1_000 });
    for (const id of ids) client.subscribe(id);
    const socket = transport.last();
    await socket.open();
    const [limited, ...rest] = socket.pending("subscribe");
    limited?.answer({ ok: false, error: { code: "rate_limited", message: "Too many requests." } });
    await flush();
    // Paused: the answer freed a place, but nothing new goes out; those already sent are answered.
    expect(socket.pending("subscribe")).toHaveLength(MAX_SUBSCRIBES_IN_FLIGHT - 1);
    for (const sent of rest) ok(sent);
    await flush();
    expect(socket.pending("subscribe")).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(999);
    expect(socket.pending("subscribe")).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.pending("subscribe")).toHaveLength(MAX_SUBSCRIBES_IN_FLIGHT);
    for (let i = 0; i < 100 && socket.pending("subscribe").length > 0; i += 1) {
      for (const sent of socket.pending("subscribe")) ok(sent);
      await flush();
      await vi.advanceTimersByTimeAsync(1_000);
    }
    expect(errors).toEqual([]);
    expect(ids.filter((id) => client.store.getState().jobs[id]?.subscription !== "active")).toEqual([]);
    expect(socket.sent.filter((s) => s.event === "subscribe")).toHaveLength(ids.length + 1);
  });

  it("asks list_jobs again, quietly, when it is refused as rate limited", async () => {
    vi.useFakeTimers();
    const { client, transport, errors } = setup({ random: () => 0.5, userId: "user-1" });
    client.followUser();
    const socket = transport.last();
    await socket.open();
    socket.only("list_jobs").answer({ ok: false, error: { code: "rate_limited", message: "Slow down." } });
    await flush();
    await vi.advanceTimersByTimeAsync(999);
    expect(socket.pending("list_jobs")).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    socket.only("list_jobs").answer({ ok: true, jobs: [snap(2, { job: "a" })] });
    await flush();
    expect(client.store.getState().jobs["a"]).toMatchObject({ seq: 2, subscription: "active" });
    expect(errors).toEqual([]);
  });
});

describe("requests", () => {
  it("cancels, and marks the job as asked to stop", async () => {
    const { client, transport } = setup();
    client.subscribe("job-1");
    const socket = transport.last();
    await socket.open();
    socket.only("subscribe").answer({ ok: true, job: snap(2), events: [], recovered: false });
    await flush();
    const pending = client.cancel("job-1");
    const sent = socket.only("cancel");
    expect(sent.payload).toEqual({ job_id: "job-1" });
    sent.answer({ ok: true, job: { ...snap(2), cancel_requested: true } });
    expect((await pending).cancel_requested).toBe(true);
    expect(client.store.getState().jobs["job-1"]?.cancelRequested).toBe(true);
    expect(client.store.getState().jobs["job-1"]?.seq).toBe(2);
  });

  it("rejects with a JobClientError carrying the server's code", async () => {
    const { client, transport } = setup();
    const pending = client.cancel("nope");
    const socket = transport.last();
    await socket.open();
    socket.only("cancel").answer({ ok: false, error: { code: "forbidden", message: "No." } });
    await expect(pending).rejects.toMatchObject({ name: "JobClientError", code: "forbidden", message: "No.", jobId: "nope" });
  });

  it("rejects with code timeout or disconnected when no answer comes", async () => {
    const { client, transport } = setup();
    const listing = client.listJobs();
    const socket = transport.last();
    await socket.open();
    socket.only("list_jobs").fail("operation has timed out");
    await expect(listing).rejects.toMatchObject({ code: "timeout" });
    const again = client.listJobs();
    socket.drop();
    await expect(again).rejects.toMatchObject({ code: "disconnected" });
  });

  it("rejects with code unavailable when the server acknowledges with nothing", async () => {
    const { client, transport } = setup();
    const pending = client.cancel("job-1");
    const socket = transport.last();
    await socket.open();
    socket.only("cancel").answer(undefined);
    await expect(pending).rejects.toMatchObject({ name: "JobClientError", code: "unavailable", jobId: "job-1" });
    const listing = client.listJobs();
    socket.only("list_jobs").answer(null);
    await expect(listing).rejects.toMatchObject({ name: "JobClientError", code: "unavailable" });
  });

  it("lists the caller's jobs", async () => {
    const { client, transport } = setup();
    const listing = client.listJobs();
    const socket = transport.last();
    await socket.open();
    const sent = socket.only("list_jobs");
    expect(sent.payload).toEqual({});
    sent.answer({ ok: true, jobs: [snap(2, { job: "b" }), snap(5, { job: "a" })] });
    expect((await listing).map((j) => j.job_id)).toEqual(["b", "a"]);
  });
});

describe("following the user", () => {
  it("takes every job of the user: listed ones on connect, new ones from the user room", async () => {
    const { client, transport } = setup({ userId: "user-1" });
    const applied: string[] = [];
    client.on("event", (e) => applied.push(`${e.job_id}@${e.seq}`));
    client.on("snapshot", (id, s) => applied.push(`${id} snapshot@${s?.seq}`));
    const stop = client.followUser();
    const socket = transport.last();
    await socket.open();
    socket.only("list_jobs").answer({
      ok: true,
      jobs: [snap(3, { job: "newer" }), snap(4, { job: "older", status: "done" })],
    });
    await flush();
    expect(client.store.getState().order).toEqual(["older", "newer"]);
    socket.push("job_update", ev(4, { job: "newer" }));
    socket.push("job_update", ev(1, { job: "brand-new" })); // seen from its start: no question
    socket.push("job_update", ev(2, { job: "brand-new" }));
    socket.push("job_update", ev(5, { job: "half-seen" })); // seen midway: ask
    const asked = socket.only("subscribe");
    expect(asked.payload).toEqual({ job_id: "half-seen" });
    asked.answer({ ok: true, job: snap(5, { job: "half-seen" }), events: [], recovered: false });
    await flush();
    expect(applied).toEqual([
      "older snapshot@4",
      "newer snapshot@3",
      "newer@4",
      "brand-new@1",
      "brand-new@2",
      "half-seen snapshot@5",
    ]);
    expect(client.store.getState().getActiveFiles().map((f) => f.jobId)).toEqual(["newer", "brand-new", "half-seen"]);
    expect(client.store.getState().getCompletedFiles().map((f) => f.jobId)).toEqual(["older"]);

    // After a reconnect: unfinished followed jobs resume with since; finished ones are left be.
    socket.drop();
    await socket.open();
    expect(socket.pending("subscribe").map((s) => s.payload)).toEqual([
      { job_id: "newer", epoch: "e1", since: 4 },
      { job_id: "brand-new", epoch: "e1", since: 2 },
      { job_id: "half-seen", epoch: "e1", since: 5 },
    ]);
    expect(socket.pending("list_jobs")).toHaveLength(1);

    stop();
    expect(client.watched()).toEqual([]);
  });
});

describe("the SSE fallback", () => {
  /** An EventSource that records where it was pointed and never opens. */
  function eventSources() {
    const urls: string[] = [];
    const factory = (url: string) => {
      urls.push(url);
      return { readyState: 0, addEventListener: () => undefined, close: () => undefined };
    };
    return { urls, factory };
  }

  it.each([
    ["gives Socket.IO up after fallbackTimeout without a connection", false, "sse", ["http://tidings.test/api/stream?user_id=user-1"]],
    ["(control: a connection in time keeps Socket.IO)", true, "socket.io", []],
  ])("%s", async (_name, connects, transport, opened) => {
    vi.useFakeTimers();
    const streams = eventSources();
    const { client, transport: sockets, statuses } = setup({
      userId: "user-1",
      fallback: "sse",
      fallbackTimeout: 5_000,
      eventSource: streams.factory,
    });
    client.followUser();
    if (connects) await sockets.last().open();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(client.transport).toBe(transport);
    expect(client.store.getState().connection.transport).toBe(transport);
    expect(streams.urls).toEqual(opened);
    expect(sockets.last().active).toBe(connects); // the given-up socket is closed for good
    // Going over to the streams is not a disconnect: the status goes from connecting on.
    expect(statuses).toEqual(connects ? ["connecting", "connected"] : ["connecting"]);
  });

  it.each([
    ["takes it after fallbackAttempts failed attempts when asked for", { fallback: "sse" as const }, "sse"],
    ["(control: not without being asked for)", {}, "socket.io"],
  ])("%s", async (_name, options, transport) => {
    vi.useFakeTimers();
    const streams = eventSources();
    const { client, transport: sockets } = setup({ userId: "user-1", eventSource: streams.factory, fallbackAttempts: 2, ...options });
    client.followUser();
    for (let i = 0; i < 2; i += 1) {
      await sockets.last().refuse("xhr poll error");
      await vi.advanceTimersByTimeAsync(i === 0 ? 2_000 : 0); // the first refusal's reconnect
    }
    expect(client.transport).toBe(transport);
    expect(streams.urls).toHaveLength(transport === "sse" ? 1 : 0);
  });

  it.each([
    ["opens a stream answered 429 again after its Retry-After, then the backoff", "10", 10_500, "in 10 s"],
    ["(control: a 429 without Retry-After, after the backoff alone)", null, 500, "shortly"],
  ])("%s", async (_name, retryAfter, delay, when) => {
    vi.useFakeTimers();
    type Listener = (message: MessageEvent<string>) => void;
    const sources: { readyState: number; listeners: Map<string, Listener> }[] = [];
    const { client, transport: sockets } = setup({
      getToken: () => "token",
      reconnectionDelay: 1_000,
      random: () => 0, // the shortest backoff: 1 s - 50 %
      fallback: "sse",
      fallbackAttempts: 1,
      eventSource: () => {
        const source = {
          readyState: 0,
          listeners: new Map<string, Listener>(),
          addEventListener: (type: string, listener: Listener) => source.listeners.set(type, listener),
          close: () => undefined,
        };
        sources.push(source);
        return source;
      },
      // The server refuses every request with the token from here: the stream, and the same request asking why.
      fetch: async () => new Response(null, { status: 429, headers: retryAfter === null ? {} : { "Retry-After": retryAfter } }),
    });
    client.followUser();
    await sockets.last().refuse("xhr poll error");
    await vi.advanceTimersByTimeAsync(0);
    expect(client.transport).toBe("sse");
    expect(sources).toHaveLength(1);
    const [refused] = sources as [(typeof sources)[number]];
    refused.readyState = 2; // EventSource.CLOSED: it was answered, and not 200
    refused.listeners.get("error")?.({} as MessageEvent<string>);
    await vi.advanceTimersByTimeAsync(delay - 1);
    expect(sources).toHaveLength(1);
    expect(client.store.getState().connection).toMatchObject({
      status: "reconnecting",
      error: {
        code: "rate_limited",
        message: `The server refuses connections from this address for now (too many wrong credentials from it); trying again ${when}.`,
      },
    });
    await vi.advanceTimersByTimeAsync(1);
    expect(sources).toHaveLength(2);
  });

  it.each([
    ["keeps Socket.IO after refusals rate_limited: the streams would be refused too", "rate_limited", "socket.io"],
    ["(control: an unreachable server's refusals lead to the streams)", "xhr poll error", "sse"],
  ])("%s", async (_name, message, transport) => {
    vi.useFakeTimers();
    const streams = eventSources();
    const { client, transport: sockets } = setup({
      userId: "user-1",
      eventSource: streams.factory,
      fallback: "sse",
      fallbackAttempts: 2,
      fallbackTimeout: 60_000,
    });
    client.followUser();
    await sockets.last().refuse(message, { retry_after: 1 });
    await vi.advanceTimersByTimeAsync(3_000);
    await sockets.last().refuse(message, { retry_after: 1 });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(client.transport).toBe(transport);
  });
});
