import { describe, expect, it } from "vitest";

import { formatAgo, formatEta, formatPercent } from "../../src/format.js";
import { aggregate, createJobStore } from "../../src/store.js";
import { ev, snap } from "../fake-socket.js";

describe("the store", () => {
  it("is one per call: no global state", () => {
    const a = createJobStore();
    const b = createJobStore();
    a.getState().addStep("x", { step: "upload" });
    expect(b.getState().jobs).toEqual({});
  });

  it("grows the timeline from events the way the server does", () => {
    const store = createJobStore();
    const s = store.getState();
    s.applyEvent(ev(1, { step: "initializing_streaming", progress: 5 }), 1);
    s.applyEvent(ev(2, { step: "duplicate_check", progress: 15 }), 2);
    s.applyEvent(ev(3, { step: "duplicate_check", progress: 20 }), 3);
    s.applyEvent(ev(4, { step: "field_detection", progress: 40 }), 4);
    let entry = store.getState().jobs["job-1"];
    expect(entry?.steps.map((x) => [x.step, x.status, x.progress])).toEqual([
      ["initializing_streaming", "complete", 5],
      ["duplicate_check", "complete", 20],
      ["field_detection", "in_progress", 40],
    ]);
    s.applyEvent(ev(5, { status: "error", step: "field_detection", progress: 40 }), 5);
    entry = store.getState().jobs["job-1"];
    expect(entry?.steps.map((x) => x.status)).toEqual(["complete", "complete", "error"]);
    expect(entry).toMatchObject({ status: "error", error: { code: "failed", message: "broken" }, seq: 5, lastEventAt: 5 });
    expect(entry?.snapshot).toMatchObject({ seq: 5, status: "error", steps: entry?.steps });
  });

  it("settles the last step as complete when the job is done", () => {
    const store = createJobStore();
    store.getState().replaceSnapshot("job-1", snap(2), 1);
    store.getState().applyEvent(ev(3, { status: "done" }), 2);
    const entry = store.getState().jobs["job-1"];
    expect(entry?.steps.map((x) => [x.step, x.status])).toEqual([
      ["duplicate_check", "complete"],
      ["complete", "complete"],
    ]);
    expect(entry?.snapshot?.owner).toBe("user-1");
    expect(entry?.filename).toBe("a.csv");
  });

  it("takes a snapshot whole, and forgets server state when the server lost the job", () => {
    const store = createJobStore();
    store.getState().replaceSnapshot("job-1", snap(7), 10);
    expect(store.getState().jobs["job-1"]).toMatchObject({ seq: 7, epoch: "e1", status: "processing", lastEventAt: 10 });
    store.getState().replaceSnapshot("job-1", null, 11);
    expect(store.getState().jobs["job-1"]).toMatchObject({ seq: 0, epoch: null, status: "pending", filename: "a.csv" });
  });

  it("has the actions a file-status UI drives by hand", () => {
    const store = createJobStore();
    const s = store.getState();
    s.addStep("f1", { step: "uploading", message: "Uploading a.csv...", filename: "a.csv", progress: 10 });
    s.updateProgress("f1", { progress: 30, etaSeconds: 12 });
    s.updateProgress("f1", { progress: 20 }); // never backwards
    expect(store.getState().getStatus("f1")).toMatchObject({
      status: "processing",
      progress: 30,
      etaSeconds: 12,
      filename: "a.csv",
      message: "Uploading a.csv...",
    });
    s.updateProgress("f1", { step: "parsing", message: "Reading rows...", progress: 60 });
    expect(store.getState().getStatus("f1")?.steps.map((x) => [x.step, x.status])).toEqual([
      ["uploading", "complete"],
      ["parsing", "in_progress"],
    ]);
    s.markComplete("f1", { rows: 3 });
    s.addStep("f2", { step: "uploading" });
    s.setError("f2", "Too large");
    s.addStep("f3", { step: "uploading" });
    expect(store.getState().getStatus("f1")).toMatchObject({ status: "done", progress: 100, result: { rows: 3 } });
    expect(store.getState().getStatus("f2")).toMatchObject({ status: "error", error: { code: "failed", message: "Too large" } });
    expect(store.getState().getStatus("f2")?.steps[0]?.status).toBe("error");
    expect(store.getState().getAllStatuses().map((x) => x.jobId)).toEqual(["f1", "f2", "f3"]);
    expect(store.getState().getActiveFiles().map((x) => x.jobId)).toEqual(["f3"]);
    expect(store.getState().getCompletedFiles().map((x) => x.jobId)).toEqual(["f1"]);
    expect(store.getState().getFailedFiles().map((x) => x.jobId)).toEqual(["f2"]);
    s.clearStatus("f2");
    expect(store.getState().getAllStatuses().map((x) => x.jobId)).toEqual(["f1", "f3"]);
    s.clearAll();
    expect(store.getState().getAllStatuses()).toEqual([]);
  });

  it("keeps a finished job finished: setError after markComplete changes nothing", () => {
    const store = createJobStore();
    const s = store.getState();
    s.addStep("done", { step: "uploading", filename: "a.csv" });
    s.markComplete("done", { rows: 3 });
    const finished = store.getState().jobs["done"];
    s.setError("done", "The upload's connection dropped");
    s.setError("done", { code: "cancelled", message: "Stopped" }, "cancelled");
    expect(store.getState().jobs["done"]).toBe(finished);
    expect(store.getState().getCompletedFiles().map((x) => x.jobId)).toEqual(["done"]);
    // The control: the same call on a job still running does fail it.
    s.addStep("running", { step: "uploading" });
    s.setError("running", "The upload's connection dropped");
    expect(store.getState().jobs["running"]).toMatchObject({ status: "error", error: { message: "The upload's connection dropped" } });
  });

  it("can start filled, from the snapshots a server rendered the page with", () => {
    const store = createJobStore({
      snapshots: [snap(3, { job: "a", status: "done" }), snap(2, { job: "b" })],
    });
    const { jobs, order } = store.getState();
    expect(order).toEqual(["a", "b"]);
    expect(jobs["a"]).toMatchObject({ status: "done", seq: 3, epoch: "e1", filename: "a.csv", subscription: "none", lastEventAt: null });
    expect(jobs["b"]).toMatchObject({ status: "processing", seq: 2, progress: 20, message: "message 2" });
    expect(jobs["b"]?.steps).toHaveLength(1);
    expect(store.getState().getAggregate()).toMatchObject({ total: 2, completed: 1, active: 1 });
    // Two stores from the same snapshots render the same (the server's and the browser's).
    expect(createJobStore({ snapshots: [snap(3, { job: "a", status: "done" }), snap(2, { job: "b" })] }).getState().jobs).toEqual(jobs);
  });

  it("does not bring back a cleared job for bookkeeping: subscription ends, cancel flags", () => {
    const store = createJobStore();
    const s = store.getState();
    s.replaceSnapshot("a", snap(3, { job: "a", status: "done" }), 1);
    s.replaceSnapshot("b", snap(2, { job: "b" }), 1);
    s.setSubscription("b", "active");
    s.clearStatus("b");
    s.setSubscription("b", "none");
    s.setSubscription("b", "active");
    s.setSubscription("b", "failed");
    s.setCancelRequested("b", false);
    expect(store.getState().jobs["b"]).toBeUndefined();
    expect(store.getState().order).toEqual(["a"]);
    expect(store.getState().getAggregate()).toMatchObject({ total: 1, allSettled: true });
    // The start of a watch is not bookkeeping: it shows the job as pending until it is known.
    s.setSubscription("c", "pending");
    expect(store.getState().jobs["c"]).toMatchObject({ status: "pending", subscription: "pending" });
  });

  it("keeps numeric job ids in the order they came", () => {
    const store = createJobStore();
    for (const id of ["9", "10", "1"]) store.getState().addStep(id, { step: "x" });
    expect(store.getState().getAllStatuses().map((x) => x.jobId)).toEqual(["9", "10", "1"]);
  });
});

describe("aggregate", () => {
  it("sums many files: percentage, counts by status, all completed", () => {
    const store = createJobStore();
    const s = store.getState();
    s.addStep("a", { step: "x", progress: 50 });
    s.addStep("b", { step: "x", progress: 10 });
    s.markComplete("b");
    s.addStep("c", { step: "x", progress: 20 });
    s.setError("c", "no");
    const all = s.getAggregate();
    expect(all).toEqual({
      total: 3,
      percentage: (50 + 100 + 100) / 3,
      counts: { pending: 0, queued: 0, processing: 1, done: 1, error: 1, cancelled: 0 },
      active: 1,
      completed: 1,
      failed: 1,
      allCompleted: false,
      allSettled: false,
    });
    expect(s.getAggregate(["b"])).toMatchObject({ total: 1, percentage: 100, allCompleted: true, allSettled: true });
    expect(s.getAggregate(["b", "unknown"])).toMatchObject({ total: 2, percentage: 50, counts: { pending: 1, done: 1 } });
    expect(aggregate([])).toMatchObject({ total: 0, percentage: 0, allCompleted: false, allSettled: false });
  });
});

describe("words", () => {
  it("says ETAs the way people do", () => {
    expect(formatEta(null)).toBeNull();
    expect(formatEta(3)).toBe("a few seconds left");
    expect(formatEta(12.5)).toBe("about 15 seconds left");
    expect(formatEta(41)).toBe("about 40 seconds left");
    expect(formatEta(70)).toBe("about a minute left");
    expect(formatEta(200)).toBe("about 3 minutes left");
    expect(formatEta(4000)).toBe("about an hour left");
    expect(formatEta(9000)).toBe("about 3 hours left");
  });

  it("says how long ago, and percentages rounded down", () => {
    expect(formatAgo(null)).toBeNull();
    expect(formatAgo(10_000, 10_400)).toBe("just now");
    expect(formatAgo(10_000, 13_000)).toBe("3 s ago");
    expect(formatAgo(0, 150_000)).toBe("2 min ago");
    expect(formatPercent(99.6)).toBe("99%");
    expect(formatPercent(null)).toBeNull();
  });
});
