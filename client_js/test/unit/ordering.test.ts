/**
 * The client rule, driven through a fake transport: every test asserts the exact sequence of
 * what was applied ("snapshot e:n" for a replacement, "e:n" for an event), so a client that let a
 * duplicate, a reordering or a hole through would fail it.
 */
import { afterEach, describe, expect, it, vi } from "vitest";

import { createJobClient, type JobClient } from "../../src/client.js";
import type { Event } from "../../src/protocol.js";
import { createJobStore } from "../../src/store.js";
import { ev, fakeTransport, flush, snap, type FakeSocket } from "../fake-socket.js";

let client: JobClient | undefined;

afterEach(() => {
  client?.destroy();
  client = undefined;
});

function setup(options: Parameters<typeof createJobClient>[0] = {}) {
  const transport = fakeTransport();
  client = createJobClient({ url: "http://tidings.test", transport: transport.factory, ...options });
  const applied: string[] = [];
  client.on("event", (event) => applied.push(`${event.epoch}:${event.seq}`));
  client.on("snapshot", (_id, snapshot) =>
    applied.push(snapshot === null ? "snapshot none" : `snapshot ${snapshot.epoch}:${snapshot.seq}`),
  );
  return { client, transport, applied };
}

/** Subscribes job-1 and answers the first subscribe with a snapshot at `seq`. */
async function watching(seq: number, options: Parameters<typeof setup>[0] = {}) {
  const ctx = setup(options);
  ctx.client.subscribe("job-1");
  const socket = ctx.transport.last();
  await socket.open();
  const first = socket.only("subscribe");
  expect(first.payload).toEqual({ job_id: "job-1" });
  first.answer({ ok: true, job: snap(seq), events: [], recovered: false });
  await flush();
  return { ...ctx, socket };
}

function push(socket: FakeSocket, ...events: Event[]): void {
  for (const event of events) {
    socket.push(event.status === "done" ? "job_complete" : event.status === "processing" ? "job_update" : "job_error", event);
  }
}

describe("ordering", () => {
  it("applies events in order after the first snapshot", async () => {
    const { socket, applied, client } = await watching(3);
    push(socket, ev(4), ev(5), ev(6, { status: "done" }));
    expect(applied).toEqual(["snapshot e1:3", "e1:4", "e1:5", "e1:6"]);
    const entry = client.store.getState().jobs["job-1"];
    expect(entry?.status).toBe("done");
    expect(entry?.seq).toBe(6);
    expect(entry?.result).toEqual({ rows: 3 });
    expect(socket.pending()).toEqual([]);
  });

  it("drops duplicates and anything at or below the last seq", async () => {
    const { socket, applied } = await watching(3);
    push(socket, ev(2), ev(3), ev(4), ev(4), ev(5), ev(3), ev(5));
    expect(applied).toEqual(["snapshot e1:3", "e1:4", "e1:5"]);
    expect(socket.pending("subscribe")).toEqual([]);
  });

  it("holds events that arrive before the subscribe answer and replays them after it", async () => {
    const { client, transport, applied } = setup();
    client.subscribe("job-1");
    const socket = transport.last();
    await socket.open();
    push(socket, ev(3), ev(4), ev(5));
    expect(applied).toEqual([]);
    socket.only("subscribe").answer({ ok: true, job: snap(4), events: [], recovered: false });
    await flush();
    expect(applied).toEqual(["snapshot e1:4", "e1:5"]);
  });

  it("fills a gap by subscribing with epoch and since, then applies what was held", async () => {
    const { socket, applied } = await watching(3);
    push(socket, ev(6));
    const again = socket.only("subscribe");
    expect(again.payload).toEqual({ job_id: "job-1", epoch: "e1", since: 3 });
    push(socket, ev(7), ev(5)); // more arrive while the gap is being filled
    expect(applied).toEqual(["snapshot e1:3"]);
    again.answer({ ok: true, job: snap(7), events: [ev(4), ev(5), ev(6), ev(7)], recovered: true });
    await flush();
    push(socket, ev(8));
    expect(applied).toEqual(["snapshot e1:3", "e1:4", "e1:5", "e1:6", "e1:7", "e1:8"]);
    expect(socket.pending()).toEqual([]);
  });

  it("puts reordered events back in order", async () => {
    const { socket, applied } = await watching(0);
    push(socket, ev(2), ev(1), ev(3));
    const again = socket.only("subscribe");
    again.answer({ ok: true, job: snap(3), events: [ev(1), ev(2), ev(3)], recovered: true });
    await flush();
    expect(applied).toEqual(["snapshot e1:0", "e1:1", "e1:2", "e1:3"]);
  });

  it("replaces its state when the server answers recovered: false", async () => {
    const { socket, applied, client } = await watching(3);
    push(socket, ev(9));
    const again = socket.only("subscribe");
    expect(again.payload).toEqual({ job_id: "job-1", epoch: "e1", since: 3 });
    again.answer({ ok: true, job: snap(9), events: [], recovered: false });
    await flush();
    push(socket, ev(9), ev(10));
    expect(applied).toEqual(["snapshot e1:3", "snapshot e1:9", "e1:10"]);
    expect(client.store.getState().jobs["job-1"]?.seq).toBe(10);
  });

  it("treats another epoch as unknown: subscribes with the old one and takes the new snapshot", async () => {
    const { socket, applied, client } = await watching(5);
    push(socket, ev(1, { epoch: "e2" }));
    const again = socket.only("subscribe");
    expect(again.payload).toEqual({ job_id: "job-1", epoch: "e1", since: 5 });
    push(socket, ev(2, { epoch: "e2" }), ev(3, { epoch: "e2" }));
    again.answer({ ok: true, job: snap(2, { epoch: "e2" }), events: [], recovered: false });
    await flush();
    push(socket, ev(6, { epoch: "e1" })); // a late straggler of the old life
    const third = socket.only("subscribe");
    expect(third.payload).toEqual({ job_id: "job-1", epoch: "e2", since: 3 });
    third.answer({ ok: true, job: snap(3, { epoch: "e2" }), events: [], recovered: true });
    await flush();
    push(socket, ev(4, { epoch: "e2" }));
    expect(applied).toEqual(["snapshot e1:5", "snapshot e2:2", "e2:3", "e2:4"]);
    const entry = client.store.getState().jobs["job-1"];
    expect(entry?.epoch).toBe("e2");
    // The timeline was started over for the new life, not appended to the old one.
    expect(entry?.steps.map((s) => s.step)).toEqual(["duplicate_check", "field_detection"]);
  });

  it("applies a job_batch as if each event had arrived alone", async () => {
    const { socket, applied } = await watching(3);
    socket.push("job_batch", { events: [ev(4), ev(5), ev(5), ev(7), ev(6)] });
    const again = socket.only("subscribe");
    expect(again.payload).toEqual({ job_id: "job-1", epoch: "e1", since: 5 });
    again.answer({ ok: true, job: snap(7), events: [ev(6), ev(7)], recovered: true });
    await flush();
    socket.push("job_batch", { events: [ev(7), ev(8), ev(9, { status: "done" })] });
    expect(applied).toEqual(["snapshot e1:3", "e1:4", "e1:5", "e1:6", "e1:7", "e1:8", "e1:9"]);
  });

  it("ignores malformed frames", async () => {
    const { socket, applied } = await watching(3);
    socket.push("job_update", { job_id: "job-1", seq: "4" } as unknown as Event);
    socket.push("job_batch", { events: "nope" } as unknown as { events: Event[] });
    socket.push("job_update", null as unknown as Event);
    push(socket, ev(4));
    expect(applied).toEqual(["snapshot e1:3", "e1:4"]);
  });

  it("watches a job that does not exist yet and takes its first event", async () => {
    const { client, transport, applied } = setup();
    client.subscribe("job-1");
    const socket = transport.last();
    await socket.open();
    socket.only("subscribe").answer({ ok: true, job: null, events: [], recovered: false });
    await flush();
    expect(client.store.getState().jobs["job-1"]?.status).toBe("pending");
    expect(client.store.getState().jobs["job-1"]?.subscription).toBe("active");
    push(socket, ev(1), ev(2));
    expect(applied).toEqual(["snapshot none", "e1:1", "e1:2"]);
    expect(socket.pending()).toEqual([]);
  });

  it("asks for a snapshot when a job that did not exist shows up past its first event", async () => {
    const { client, transport, applied } = setup();
    client.subscribe("job-1");
    const socket = transport.last();
    await socket.open();
    socket.only("subscribe").answer({ ok: true, job: null, events: [], recovered: false });
    await flush();
    push(socket, ev(3));
    const again = socket.only("subscribe");
    expect(again.payload).toEqual({ job_id: "job-1" });
    again.answer({ ok: true, job: snap(2), events: [], recovered: false });
    await flush();
    expect(applied).toEqual(["snapshot none", "snapshot e1:2", "e1:3"]);
  });

  it("ignores events of jobs it does not watch", async () => {
    const { socket, applied, client } = await watching(3);
    push(socket, ev(1, { job: "someone-else" }));
    expect(applied).toEqual(["snapshot e1:3"]);
    expect(client.store.getState().jobs["someone-else"]).toBeUndefined();
  });

  it("spaces out resubscriptions that bring nothing, instead of asking in a loop", async () => {
    const { socket, applied } = await watching(3, { reconnectionDelay: 5, reconnectionDelayMax: 5 });
    push(socket, ev(6));
    for (let round = 0; round < 3; round += 1) {
      // A misbehaving server: claims recovery but sends nothing.
      socket.only("subscribe").answer({ ok: true, job: snap(3), events: [], recovered: true });
      await flush();
    }
    expect(socket.pending("subscribe")).toEqual([]); // the fourth waits for a timer
    await new Promise((resolve) => setTimeout(resolve, 20));
    const later = socket.only("subscribe");
    later.answer({ ok: true, job: snap(6), events: [ev(4), ev(5), ev(6)], recovered: true });
    await flush();
    expect(applied).toEqual(["snapshot e1:3", "e1:4", "e1:5", "e1:6"]);
  });
});

describe("a gap that never fills", () => {
  it("is asked about further and further apart, not once a second forever", async () => {
    vi.useFakeTimers();
    try {
      const { socket, applied } = await watching(3, { reconnectionDelay: 1_000, random: () => 0.5 });
      push(socket, ev(6));
      const nothing = () => {
        // A server that keeps claiming recovery but never has events 4 and 5.
        socket.only("subscribe").answer({ ok: true, job: snap(3), events: [], recovered: true });
        return flush();
      };
      for (let round = 0; round < 3; round += 1) await nothing(); // asked at once, three times
      const waits: number[] = [];
      for (let round = 0; round < 5; round += 1) {
        let waited = 0;
        while (socket.pending("subscribe").length === 0) {
          await vi.advanceTimersByTimeAsync(100);
          waited += 100;
        }
        waits.push(waited);
        await nothing();
      }
      expect(waits).toEqual([1_000, 2_000, 4_000, 8_000, 16_000]);
      // It moves at last: the next gap starts from the shortest wait again.
      await vi.advanceTimersByTimeAsync(30_000);
      socket.only("subscribe").answer({ ok: true, job: snap(6), events: [ev(4), ev(5), ev(6)], recovered: true });
      await flush();
      expect(applied).toEqual(["snapshot e1:3", "e1:4", "e1:5", "e1:6"]);
      push(socket, ev(9));
      for (let round = 0; round < 3; round += 1) {
        socket.only("subscribe").answer({ ok: true, job: snap(6), events: [], recovered: true });
        await flush();
      }
      await vi.advanceTimersByTimeAsync(1_000);
      expect(socket.only("subscribe").payload).toEqual({ job_id: "job-1", epoch: "e1", since: 6 });
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("reconnecting", () => {
  it("resubscribes every watched job with epoch and since after a reconnect", async () => {
    const { socket, applied, client } = await watching(3);
    client.subscribe("job-2");
    socket.only("subscribe").answer({ ok: true, job: snap(1, { job: "job-2" }), events: [], recovered: false });
    await flush();
    push(socket, ev(4));
    socket.drop();
    expect(client.status).toBe("reconnecting");
    await socket.open();
    expect(client.status).toBe("connected");
    const payloads = socket.pending("subscribe").map((s) => s.payload);
    expect(payloads).toEqual([
      { job_id: "job-1", epoch: "e1", since: 4 },
      { job_id: "job-2", epoch: "e1", since: 1 },
    ]);
    const [first, second] = socket.pending("subscribe");
    push(socket, ev(7)); // live again before the answers: held
    first?.answer({ ok: true, job: snap(7), events: [ev(5), ev(6), ev(7)], recovered: true });
    second?.answer({ ok: true, job: snap(1, { job: "job-2" }), events: [], recovered: true });
    await flush();
    expect(applied).toEqual(["snapshot e1:3", "snapshot e1:1", "e1:4", "e1:5", "e1:6", "e1:7"]);
    expect(client.store.getState().jobs["job-1"]?.seq).toBe(7);
  });

  it("ignores an answer that belongs to the connection before", async () => {
    const { socket, applied } = await watching(3);
    push(socket, ev(5));
    const stale = socket.only("subscribe");
    stale.answered = true; // the server answers late, after the reconnect
    socket.drop();
    await socket.open();
    const fresh = socket.only("subscribe");
    expect(fresh.payload).toEqual({ job_id: "job-1", epoch: "e1", since: 3 });
    stale.answered = false;
    stale.answer({ ok: true, job: snap(99), events: [], recovered: false });
    fresh.answer({ ok: true, job: snap(5), events: [ev(4), ev(5)], recovered: true });
    await flush();
    expect(applied).toEqual(["snapshot e1:3", "e1:4", "e1:5"]);
  });

  it("retries a subscribe that timed out", async () => {
    const { socket, applied } = await watching(3, { reconnectionDelay: 1, reconnectionDelayMax: 1 });
    push(socket, ev(5));
    socket.only("subscribe").fail("operation has timed out");
    await flush();
    await new Promise((resolve) => setTimeout(resolve, 10));
    socket.only("subscribe").answer({ ok: true, job: snap(5), events: [ev(4), ev(5)], recovered: true });
    await flush();
    expect(applied).toEqual(["snapshot e1:3", "e1:4", "e1:5"]);
  });

  it("resumes from a store made with the server's snapshots rather than reloading them", async () => {
    const { client, transport, applied } = setup({ store: createJobStore({ snapshots: [snap(4)] }) });
    client.subscribe("job-1");
    const socket = transport.last();
    await socket.open();
    const first = socket.only("subscribe");
    expect(first.payload).toEqual({ job_id: "job-1", epoch: "e1", since: 4 });
    first.answer({ ok: true, job: snap(6), events: [ev(5), ev(6)], recovered: true });
    await flush();
    expect(applied).toEqual(["e1:5", "e1:6"]);
  });
});
