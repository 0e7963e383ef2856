/**
 * The ordering state machine on its own: no socket, no timers, no store. Each test states the
 * exact sequence a step lets through ("snapshot e:n" for a replacement, "e:n" for an event), so a
 * machine that let a duplicate, a reordering or a hole through would fail it.
 */
import { describe, expect, it } from "vitest";

import { JobOrdering, MAX_HELD, type Step } from "../../src/ordering.js";
import { ev, snap } from "../fake-socket.js";

function shown(step: Step): string[] {
  return step.applied.map((item) =>
    item.type === "event"
      ? `${item.event.epoch}:${item.event.seq}`
      : item.snapshot === null
        ? "snapshot none"
        : `snapshot ${item.snapshot.epoch}:${item.snapshot.seq}`,
  );
}

/** A machine that has applied the snapshot at `seq` (the answer to its first subscribe). */
function at(seq: number, epoch = "e1"): JobOrdering {
  const ordering = new JobOrdering("job-1");
  ordering.beginCatchUp();
  ordering.resolve({ job: snap(seq, { epoch }), events: [], recovered: false });
  return ordering;
}

describe("JobOrdering", () => {
  it("holds every event until the first answer, then applies the answer and what came after it", () => {
    const ordering = new JobOrdering("job-1");
    expect(ordering.resumePoint).toBeNull();
    ordering.beginCatchUp();
    for (const seq of [5, 3, 4]) expect(ordering.receive(ev(seq))).toEqual({ applied: [], moved: false, catchUp: false });
    const step = ordering.resolve({ job: snap(3), events: [], recovered: false });
    expect(shown(step)).toEqual(["snapshot e1:3", "e1:4", "e1:5"]);
    expect(step).toMatchObject({ moved: true, catchUp: false });
    expect(ordering.resumePoint).toEqual({ epoch: "e1", since: 5 });
  });

  it("applies the next event, drops one at or below the last", () => {
    const ordering = at(3);
    const steps = [2, 3, 4, 4, 5, 3].map((seq) => ordering.receive(ev(seq)));
    expect(steps.flatMap(shown)).toEqual(["e1:4", "e1:5"]);
    expect(steps.map((step) => step.moved)).toEqual([false, false, true, false, true, false]);
    expect(steps.some((step) => step.catchUp)).toBe(false);
  });

  it("asks for one catch-up at a gap, holds what comes meanwhile, and fills the gap in order", () => {
    const ordering = at(3);
    const gap = ordering.receive(ev(6));
    expect(gap).toEqual({ applied: [], moved: false, catchUp: true });
    expect(ordering.resumePoint).toEqual({ epoch: "e1", since: 3 });
    // More arrive while the catch-up is out: held, and no second catch-up is asked for.
    expect(ordering.receive(ev(8))).toEqual({ applied: [], moved: false, catchUp: false });
    expect(ordering.receive(ev(7))).toEqual({ applied: [], moved: false, catchUp: false });
    const answer = ordering.resolve({ job: null, events: [ev(4), ev(5), ev(6)], recovered: true });
    expect(shown(answer)).toEqual(["e1:4", "e1:5", "e1:6", "e1:7", "e1:8"]);
    expect(answer.catchUp).toBe(false);
    expect(shown(ordering.receive(ev(9)))).toEqual(["e1:9"]);
  });

  it("asks again when the answer leaves a gap before what was held", () => {
    const ordering = at(3);
    ordering.receive(ev(7));
    const answer = ordering.resolve({ job: null, events: [ev(4), ev(5)], recovered: true });
    expect(shown(answer)).toEqual(["e1:4", "e1:5"]);
    expect(answer.catchUp).toBe(true);
    expect(ordering.resumePoint).toEqual({ epoch: "e1", since: 5 });
  });

  it("replaces its state on recovered: false and drops what it held of the old state", () => {
    const ordering = at(3);
    ordering.receive(ev(9));
    ordering.receive(ev(10));
    const answer = ordering.resolve({ job: snap(9), events: [], recovered: false });
    expect(shown(answer)).toEqual(["snapshot e1:9", "e1:10"]);
    expect(answer.moved).toBe(true);
  });

  it("treats another epoch as unknown: catches up from the old one, keeps only the new life", () => {
    const ordering = at(5);
    const other = ordering.receive(ev(1, { epoch: "e2" }));
    expect(other).toEqual({ applied: [], moved: false, catchUp: true });
    expect(ordering.resumePoint).toEqual({ epoch: "e1", since: 5 });
    ordering.receive(ev(6)); // late, from the old life
    ordering.receive(ev(2, { epoch: "e2" }));
    const answer = ordering.resolve({ job: snap(1, { epoch: "e2" }), events: [], recovered: false });
    expect(shown(answer)).toEqual(["snapshot e2:1", "e2:2"]);
  });

  it("takes the first event of a job that did not exist, and catches up on a later one", () => {
    const early = new JobOrdering("job-1");
    early.beginCatchUp();
    expect(shown(early.resolve({ job: null, events: [], recovered: false }))).toEqual(["snapshot none"]);
    expect(shown(early.receive(ev(1)))).toEqual(["e1:1"]);

    const late = new JobOrdering("job-1");
    late.beginCatchUp();
    late.resolve({ job: null, events: [], recovered: false });
    expect(late.receive(ev(3))).toEqual({ applied: [], moved: false, catchUp: true });
    expect(late.resumePoint).toBeNull(); // nothing to resume from: a plain subscribe
  });

  it("seen from its start, a job's first event needs no catch-up; seen midway, it does", () => {
    const fresh = new JobOrdering("job-1");
    fresh.startsEmpty();
    expect(shown(fresh.receive(ev(1)))).toEqual(["e1:1"]);
    const midway = new JobOrdering("job-1");
    expect(midway.receive(ev(4))).toEqual({ applied: [], moved: false, catchUp: true });
    expect(shown(midway.resolve({ job: snap(4), events: [], recovered: false }))).toEqual(["snapshot e1:4"]);
  });

  it("takes a snapshot from outside a catch-up only when it is newer", () => {
    const ordering = at(5);
    expect(ordering.offerSnapshot(snap(4))).toEqual({ applied: [], moved: false, catchUp: false });
    expect(ordering.offerSnapshot(snap(5))).toEqual({ applied: [], moved: false, catchUp: false });
    expect(shown(ordering.offerSnapshot(snap(7)))).toEqual(["snapshot e1:7"]);
    expect(shown(ordering.offerSnapshot(snap(2, { epoch: "e2" })))).toEqual(["snapshot e2:2"]);
    expect(shown(ordering.receive(ev(3, { epoch: "e2" })))).toEqual(["e2:3"]);
  });

  it("resumes from what a store entry applied, and forgets what it held when abandoned", () => {
    const ordering = new JobOrdering("job-1", { epoch: "e1", seq: 4, status: "processing" });
    expect(ordering.resumePoint).toEqual({ epoch: "e1", since: 4 });
    expect(shown(ordering.receive(ev(5)))).toEqual(["e1:5"]);
    ordering.receive(ev(7));
    ordering.abandon();
    expect(ordering.catchingUp).toBe(false);
    ordering.beginCatchUp();
    // The held 7 is gone: after the answer nothing past it is applied from memory.
    expect(shown(ordering.resolve({ job: null, events: [ev(6)], recovered: true }))).toEqual(["e1:6"]);
  });

  it("holds at most MAX_HELD events, the newest", () => {
    const ordering = at(0);
    ordering.receive(ev(2)); // a gap: everything after it is held
    for (let seq = 3; seq <= MAX_HELD + 10; seq += 1) ordering.receive(ev(seq));
    const answer = ordering.resolve({ job: null, events: [ev(1)], recovered: true });
    // 2..11 fell out of the hold: the answer's 1 is applied, then the gap before 12 asks again.
    expect(shown(answer)).toEqual(["e1:1"]);
    expect(answer.catchUp).toBe(true);
  });
});
