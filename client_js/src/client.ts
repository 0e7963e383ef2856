/**
 * The framework-free core: one Socket.IO connection, and the client rule of PROTOCOL.md, so that
 * what reaches the store (and `on("event")`) never has a duplicate, a reordering or a hole.
 *
 * Per watched job the core keeps `(epoch, seq)` of the last applied event. An event is applied
 * only when it is `seq + 1` in the same epoch; one at or below `seq` is dropped; anything else (a
 * gap, another epoch) is held while the job is subscribed again with `epoch` and `since = seq`,
 * and the answer (the missed events, or a snapshot that replaces the state) is applied first.
 * Every (re)connect subscribes every watched job again the same way.
 *
 * The server limits each socket's requests, so `subscribe` requests wait in one queue with at most
 * MAX_SUBSCRIBES_IN_FLIGHT on the wire; an answer `rate_limited` or `unavailable` pauses the queue
 * and asks again later, quietly: the job is still being watched, nothing has failed yet.
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";

import { JobClientError, type JobClientErrorCode } from "./errors.js";
import {
  isTerminal,
  type Ack,
  type AckFailure,
  type ClientToServerEvents,
  type ConnectAuth,
  type Event,
  type EventBatch,
  type ServerToClientEvents,
  type Snapshot,
  type SubscribeResult,
} from "./protocol.js";
import { createJobStore, type ConnectionStatus, type JobStore } from "./store.js";

/** The socket as the core uses it: `socket.io-client`'s `Socket` is one, and so is a test fake. */
export interface TransportSocket {
  readonly connected: boolean;
  /** True while the socket is connected or its manager is (re)connecting by itself. */
  readonly active: boolean;
  connect(): unknown;
  disconnect(): unknown;
  on(event: TransportEventName, listener: (...args: any[]) => void): unknown;
  off(event: TransportEventName, listener?: (...args: any[]) => void): unknown;
  timeout(ms: number): { emit(event: keyof ClientToServerEvents, ...args: any[]): unknown };
}

/** The events the core listens to: the server's, and the socket's own. */
export type TransportEventName = keyof ServerToClientEvents | "connect" | "disconnect" | "connect_error";

export type TransportOptions = Partial<ManagerOptions & SocketOptions>;

/** Makes the socket; the default is `socket.io-client`'s `io`. */
export type TransportFactory = (url: string | undefined, options: TransportOptions) => TransportSocket;

export type TypedSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export type TokenSource = () => string | null | undefined | Promise<string | null | undefined>;

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
  listJobs(): Promise<Snapshot[]>;
  /** Opens the connection; watching, cancelling and listing do this by themselves. */
  connect(): void;
  /** Closes the connection but remembers what is watched; the next `connect()` picks it up. */
  disconnect(): void;
  /** Closes for good. */
  destroy(): void;
  readonly status: ConnectionStatus;
  /** Client clock (ms) of the last event or snapshot applied for the job. */
  lastEventAt(jobId: string): number | null;
  /** The jobs the client watches, by subscription or by following the user. */
  watched(): string[];
  on<K extends keyof ClientEvents>(type: K, listener: ClientEvents[K]): () => void;
}

interface Watch {
  readonly jobId: string;
  /** `subscribe` calls not yet matched by `unsubscribe`. */
  refs: number;
  /** Picked up through the user room while following the user. */
  followed: boolean;
  /** Whether `(epoch, seq)` is a real position (a snapshot, possibly of "no job yet", was had). */
  known: boolean;
  epoch: string | null;
  seq: number;
  terminal: boolean;
  /** A `subscribe` is queued or on its way: events are held until its answer is applied. */
  inflight: boolean;
  /** Bumped to make answers to older requests ignored. */
  generation: number;
  held: Event[];
  /** Resubscriptions in a row that moved nothing: past a few, they are spaced out. */
  stalls: number;
  retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Retries since the position last moved (or the watch was last settled): the backoff's exponent. */
  retryAttempt: number;
}

const DEFAULTS = {
  ackTimeout: 10_000,
  reconnectionDelay: 1_000,
  reconnectionDelayMax: 30_000,
  randomizationFactor: 0.5,
};

/** Events held for one job while its gap is being filled; older ones are fetched again anyway. */
const MAX_HELD = 1_000;
const MAX_STALLS = 3;
/**
 * `subscribe` requests on the wire at once. The server takes a socket's requests one at a time
 * and limits how many it accepts; a reconnect with a thousand watched jobs goes out in a stream
 * rather than in one burst.
 */
export const MAX_SUBSCRIBES_IN_FLIGHT = 16;
/** Refusals that say "not now" rather than "no": asked again after a pause, never reported. */
const TRANSIENT_CODES: ReadonlySet<JobClientErrorCode> = new Set(["rate_limited", "unavailable"]);

const SERVER_EVENTS = ["job_update", "job_complete", "job_error"] as const;

const defaultTransport: TransportFactory = (url, options) => {
  const socket: TypedSocket = url === undefined ? io(options) : io(url, options);
  return socket;
};

export function createJobClient(options: JobClientOptions = {}): JobClient {
  const store = options.store ?? createJobStore();
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const ackTimeout = options.ackTimeout ?? DEFAULTS.ackTimeout;
  const baseDelay = options.reconnectionDelay ?? DEFAULTS.reconnectionDelay;
  const maxDelay = options.reconnectionDelayMax ?? DEFAULTS.reconnectionDelayMax;
  const jitter = options.randomizationFactor ?? DEFAULTS.randomizationFactor;

  const watches = new Map<string, Watch>();
  const listeners: { [K in keyof ClientEvents]: Set<ClientEvents[K]> } = {
    event: new Set(),
    snapshot: new Set(),
    error: new Set(),
    status: new Set(),
  };

  let socket: TransportSocket | null = null;
  let follows = 0;
  let closedByUser = false;
  let destroyed = false;
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  let reconnectAttempt = 0;
  /** Watches whose `subscribe` waits for a place on the wire, in the order they asked. */
  const waiting = new Set<Watch>();
  /** One token per `subscribe` on the wire on this connection. */
  const sending = new Set<object>();
  /** While set, the queue sends nothing: the server said it is over this socket's budget or down. */
  let pauseTimer: ReturnType<typeof setTimeout> | undefined;
  let pauseAttempt = 0;
  let discoverTimer: ReturnType<typeof setTimeout> | undefined;
  let discoverAttempt = 0;

  // ---- helpers -----------------------------------------------------------------------------

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

  function setStatus(status: ConnectionStatus, extra: { error?: JobClientError | null } = {}): void {
    const previous = store.getState().connection;
    const error =
      extra.error === undefined
        ? previous.error
        : extra.error === null
          ? null
          : { code: extra.error.code, message: extra.error.message };
    store.getState().setConnection({ status, error, attempts: reconnectAttempt });
    if (previous.status !== status) notify("status", status);
  }

  /** Exponential backoff with jitter: base · 2^attempt, capped, moved by ±randomizationFactor. */
  function backoff(attempt: number): number {
    const plain = Math.min(maxDelay, baseDelay * 2 ** Math.min(attempt, 30));
    const deviation = plain * jitter * (random() * 2 - 1);
    return Math.max(0, Math.min(maxDelay, Math.round(plain + deviation)));
  }

  async function buildAuth(): Promise<ConnectAuth> {
    const auth: ConnectAuth = {};
    if (options.getToken !== undefined) {
      try {
        const token = await options.getToken();
        if (typeof token === "string" && token !== "") auth.token = token;
      } catch (cause) {
        notify("error", new JobClientError("unauthorized", "getToken failed", { cause }));
      }
    }
    if (auth.token === undefined && options.userId !== undefined) auth.user_id = options.userId;
    return auth;
  }

  function ensureSocket(): TransportSocket {
    if (socket !== null) return socket;
    const transport = options.transport ?? defaultTransport;
    const created = transport(options.url, {
      forceNew: true,
      autoConnect: false,
      transports: options.transports ?? ["websocket", "polling"],
      tryAllTransports: true,
      reconnection: true,
      reconnectionDelay: baseDelay,
      reconnectionDelayMax: maxDelay,
      randomizationFactor: jitter,
      ...(options.path === undefined ? {} : { path: options.path }),
      ...options.socketOptions,
      auth: (callback: (data: object) => void) => {
        void buildAuth().then(callback);
      },
    });
    listen(created, "on");
    socket = created;
    return created;
  }

  type RequestOf<E extends keyof ClientToServerEvents> = Parameters<ClientToServerEvents[E]>[0];
  type ResultOf<E extends keyof ClientToServerEvents> = Parameters<
    Parameters<ClientToServerEvents[E]>[1]
  >[0];

  /** Emits with an acknowledgement; a timeout or a lost connection rejects with a JobClientError. */
  function request<E extends keyof ClientToServerEvents>(event: E, payload: RequestOf<E>): Promise<ResultOf<E>> {
    if (destroyed) {
      return Promise.reject(new JobClientError("disconnected", "The client was destroyed."));
    }
    const target = ensureSocket();
    if (!target.connected && !target.active) connect();
    return new Promise((resolve, reject) => {
      target.timeout(ackTimeout).emit(event, payload, (error: Error | null, result: ResultOf<E>) => {
        if (error) {
          const code: JobClientErrorCode = /disconnected/.test(error.message) ? "disconnected" : "timeout";
          reject(new JobClientError(code, error.message, { cause: error }));
        } else {
          resolve(result);
        }
      });
    });
  }

  /** The error of a failed acknowledgement; no ack at all (or a malformed one) reads as unavailable. */
  function refusal(result: AckFailure | undefined, jobId?: string): JobClientError {
    const { code, message } = result?.error ?? {
      code: "unavailable",
      message: "The server answered without a result; try again.",
    };
    return new JobClientError(code, message, jobId === undefined ? undefined : { jobId });
  }

  function isFailure<T>(result: Ack<T>): result is AckFailure {
    return typeof result !== "object" || result === null || (result as { ok?: unknown }).ok !== true;
  }

  // ---- the client rule ---------------------------------------------------------------------

  function newWatch(jobId: string): Watch {
    const watch: Watch = {
      jobId,
      refs: 0,
      followed: false,
      known: false,
      epoch: null,
      seq: 0,
      terminal: false,
      inflight: false,
      generation: 0,
      held: [],
      stalls: 0,
      retryTimer: undefined,
      retryAttempt: 0,
    };
    // What the store already holds was applied in order: resume from there rather than reload.
    const entry = store.getState().jobs[jobId];
    if (entry !== undefined && entry.epoch !== null && entry.seq > 0) {
      watch.known = true;
      watch.epoch = entry.epoch;
      watch.seq = entry.seq;
      watch.terminal = isTerminal(entry.status);
    }
    watches.set(jobId, watch);
    return watch;
  }

  function isCurrent(watch: Watch, generation: number): boolean {
    return !destroyed && watches.get(watch.jobId) === watch && watch.generation === generation;
  }

  function hold(watch: Watch, event: Event): void {
    watch.held.push(event);
    if (watch.held.length > MAX_HELD) watch.held.splice(0, watch.held.length - MAX_HELD);
  }

  function offer(watch: Watch, event: Event): void {
    if (watch.inflight || watch.retryTimer !== undefined || !watch.known) {
      hold(watch, event);
      if (!watch.inflight && watch.retryTimer === undefined) resubscribe(watch);
      return;
    }
    if (watch.epoch === null) {
      // The job did not exist when we looked: its first event is the whole history so far.
      if (event.seq === 1) apply(watch, event);
      else gap(watch, event);
      return;
    }
    if (event.epoch !== watch.epoch) {
      gap(watch, event);
      return;
    }
    if (event.seq <= watch.seq) return; // a duplicate
    if (event.seq === watch.seq + 1) apply(watch, event);
    else gap(watch, event);
  }

  function apply(watch: Watch, event: Event): void {
    watch.epoch = event.epoch;
    watch.seq = event.seq;
    watch.terminal = isTerminal(event.status);
    watch.stalls = 0;
    watch.retryAttempt = 0;
    store.getState().applyEvent(event, now());
    notify("event", event);
  }

  function gap(watch: Watch, event: Event): void {
    hold(watch, event);
    if (watch.stalls >= MAX_STALLS) scheduleRetry(watch);
    else resubscribe(watch);
  }

  function replace(watch: Watch, snapshot: Snapshot | null): void {
    const epoch = snapshot?.epoch ?? null;
    const seq = snapshot?.seq ?? 0;
    if (!watch.known || watch.epoch !== epoch || watch.seq !== seq) {
      watch.stalls = 0;
      watch.retryAttempt = 0;
    }
    watch.known = true;
    watch.epoch = epoch;
    watch.seq = seq;
    watch.terminal = snapshot !== null && isTerminal(snapshot.status);
    store.getState().replaceSnapshot(watch.jobId, snapshot, now());
    notify("snapshot", watch.jobId, snapshot);
  }

  /** Applies what was held, in seq order; a new gap starts another resubscription. */
  function drain(watch: Watch): void {
    const held = watch.held.splice(0).sort((a, b) => a.seq - b.seq);
    for (const event of held) offer(watch, event);
  }

  /**
   * `subscribe` again: with `epoch` and `since` when the position is known, plainly otherwise. The
   * request joins the queue; events are held from now until its answer is applied.
   */
  function resubscribe(watch: Watch): void {
    clearRetry(watch);
    if (socket === null || !socket.connected) {
      // The connect handler subscribes every watched job.
      watch.inflight = false;
      waiting.delete(watch);
      if (!closedByUser) connect();
      return;
    }
    watch.inflight = true;
    waiting.add(watch);
    pump();
  }

  /** Sends queued `subscribe` requests while there is room on the wire and no pause. */
  function pump(): void {
    while (pauseTimer === undefined && sending.size < MAX_SUBSCRIBES_IN_FLIGHT && socket?.connected) {
      const next = waiting.values().next();
      if (next.done === true) return;
      const watch = next.value;
      waiting.delete(watch);
      if (destroyed || watches.get(watch.jobId) !== watch || !watch.inflight) continue;
      send(watch);
    }
  }

  function send(watch: Watch): void {
    const slot = {};
    sending.add(slot);
    const generation = ++watch.generation;
    const payload =
      watch.known && watch.epoch !== null
        ? { job_id: watch.jobId, epoch: watch.epoch, since: watch.seq }
        : { job_id: watch.jobId };
    /** Frees its place on the wire (already gone with the connection it was sent on) and fills it. */
    const settle = (handle: () => void): void => {
      sending.delete(slot);
      try {
        if (isCurrent(watch, generation)) handle();
      } finally {
        pump();
      }
    };
    request("subscribe", payload).then(
      (result) => settle(() => answered(watch, result)),
      (error: JobClientError) => settle(() => unanswered(watch, error)),
    );
  }

  function answered(watch: Watch, result: Ack<SubscribeResult>): void {
    watch.inflight = false;
    if (isFailure(result)) {
      refused(watch, refusal(result, watch.jobId));
      return;
    }
    pauseAttempt = 0;
    watch.stalls += 1;
    if (result.recovered) {
      watch.held.unshift(...result.events);
    } else {
      replace(watch, result.job);
    }
    if (watch.epoch !== null) {
      // The answer names the job's current life: what was held from another one is stale.
      const epoch = watch.epoch;
      watch.held = watch.held.filter((event) => event.epoch === epoch);
    }
    drain(watch); // applying an event resets `stalls` and `retryAttempt`; a new gap asks again
    // After what it shows, so that an entry the application cleared is not made again just for this.
    store.getState().setSubscription(watch.jobId, "active");
    // Nothing left to fill: the next problem starts its backoff afresh.
    if (!watch.inflight && watch.retryTimer === undefined) watch.retryAttempt = 0;
  }

  function unanswered(watch: Watch, error: JobClientError): void {
    watch.inflight = false;
    // Lost connection: the connect handler resubscribes, nothing to report. A timeout: try again
    // later.
    if (error.code === "disconnected" || !socket?.connected) return;
    scheduleRetry(watch);
    notify("error", new JobClientError(error.code, error.message, { jobId: watch.jobId }));
  }

  function refused(watch: Watch, error: JobClientError): void {
    if (TRANSIENT_CODES.has(error.code)) {
      // Not now rather than no: the watch stands, its events stay held, nobody is told.
      pause();
      scheduleRetry(watch);
      return;
    }
    if (error.code === "forbidden" || error.code === "invalid_request") {
      watch.held = [];
      store.getState().setSubscription(watch.jobId, error.code === "forbidden" ? "forbidden" : "failed", error);
    } else {
      store.getState().setSubscription(watch.jobId, "failed");
      scheduleRetry(watch);
    }
    notify("error", error);
  }

  /** Holds the whole queue back: the server's budget is per socket, so no other job may go now. */
  function pause(): void {
    if (pauseTimer !== undefined) return;
    const delay = backoff(pauseAttempt);
    pauseAttempt += 1;
    pauseTimer = setTimeout(() => {
      pauseTimer = undefined;
      pump();
    }, delay);
  }

  /** A new connection: a fresh budget on the server, nothing of the old one on the wire. */
  function resetQueue(): void {
    waiting.clear();
    sending.clear();
    if (pauseTimer !== undefined) clearTimeout(pauseTimer);
    pauseTimer = undefined;
    pauseAttempt = 0;
  }

  function scheduleRetry(watch: Watch): void {
    if (watch.retryTimer !== undefined) return;
    const delay = backoff(watch.retryAttempt);
    watch.retryAttempt += 1;
    watch.retryTimer = setTimeout(() => {
      watch.retryTimer = undefined;
      if (watches.get(watch.jobId) === watch && !destroyed) resubscribe(watch);
    }, delay);
  }

  function clearRetry(watch: Watch): void {
    if (watch.retryTimer !== undefined) {
      clearTimeout(watch.retryTimer);
      watch.retryTimer = undefined;
    }
  }

  /** Forget every request in flight (their answers will be ignored) and what was held. */
  function settleAll(): void {
    resetQueue();
    clearDiscover();
    for (const watch of watches.values()) {
      watch.generation += 1;
      watch.inflight = false;
      watch.held = [];
      clearRetry(watch);
    }
  }

  function drop(watch: Watch): void {
    watches.delete(watch.jobId);
    waiting.delete(watch);
    watch.generation += 1;
    clearRetry(watch);
    store.getState().setSubscription(watch.jobId, "none");
    if (socket?.connected) {
      request("unsubscribe", { job_id: watch.jobId }).catch(() => undefined);
    }
  }

  // ---- following the user room -------------------------------------------------------------

  function discover(): void {
    clearDiscover();
    request("list_jobs", {}).then(
      (result) => {
        if (follows === 0 || destroyed) return;
        if (isFailure(result)) {
          const error = refusal(result);
          if (TRANSIENT_CODES.has(error.code)) {
            // Asked again, quietly, as a refused subscribe is.
            const delay = backoff(discoverAttempt);
            discoverAttempt += 1;
            discoverTimer = setTimeout(() => {
              discoverTimer = undefined;
              if (follows > 0 && !destroyed && socket?.connected) discover();
            }, delay);
          } else {
            notify("error", error);
          }
          return;
        }
        discoverAttempt = 0;
        // Oldest first, so the store lists jobs in the order they were made.
        for (const snapshot of [...result.jobs].reverse()) {
          if (watches.has(snapshot.job_id)) continue;
          const watch = newWatch(snapshot.job_id);
          watch.followed = true;
          if (!(watch.known && watch.epoch === snapshot.epoch && watch.seq >= snapshot.seq)) {
            replace(watch, snapshot);
          }
          store.getState().setSubscription(snapshot.job_id, "active");
        }
      },
      (error: JobClientError) => notify("error", error),
    );
  }

  function clearDiscover(): void {
    if (discoverTimer !== undefined) {
      clearTimeout(discoverTimer);
      discoverTimer = undefined;
    }
  }

  // ---- socket events -----------------------------------------------------------------------

  /** Adds (or removes, by the very same handlers) every listener the core keeps on a socket. */
  function listen(target: TransportSocket, method: "on" | "off"): void {
    target[method]("connect", onConnect);
    target[method]("disconnect", onDisconnect);
    target[method]("connect_error", onConnectError);
    for (const name of SERVER_EVENTS) target[method](name, onServerEvent);
    target[method]("job_batch", onBatch);
  }

  function onConnect(): void {
    clearReconnect();
    reconnectAttempt = 0;
    resetQueue();
    discoverAttempt = 0;
    setStatus("connected", { error: null });
    for (const watch of [...watches.values()]) {
      watch.generation += 1;
      watch.inflight = false;
      // A followed job that has finished will not change again: no need to ask.
      if (watch.refs === 0 && watch.known && watch.terminal) continue;
      resubscribe(watch);
    }
    if (follows > 0) discover();
  }

  function onDisconnect(reason: string): void {
    settleAll();
    if (closedByUser || destroyed) {
      setStatus("disconnected");
      return;
    }
    setStatus("reconnecting");
    // The manager reconnects by itself after a transport failure, but not after the server
    // closed the socket (an expired token): that one is ours.
    if (socket !== null && !socket.active) scheduleReconnect();
  }

  function onConnectError(error: Error & { data?: unknown }): void {
    const code: JobClientErrorCode = error.message === "unauthorized" ? "unauthorized" : "connection_failed";
    const failure = new JobClientError(code, error.message, { cause: error });
    reconnectAttempt += 1;
    setStatus("reconnecting", { error: failure });
    notify("error", failure);
    // Refused by the server: socket.io-client gives up, so ask again (with a fresh token).
    if (socket !== null && !socket.active && !closedByUser && !destroyed) scheduleReconnect();
  }

  function onServerEvent(event: Event): void {
    receive(event);
  }

  function onBatch(batch: EventBatch): void {
    if (batch === null || typeof batch !== "object" || !Array.isArray(batch.events)) return;
    for (const event of batch.events) receive(event);
  }

  function receive(event: Event): void {
    if (destroyed || !looksLikeEvent(event)) return;
    let watch = watches.get(event.job_id);
    if (watch === undefined) {
      if (follows === 0) return; // the user room also carries jobs nobody here watches
      watch = newWatch(event.job_id);
      watch.followed = true;
      if (!watch.known && event.seq === 1) watch.known = true; // seen from its very start
      offer(watch, event);
      // After the event made the entry (when it was applied; else the subscribe's answer does).
      store.getState().setSubscription(event.job_id, "active");
      return;
    }
    offer(watch, event);
  }

  function scheduleReconnect(): void {
    if (reconnectTimer !== undefined) return;
    const delay = backoff(Math.max(0, reconnectAttempt - 1));
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      if (!closedByUser && !destroyed && socket !== null && !socket.connected) socket.connect();
    }, delay);
  }

  function clearReconnect(): void {
    if (reconnectTimer !== undefined) {
      clearTimeout(reconnectTimer);
      reconnectTimer = undefined;
    }
  }

  // ---- public --------------------------------------------------------------------------------

  function connect(): void {
    if (destroyed) return;
    closedByUser = false;
    const target = ensureSocket();
    if (target.connected || target.active) return;
    clearReconnect();
    const status = store.getState().connection.status;
    setStatus(status === "disconnected" ? "connecting" : status);
    target.connect();
  }

  function disconnect(): void {
    closedByUser = true;
    clearReconnect();
    settleAll();
    socket?.disconnect();
    reconnectAttempt = 0;
    setStatus("disconnected");
  }

  function release(jobId: string): void {
    const watch = watches.get(jobId);
    if (watch === undefined || watch.refs === 0) return;
    watch.refs -= 1;
    if (watch.refs > 0 || (watch.followed && follows > 0)) return;
    drop(watch);
  }

  const client: JobClient = {
    store,
    url: options.url,

    subscribe(jobId) {
      if (destroyed) return () => undefined;
      const existing = watches.get(jobId);
      const watch = existing ?? newWatch(jobId);
      watch.refs += 1;
      if (existing === undefined) {
        store.getState().setSubscription(jobId, "pending");
        if (socket?.connected) resubscribe(watch);
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
        if (socket?.connected) discover();
        else connect();
      }
      let stopped = false;
      return () => {
        if (stopped) return;
        stopped = true;
        follows -= 1;
        if (follows > 0) return;
        for (const watch of [...watches.values()]) {
          if (!watch.followed) continue;
          watch.followed = false;
          if (watch.refs === 0) drop(watch);
        }
      };
    },

    async cancel(jobId) {
      const result = await request("cancel", { job_id: jobId });
      if (isFailure(result)) throw refusal(result, jobId);
      if (store.getState().jobs[jobId] !== undefined) {
        store.getState().setCancelRequested(jobId, result.job.cancel_requested);
      }
      return result.job;
    },

    async listJobs() {
      const result = await request("list_jobs", {});
      if (isFailure(result)) throw refusal(result);
      return result.jobs;
    },

    connect,
    disconnect,

    destroy() {
      if (destroyed) return;
      disconnect();
      destroyed = true;
      for (const watch of watches.values()) clearRetry(watch);
      watches.clear();
      if (socket !== null) {
        listen(socket, "off");
        socket = null;
      }
      for (const set of Object.values(listeners)) set.clear();
    },

    get status() {
      return store.getState().connection.status;
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
  return client;
}

function looksLikeEvent(value: unknown): value is Event {
  if (value === null || typeof value !== "object") return false;
  const event = value as Partial<Event>;
  return (
    typeof event.job_id === "string" &&
    typeof event.epoch === "string" &&
    typeof event.seq === "number" &&
    Number.isInteger(event.seq) &&
    event.seq > 0
  );
}
