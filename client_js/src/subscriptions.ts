/**
 * The subscription queue: `subscribe` requests wait here for a place on the wire, at most
 * MAX_SUBSCRIBES_IN_FLIGHT at once, and go out in the order they were asked for. The server takes
 * a socket's requests one at a time and limits how many it accepts, so a reconnect with a thousand
 * watched jobs goes out as a stream rather than a burst; an answer that says "not now" pauses the
 * whole queue (the budget is per socket), and a request that must be asked again later waits on
 * its own backoff. Only the answer to the latest request of a job is handed on.
 */
import { Timer, type Backoff } from "./backoff.js";
import type { JobClientError } from "./errors.js";
import type { Ack, SubscribeRequest, SubscribeResult } from "./protocol.js";

/** `subscribe` requests on the wire at once. */
export const MAX_SUBSCRIBES_IN_FLIGHT = 16;

/** One job's place in the queue; the core's watch is one. */
export interface Queued {
  readonly jobId: string;
  /** Bumped to make answers to older requests ignored. */
  generation: number;
  readonly retry: Timer;
  /** Retries since the job last moved on: the backoff's exponent. */
  retryAttempt: number;
}

export interface QueueHooks<Q extends Queued> {
  /** The request to send now for `job` (with `epoch` and `since` when its position is known). */
  payload(job: Q): SubscribeRequest;
  send(payload: SubscribeRequest): Promise<Ack<SubscribeResult>>;
  /** Whether requests can go out (the link is up). */
  open(): boolean;
  /** Whether `job` is still watched; answers for one that is not are dropped. */
  current(job: Q): boolean;
  answered(job: Q, result: Ack<SubscribeResult>): void;
  unanswered(job: Q, error: JobClientError): void;
  /** A retry's backoff is over: ask again. */
  retry(job: Q): void;
}

export class SubscribeQueue<Q extends Queued> {
  /** Jobs whose `subscribe` waits for a place on the wire, in the order they asked. */
  private readonly waiting = new Set<Q>();
  /** One token per `subscribe` on the wire on this connection. */
  private readonly sending = new Set<object>();
  /** While pending, nothing is sent: the server said this socket is over its budget, or is down. */
  private readonly paused = new Timer();
  private pauseAttempt = 0;

  constructor(
    private readonly hooks: QueueHooks<Q>,
    private readonly backoff: Backoff,
  ) {}

  /** Sends a `subscribe` for `job` as soon as there is room. */
  ask(job: Q): void {
    job.retry.stop();
    this.waiting.add(job);
    this.pump();
  }

  /** Asks again after the job's own backoff. */
  askLater(job: Q): void {
    if (job.retry.pending) return;
    const delay = this.backoff(job.retryAttempt);
    job.retryAttempt += 1;
    job.retry.start(delay, () => this.hooks.retry(job));
  }

  /** Holds the whole queue back for a while. */
  pause(): void {
    if (this.paused.pending) return;
    this.paused.start(this.backoff(this.pauseAttempt), () => this.pump());
    this.pauseAttempt += 1;
  }

  /** The server answered: the next pause starts its backoff afresh. */
  resume(): void {
    this.pauseAttempt = 0;
  }

  /** Takes `job` out: nothing more is sent for it and what was sent is ignored. */
  forget(job: Q): void {
    this.waiting.delete(job);
    job.generation += 1;
    job.retry.stop();
  }

  /** A new connection (or none): a fresh budget on the server, nothing of the old one on the wire. */
  reset(): void {
    this.waiting.clear();
    this.sending.clear();
    this.paused.stop();
    this.pauseAttempt = 0;
  }

  private pump(): void {
    while (!this.paused.pending && this.sending.size < MAX_SUBSCRIBES_IN_FLIGHT && this.hooks.open()) {
      const next = this.waiting.values().next();
      if (next.done === true) return;
      const job = next.value;
      this.waiting.delete(job);
      if (this.hooks.current(job)) this.send(job);
    }
  }

  private send(job: Q): void {
    const slot = {};
    this.sending.add(slot);
    const generation = ++job.generation;
    /** Frees its place on the wire (already gone with the connection it was sent on) and fills it. */
    const settle = (handle: () => void): void => {
      this.sending.delete(slot);
      try {
        if (job.generation === generation && this.hooks.current(job)) handle();
      } finally {
        this.pump();
      }
    };
    this.hooks.send(this.hooks.payload(job)).then(
      (result) => settle(() => this.hooks.answered(job, result)),
      (error: JobClientError) => settle(() => this.hooks.unanswered(job, error)),
    );
  }
}
