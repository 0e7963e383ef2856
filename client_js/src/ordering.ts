/**
 * The client rule of PROTOCOL.md for one job, and nothing else: no socket, no timer, no store.
 *
 * It keeps `(epoch, seq)` of the last applied event. An event is applied only when it is `seq + 1`
 * in the same epoch; one at or below `seq` is dropped; anything else (a gap, another epoch, a job
 * first seen midway) is held and a catch-up is asked for: the caller fetches it however its
 * transport can (`subscribe` with `epoch` and `since`, or the HTTP API) and hands the answer to
 * `resolve`, which applies the missed events, or replaces the state when the server could not
 * replay (`recovered: false`), and then what was held, in order. While a catch-up is out, every
 * event is held, so nothing overtakes its answer.
 *
 * Each call returns a `Step`: what to apply, in order, and whether a catch-up must now be fetched.
 */
import { isTerminal, type Event, type Snapshot } from "./protocol.js";

/** Events held for one job while a catch-up is out; older ones are fetched again anyway. */
export const MAX_HELD = 1_000;

export type Applied = { type: "event"; event: Event } | { type: "snapshot"; snapshot: Snapshot | null };

export interface Step {
  /** In order: what the store and the listeners are to see. */
  applied: Applied[];
  /** The position moved (an event applied, or a snapshot of another position taken). */
  moved: boolean;
  /** A catch-up began with this step: fetch one and hand its answer to `resolve`. */
  catchUp: boolean;
}

/** The answer to a catch-up, as `subscribe` acknowledges it. */
export interface CatchUpAnswer {
  job: Snapshot | null;
  events: Event[];
  recovered: boolean;
}

/** Where to catch up from: the `epoch` and `since` of a `subscribe`, or nothing for a fresh start. */
export interface ResumePoint {
  epoch: string;
  since: number;
}

export class JobOrdering {
  /** Whether `(epoch, seq)` is a real position (a snapshot, possibly of "no job yet", was had). */
  known = false;
  epoch: string | null = null;
  seq = 0;
  terminal = false;
  /** A catch-up was asked for and its answer is not in: events are held until it is. */
  catchingUp = false;
  private held: Event[] = [];

  /** `from`: what was applied in order before (a store entry), to resume rather than reload. */
  constructor(
    readonly jobId: string,
    from?: { epoch: string | null; seq: number; status: string },
  ) {
    if (from !== undefined && from.epoch !== null && from.seq > 0) {
      this.known = true;
      this.epoch = from.epoch;
      this.seq = from.seq;
      this.terminal = isTerminal(from.status);
    }
  }

  /** The job was seen from its very start (its first event is seq 1): nothing came before. */
  startsEmpty(): void {
    if (!this.known) this.known = true;
  }

  /** What a catch-up asks from. */
  get resumePoint(): ResumePoint | null {
    return this.known && this.epoch !== null ? { epoch: this.epoch, since: this.seq } : null;
  }

  /** A (re)subscribe is going out: hold events from now until `resolve`. */
  beginCatchUp(): void {
    this.catchingUp = true;
  }

  /** The catch-up will not be answered (the connection went, or the job was refused). */
  abandon(): void {
    this.catchingUp = false;
    this.held = [];
  }

  /** One live event. */
  receive(event: Event): Step {
    const step = newStep();
    this.offer(event, step);
    return step;
  }

  /** The answer to the catch-up: the missed events, or a snapshot that replaces the state. */
  resolve(answer: CatchUpAnswer): Step {
    const step = newStep();
    this.catchingUp = false;
    if (answer.recovered) this.held.unshift(...answer.events);
    else this.replace(answer.job, step);
    this.dropOtherLives();
    this.drain(step);
    return step;
  }

  /** A snapshot from outside a catch-up (a listing, a stream's opening): taken when it is newer. */
  offerSnapshot(snapshot: Snapshot): Step {
    const step = newStep();
    if (this.known && this.epoch === snapshot.epoch && this.seq >= snapshot.seq) return step;
    this.replace(snapshot, step);
    this.dropOtherLives();
    if (!this.catchingUp) this.drain(step);
    return step;
  }

  private offer(event: Event, step: Step): void {
    if (this.catchingUp || !this.known) {
      this.hold(event);
      if (!this.catchingUp) this.begin(step);
      return;
    }
    if (this.epoch === null) {
      // The job did not exist when we looked: its first event is the whole history so far.
      if (event.seq === 1) this.apply(event, step);
      else this.gap(event, step);
      return;
    }
    if (event.epoch !== this.epoch) {
      this.gap(event, step);
      return;
    }
    if (event.seq <= this.seq) return; // a duplicate
    if (event.seq === this.seq + 1) this.apply(event, step);
    else this.gap(event, step);
  }

  private apply(event: Event, step: Step): void {
    this.epoch = event.epoch;
    this.seq = event.seq;
    this.terminal = isTerminal(event.status);
    step.applied.push({ type: "event", event });
    step.moved = true;
  }

  private replace(snapshot: Snapshot | null, step: Step): void {
    const epoch = snapshot?.epoch ?? null;
    const seq = snapshot?.seq ?? 0;
    if (!this.known || this.epoch !== epoch || this.seq !== seq) step.moved = true;
    this.known = true;
    this.epoch = epoch;
    this.seq = seq;
    this.terminal = snapshot !== null && isTerminal(snapshot.status);
    step.applied.push({ type: "snapshot", snapshot });
  }

  /** The position names the job's current life: what was held from another one is stale. */
  private dropOtherLives(): void {
    const epoch = this.epoch;
    if (epoch !== null) this.held = this.held.filter((event) => event.epoch === epoch);
  }

  private gap(event: Event, step: Step): void {
    this.hold(event);
    this.begin(step);
  }

  private begin(step: Step): void {
    this.catchingUp = true;
    step.catchUp = true;
  }

  private hold(event: Event): void {
    this.held.push(event);
    if (this.held.length > MAX_HELD) this.held.splice(0, this.held.length - MAX_HELD);
  }

  /** Applies what was held, in seq order; a new gap begins another catch-up. */
  private drain(step: Step): void {
    const held = this.held.splice(0).sort((a, b) => a.seq - b.seq);
    for (const event of held) this.offer(event, step);
  }
}

function newStep(): Step {
  return { applied: [], moved: false, catchUp: false };
}
