/**
 * The framework-free core: the watched jobs, and what reaches the store (and `on("event")`) from
 * them, never with a duplicate, a reordering or a hole. It is put together from parts, each in a
 * module of its own, the way socket.io-client keeps its Manager apart from its Socket:
 *
 *   ordering.ts       the client rule for one job (pure: no I/O, no timers)
 *   connection.ts     the Socket.IO link: auth and token refresh, reconnects with backoff
 *   event-stream.ts   the Server-Sent Events link, for when Socket.IO cannot connect
 *   subscriptions.ts  the paced, retried `subscribe` requests
 *   discovery.ts      listing the user's jobs on every connect while following the user
 *
 * Here they meet: a live event goes through its job's ordering; a catch-up the ordering asks for
 * goes through the queue to whichever link is up; what the ordering lets through is written to
 * the store and told to the listeners. Every (re)connect subscribes every watched job again.
 */
import { createBackoff, Timer, type Backoff } from "./backoff.js";
import { isFailure, isTransient, refusal } from "./acks.js";
import { SocketLink, type TokenSource, type TransportFactory, type TransportOptions } from "./connection.js";
import { Discovery } from "./discovery.js";
import { JobClientError } from "./errors.js";
import { EventStreamLink, type EventSourceFactory } from "./event-stream.js";
import type { Link, LinkHooks } from "./link.js";
import { JobOrdering, type Step } from "./ordering.js";
import type { Ack, Event, ListedJob, Snapshot, SubscribeResult } from "./protocol.js";
import { createJobStore, type ConnectionStatus, type JobStore, type TransportKind } from "./store.js";
import { SubscribeQueue, type Queued } from "./subscriptions.js";

export type {
  TokenSource,
  TransportEventName,
  TransportFactory,
  TransportOptions,
  TransportSocket,
  TypedSocket,
} from "./connection.js";
export type { EventSourceFactory, EventSourceLike } from "./event-stream.js";


export interface JobClientOptions {
  /** The server, e.g. `https://tidings.example.com`. Left out: the page's own origin. */
  url?: string;
  /** Socket.IO path; `/socket.io` by default. */
  path?: string;
  /** Called on every (re)connect, so an expired token is replaced rather than dropped. */
  getToken?: TokenSource;
  /** Sent as `auth.user_id` when there is no token (a server in open mode). */
  userId?: string;
  /** The store to write into; a new one by default. */
  store?: JobStore;
  /** How long to wait for an acknowledgement (ms). */
  ackTimeout?: number;
  /** First reconnection delay (ms); doubles each failed attempt up to `reconnectionDelayMax`. */
  reconnectionDelay?: number;
  reconnectionDelayMax?: number;
  /** Jitter: each delay is moved by up to this fraction either way. */
  randomizationFactor?: number;
  /** Websocket first, long-polling if it cannot be had. */
  transports?: ("websocket" | "polling" | "webtransport")[];
  /** Passed to `io()` as they are (e.g. `extraHeaders`, `withCredentials`). */
  socketOptions?: TransportOptions;
  /** Replaces `io()`; for tests and unusual transports. */
  transport?: TransportFactory;
  /**
   * `"sse"`: when Socket.IO never gets through (`fallbackAttempts` refused or failed attempts, or
   * nothing after `fallbackTimeout` ms), follow the server's Server-Sent Events instead, for the
   * rest of the client's life. Not after `unauthorized` or `rate_limited`: the streams would refuse
   * that token too.
   */
  fallback?: "sse";
  fallbackAttempts?: number;
  fallbackTimeout?: number;
  /** Opens an EventSource for the SSE fallback; `globalThis.EventSource` by default. */
  eventSource?: EventSourceFactory;
  /** `fetch` for the SSE fallback's HTTP requests; `globalThis.fetch` by default. */
  fetch?: typeof fetch;
  /**
   * How long (ms) a job the server refuses as `forbidden` is still asked about, quietly, before it
   * is marked forbidden: with tokens, a job watched before its worker creates it is refused until
   * it exists (the server does not say which jobs exist). 30 000 by default.
   */
  forbiddenGrace?: number;
  /** Clock for `lastEventAt` (ms). */
  now?: () => number;
  /** Source of jitter, 0 ≤ x < 1. */
  random?: () => number;
}

export interface ClientEvents {
  /** An event was applied: in order, once, without holes. */
  event: (event: Event) => void;
  /** A job's state was replaced by a snapshot (first subscribe, or the server could not replay). */
  snapshot: (jobId: string, snapshot: Snapshot | null) => void;
  /** Something failed that no promise reports: a refused subscription or connection. */
  error: (error: JobClientError) => void;
  /** The connection status changed. */
  status: (status: ConnectionStatus) => void;
}

export interface JobClient {
  readonly store: JobStore;
  readonly url: string | undefined;
  /** Watch a job (counted: each call needs one `unsubscribe`). Returns the matching unsubscribe. */
  subscribe(jobId: string): () => void;
  unsubscribe(jobId: string): void;
  /** Watch every job of the connected user, as the server's user room delivers them. */
  followUser(): () => void;
  /** Ask the worker to stop. Resolves with the job as the server has it then. */
  cancel(jobId: string): Promise<Snapshot>;
  /** The caller's jobs, newest first. */
  listJobs(): Promise<ListedJob[]>;
  /** Opens the connection; watching, cancelling and listing do this by themselves. */
  connect(): void;
  /** Closes the connection but remembers what is watched; the next `connect()` picks it up. */
  disconnect(): void;
  /** Closes for good. */
  destroy(): void;
  readonly status: ConnectionStatus;
  /** Which transport carries the client: Socket.IO, or the SSE fallback. */
  readonly transport: TransportKind;
  /** Client clock (ms) of the last event or snapshot applied for the job. */
  lastEventAt(jobId: string): number | null;
  /** The jobs the client watches, by subscription or by following the user. */
  watched(): string[];
  on<K extends keyof ClientEvents>(type: K, listener: ClientEvents[K]): () => void;
}

interface Watch extends Queued {
  /** `subscribe` calls not yet matched by `unsubscribe`. */
  refs: number;
  /** Picked up through the user room while following the user. */
  followed: boolean;
  readonly ordering: JobOrdering;
  /** Catch-ups in a row that moved nothing: past a few, they are spaced out. */
  stalls: number;
  /** Client clock when the server first refused the job, in the refusals since its last answer. */
  forbiddenSince: number | null;
}

const DEFAULTS = {
  ackTimeout: 10_000,
  reconnectionDelay: 1_000,
  reconnectionDelayMax: 30_000,
  randomizationFactor: 0.5,
  fallbackAttempts: 2,
  fallbackTimeout: 5_000,
  forbiddenGrace: 30_000,
};

const MAX_STALLS = 3;

/** The server refused the caller's credentials (or any, for a while): the event streams would too. */
function refusedCredentials(code: string | undefined): boolean {
  return code === "unauthorized" || code === "rate_limited";
}

export function createJobClient(options: JobClientOptions = {}): JobClient {
  const store = options.store ?? createJobStore();
  const now = options.now ?? Date.now;
  const reconnectionDelay = options.reconnectionDelay ?? DEFAULTS.reconnectionDelay;
  const reconnectionDelayMax = options.reconnectionDelayMax ?? DEFAULTS.reconnectionDelayMax;
  const randomizationFactor = options.randomizationFactor ?? DEFAULTS.randomizationFactor;
  const forbiddenGrace = options.forbiddenGrace ?? DEFAULTS.forbiddenGrace;
  const backoff: Backoff = createBackoff({
    base: reconnectionDelay,
    max: reconnectionDelayMax,
    jitter: randomizationFactor,
    random: options.random ?? Math.random,
  });

  const watches = new Map<string, Watch>();
  const listeners: { [K in keyof ClientEvents]: Set<ClientEvents[K]> } = {
    event: new Set(),
    snapshot: new Set(),
    error: new Set(),
    status: new Set(),
  };
  let follows = 0;
  let closedByUser = false;
  let destroyed = false;
  /** Whether the link ever got through; the SSE fallback is only for one that never did. */
  let everConnected = false;
  /** The Socket.IO link is being closed for the fallback. */
  let retiring = false;
  const fallbackTimer = new Timer();

  function notify<K extends keyof ClientEvents>(type: K, ...args: Parameters<ClientEvents[K]>): void {
    for (const listener of listeners[type]) {
      try {
        (listener as (...a: Parameters<ClientEvents[K]>) => void)(...args);
      } catch (error) {
        // A listener's bug must not stop the ordering machinery; surface it like an uncaught one.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  // ---- the link ----------------------------------------------------------------------------

  const hooks: LinkHooks = {
    opened,
    closed: settleAll,
    event: receive,
    snapshot: offerSnapshot,
    status(status, error, attempts) {
      if (retiring) return;
      const previous = store.getState().connection;
      store.getState().setConnection({
        status,
        error: error === undefined ? previous.error : error === null ? null : { code: error.code, message: error.message },
        attempts,
        transport: link.kind,
      });
      if (status === "connected") everConnected = true;
      if (previous.status !== status) notify("status", status);
      if (shouldFallBack(attempts, error)) fallBack();
    },
    error: (error) => notify("error", error),
  };

  let link: Link = new SocketLink(
    {
      url: options.url,
      path: options.path,
      getToken: options.getToken,
      userId: options.userId,
      ackTimeout: options.ackTimeout ?? DEFAULTS.ackTimeout,
      reconnectionDelay,
      reconnectionDelayMax,
      randomizationFactor,
      transports: options.transports,
      socketOptions: options.socketOptions,
      transport: options.transport,
      backoff,
      now,
    },
    hooks,
  );

  function shouldFallBack(attempts: number, error: JobClientError | null | undefined): boolean {
    return (
      options.fallback === "sse" &&
      link.kind === "socket.io" &&
      !everConnected &&
      !refusedCredentials(error?.code) &&
      attempts >= (options.fallbackAttempts ?? DEFAULTS.fallbackAttempts)
    );
  }

  /** Socket.IO never got through: the event streams carry the client from now on. */
  function fallBack(): void {
    fallbackTimer.stop();
    if (destroyed || link.kind === "sse") return;
    settleAll();
    retiring = true; // its last word ("disconnected") is not the client's: it goes on over SSE
    link.destroy();
    retiring = false;
    link = new EventStreamLink(
      {
        url: options.url,
        getToken: options.getToken,
        userId: options.userId,
        eventSource: options.eventSource,
        fetch: options.fetch,
        backoff,
        now,
      },
      hooks,
    );
    link.follow(follows > 0);
    if (!closedByUser) link.connect();
  }

  function opened(): void {
    fallbackTimer.stop();
    queue.reset();
    for (const watch of [...watches.values()]) {
      watch.generation += 1;
      // A followed job that has finished will not change again: no need to ask.
      if (watch.refs === 0 && watch.ordering.known && watch.ordering.terminal) continue;
      resubscribe(watch);
    }
    if (follows > 0) discovery.run(true);
  }

  /** Forget every request in flight (their answers will be ignored) and what was held. */
  function settleAll(): void {
    queue.reset();
    discovery.stop();
    for (const watch of watches.values()) {
      watch.generation += 1;
      watch.retry.stop();
      watch.ordering.abandon();
    }
  }

  function connect(): void {
    if (destroyed) return;
    closedByUser = false;
    if (options.fallback === "sse" && link.kind === "socket.io" && !everConnected) {
      fallbackTimer.start(options.fallbackTimeout ?? DEFAULTS.fallbackTimeout, () => {
        if (!everConnected && !refusedCredentials(store.getState().connection.error?.code)) fallBack();
      });
    }
    link.connect();
  }

  function disconnect(): void {
    closedByUser = true;
    fallbackTimer.stop();
    settleAll();
    link.disconnect();
  }

  // ---- the watched jobs ----------------------------------------------------------------------

  function newWatch(jobId: string, followed = false): Watch {
    // What the store already holds was applied in order: resume from there rather than reload.
    const entry = store.getState().jobs[jobId];
    const watch: Watch = {
      jobId,
      refs: 0,
      followed,
      ordering: new JobOrdering(jobId, entry),
      stalls: 0,
      generation: 0,
      retry: new Timer(),
      retryAttempt: 0,
      forbiddenSince: null,
    };
    watches.set(jobId, watch);
    return watch;
  }

  /** Writes what the ordering let through, and asks for the catch-up it wants. */
  function carry(watch: Watch, step: Step): void {
    for (const item of step.applied) {
      if (item.type === "event") {
        store.getState().applyEvent(item.event, now());
        notify("event", item.event);
      } else {
        store.getState().replaceSnapshot(watch.jobId, item.snapshot, now());
        notify("snapshot", watch.jobId, item.snapshot);
      }
    }
    if (step.moved) {
      watch.stalls = 0;
      watch.retryAttempt = 0;
    }
    if (step.catchUp) {
      if (watch.stalls >= MAX_STALLS) queue.askLater(watch);
      else resubscribe(watch);
    }
  }

  /**
   * `subscribe` again: with `epoch` and `since` when the position is known, plainly otherwise.
   * Events are held from now until its answer is applied.
   */
  function resubscribe(watch: Watch): void {
    watch.ordering.beginCatchUp();
    if (link.connected) {
      queue.ask(watch);
    } else {
      // The link's `opened` subscribes every watched job.
      watch.retry.stop();
      if (!closedByUser) connect();
    }
  }

  function receive(data: unknown): void {
    if (destroyed || !looksLikeEvent(data)) return;
    const event = data;
    let watch = watches.get(event.job_id);
    if (watch === undefined) {
      if (follows === 0) return; // the user room also carries jobs nobody here watches
      watch = newWatch(event.job_id, true);
      if (event.seq === 1) watch.ordering.startsEmpty(); // seen from its very start
      carry(watch, watch.ordering.receive(event));
      // After the event made the entry (when it was applied; else the catch-up's answer does).
      store.getState().setSubscription(event.job_id, "active");
      return;
    }
    carry(watch, watch.ordering.receive(event));
  }

  /** A snapshot from the server outside a request: a job listed, or an event stream's opening. */
  function offerSnapshot(data: unknown): void {
    if (destroyed || !looksLikeSnapshot(data)) return;
    let watch = watches.get(data.job_id);
    if (watch === undefined) {
      if (follows === 0) return;
      watch = newWatch(data.job_id, true);
    }
    carry(watch, watch.ordering.offerSnapshot(data));
    store.getState().setSubscription(data.job_id, "active");
  }

  function answered(watch: Watch, result: Ack<SubscribeResult>): void {
    if (isFailure(result)) {
      refused(watch, refusal(result, watch.jobId));
      return;
    }
    queue.resume();
    watch.forbiddenSince = null;
    watch.stalls += 1;
    carry(watch, watch.ordering.resolve(result)); // moving resets `stalls`; a new gap asks again
    // After what it shows, so that an entry the application cleared is not made again just for this.
    store.getState().setSubscription(watch.jobId, "active");
    // Nothing left to fill: the next problem starts its backoff afresh.
    if (!watch.ordering.catchingUp) watch.retryAttempt = 0;
  }

  function unanswered(watch: Watch, error: JobClientError): void {
    // Lost connection: `opened` subscribes again, nothing to report. A timeout: try again later.
    if (error.code === "disconnected" || !link.connected) {
      watch.ordering.abandon();
      return;
    }
    queue.askLater(watch);
    notify("error", new JobClientError(error.code, error.message, { jobId: watch.jobId }));
  }

  function refused(watch: Watch, error: JobClientError): void {
    if (isTransient(error)) {
      // Not now rather than no: the watch stands, its events stay held, nobody is told.
      queue.pause();
      queue.askLater(watch);
      return;
    }
    if (error.code === "forbidden") {
      // Perhaps not created yet: asked again, quietly, for a while.
      watch.forbiddenSince ??= now();
      if (now() - watch.forbiddenSince < forbiddenGrace) {
        queue.askLater(watch);
        return;
      }
    }
    if (error.code === "forbidden" || error.code === "invalid_request") {
      watch.ordering.abandon();
      store.getState().setSubscription(watch.jobId, error.code === "forbidden" ? "forbidden" : "failed", error);
    } else {
      store.getState().setSubscription(watch.jobId, "failed");
      queue.askLater(watch);
    }
    notify("error", error);
  }

  function drop(watch: Watch): void {
    watches.delete(watch.jobId);
    queue.forget(watch);
    store.getState().setSubscription(watch.jobId, "none");
    if (link.connected) {
      link.request("unsubscribe", { job_id: watch.jobId }).catch(() => undefined);
    }
  }

  function release(jobId: string): void {
    const watch = watches.get(jobId);
    if (watch === undefined || watch.refs === 0) return;
    watch.refs -= 1;
    if (watch.refs > 0 || (watch.followed && follows > 0)) return;
    drop(watch);
  }

  const queue = new SubscribeQueue<Watch>(
    {
      payload: (watch) => {
        const point = watch.ordering.resumePoint;
        return point === null ? { job_id: watch.jobId } : { job_id: watch.jobId, ...point };
      },
      send: (payload) => link.request("subscribe", payload),
      open: () => link.connected,
      current: (watch) => !destroyed && watches.get(watch.jobId) === watch,
      answered,
      unanswered,
      retry: (watch) => {
        if (!destroyed && watches.get(watch.jobId) === watch) resubscribe(watch);
      },
    },
    backoff,
  );

  const discovery = new Discovery(
    {
      list: () => link.request("list_jobs", {}),
      wanted: () => follows > 0 && !destroyed && link.connected,
      found(jobs) {
        for (const snapshot of jobs) {
          if (!watches.has(snapshot.job_id)) offerSnapshot(snapshot);
        }
      },
      error: (error) => notify("error", error),
    },
    backoff,
  );

  // ---- public --------------------------------------------------------------------------------

  return {
    store,
    url: options.url,

    subscribe(jobId) {
      if (destroyed) return () => undefined;
      const existing = watches.get(jobId);
      const watch = existing ?? newWatch(jobId);
      watch.refs += 1;
      if (existing === undefined) {
        store.getState().setSubscription(jobId, "pending");
        if (link.connected) resubscribe(watch);
        else connect();
      }
      let released = false;
      return () => {
        if (released) return;
        released = true;
        release(jobId);
      };
    },

    unsubscribe(jobId) {
      release(jobId);
    },

    followUser() {
      if (destroyed) return () => undefined;
      follows += 1;
      if (follows === 1) {
        link.follow(true);
        if (link.connected) discovery.run();
        else connect();
      }
      let stopped = false;
      return () => {
        if (stopped) return;
        stopped = true;
        follows -= 1;
        if (follows > 0) return;
        link.follow(false);
        for (const watch of [...watches.values()]) {
          if (!watch.followed) continue;
          watch.followed = false;
          if (watch.refs === 0) drop(watch);
        }
      };
    },

    async cancel(jobId) {
      if (destroyed) throw new JobClientError("disconnected", "The client was destroyed.");
      const result = await link.request("cancel", { job_id: jobId });
      if (isFailure(result)) throw refusal(result, jobId);
      store.getState().setCancelRequested(jobId, result.job.cancel_requested);
      return result.job;
    },

    async listJobs() {
      if (destroyed) throw new JobClientError("disconnected", "The client was destroyed.");
      const result = await link.request("list_jobs", {});
      if (isFailure(result)) throw refusal(result);
      return result.jobs;
    },

    connect,
    disconnect,

    destroy() {
      if (destroyed) return;
      disconnect();
      destroyed = true;
      for (const watch of watches.values()) watch.retry.stop();
      watches.clear();
      link.destroy();
      for (const set of Object.values(listeners)) set.clear();
    },

    get status() {
      return store.getState().connection.status;
    },

    get transport() {
      return link.kind;
    },

    lastEventAt(jobId) {
      return store.getState().jobs[jobId]?.lastEventAt ?? null;
    },

    watched() {
      return [...watches.keys()];
    },

    on(type, listener) {
      listeners[type].add(listener);
      return () => {
        listeners[type].delete(listener);
      };
    },
  };
}

/** Has what the client rule reads: a job, an epoch and a whole seq (at least `least`). */
function positioned(value: unknown, least: number): value is { job_id: string; epoch: string; seq: number } {
  if (value === null || typeof value !== "object") return false;
  const item = value as Partial<Event>;
  return (
    typeof item.job_id === "string" &&
    typeof item.epoch === "string" &&
    typeof item.seq === "number" &&
    Number.isInteger(item.seq) &&
    item.seq >= least
  );
}

function looksLikeEvent(value: unknown): value is Event {
  return positioned(value, 1);
}

function looksLikeSnapshot(value: unknown): value is Snapshot {
  return positioned(value, 0) && typeof (value as Partial<Snapshot>).status === "string";
}
