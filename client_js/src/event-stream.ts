/**
 * The Server-Sent Events link, for when Socket.IO cannot connect (a proxy that drops websockets
 * and long polling, say). Events come through EventSource: `GET /api/stream` carries every job of
 * the user while the client follows the user, `GET /api/jobs/{id}/stream` each job watched
 * otherwise. Requests go through the HTTP API and are answered as the Socket.IO acknowledgements
 * are, so the core's ordering, queue and discovery work over it unchanged: a catch-up is
 * `GET /api/jobs/{id}/events?epoch=&since=`, or the job's snapshot when the history is gone.
 *
 * EventSource cannot send headers, so the streams carry the token as `?token=` (or the open-mode
 * user as `?user_id=`); HTTP requests send it as `Authorization: Bearer`.
 *
 * Nor does EventSource say why the server refused a stream: when one is closed for good, the same
 * request over `fetch` asks. A 429 (too many wrong credentials from this address) carries
 * `Retry-After`, as any answer 429 to a request does: no stream is opened again before it is over.
 */
import { Timer, type Backoff } from "./backoff.js";
import { JobClientError, rateLimitedError, retryAfterSeconds } from "./errors.js";
import type { Link, LinkHooks, RequestOf, ResultOf } from "./link.js";
import {
  isTerminal,
  type Ack,
  type AckFailure,
  type ClientToServerEvents,
  type Event,
  type ListedJob,
  type ProtocolErrorCode,
  type Snapshot,
  type SubscribeRequest,
  type SubscribeResult,
} from "./protocol.js";
import type { ConnectionStatus } from "./store.js";
import { connectAuth, type TokenSource } from "./connection.js";

/** What the link uses of an EventSource. */
export interface EventSourceLike {
  readonly readyState: number;
  addEventListener(type: string, listener: (message: MessageEvent<string>) => void): void;
  close(): void;
}

export type EventSourceFactory = (url: string) => EventSourceLike;

export interface EventStreamLinkOptions {
  url: string | undefined;
  getToken: TokenSource | undefined;
  userId: string | undefined;
  eventSource: EventSourceFactory | undefined;
  fetch: typeof fetch | undefined;
  backoff: Backoff;
  /** The client's clock (ms). */
  now: () => number;
}

/** EventSource.CLOSED: the browser will not try again by itself. */
const CLOSED = 2;
const EVENT_NAMES = ["job_update", "job_complete", "job_error"] as const;
const SNAPSHOT_NAMES = ["snapshot", "resync"] as const;

/** A stream lost for no reason the server gave. */
const interrupted = () => new JobClientError("connection_failed", "The event stream was interrupted.");

function defaultEventSource(url: string): EventSourceLike {
  if (typeof EventSource === "undefined") {
    throw new JobClientError("connection_failed", "There is no EventSource here to follow the event stream with.");
  }
  return new EventSource(url);
}

/** What a stream tells the link it belongs to. */
interface StreamHooks {
  /** Makes its EventSource (asking for the token first). */
  open(stream: Stream): Promise<EventSourceLike>;
  up(stream: Stream): void;
  failed(stream: Stream, error: JobClientError): void;
  /** Why the server closed the stream for good. */
  refusal(stream: Stream): Promise<JobClientError>;
  /** A job stream that ended after its job did. */
  ended(stream: Stream): void;
  snapshot(data: unknown): void;
  event(data: unknown): void;
  backoff: Backoff;
}

/** One EventSource kept open: opened again, with backoff, when the server closes it for good. */
class Stream {
  private source: EventSourceLike | null = null;
  private readonly reopen = new Timer();
  private attempt = 0;
  private closed = false;
  /** The `id` of the last frame: where to resume when the stream is opened again. */
  lastEventId = "";
  /** The last frame showed its job finished: a job stream has nothing more to say. */
  finished = false;
  broken = false;
  /** Opened at least once: a job stream that never was waits for its job, it is not broken. */
  opened = false;

  /** `once`: a job's stream, over when its job is, and resumed from its last frame's id. */
  constructor(
    readonly path: string,
    private readonly hooks: StreamHooks,
    readonly once: boolean,
  ) {
    this.start();
  }

  close(): void {
    this.closed = true;
    this.reopen.stop();
    this.source?.close();
    this.source = null;
  }

  private start(): void {
    this.hooks.open(this).then(
      (source) => {
        if (this.closed) {
          source.close();
          return;
        }
        this.source = source;
        this.listen(source);
      },
      (error: unknown) => {
        this.hooks.failed(this, error instanceof JobClientError ? error : new JobClientError("connection_failed", String(error)));
        this.retry();
      },
    );
  }

  private listen(source: EventSourceLike): void {
    source.addEventListener("open", () => {
      this.attempt = 0;
      this.opened = true;
      this.hooks.up(this);
    });
    const frame = (message: MessageEvent<string>): unknown => {
      this.lastEventId = message.lastEventId;
      let data: unknown = null;
      try {
        data = JSON.parse(message.data);
      } catch {
        // not JSON: nothing the client rule can read
      }
      this.finished = isTerminal((data as { status?: string } | null)?.status);
      return data;
    };
    for (const name of SNAPSHOT_NAMES) source.addEventListener(name, (message) => this.hooks.snapshot(frame(message)));
    for (const name of EVENT_NAMES) source.addEventListener(name, (message) => this.hooks.event(frame(message)));
    source.addEventListener("error", () => {
      if (this.closed) return;
      if (this.once && this.finished) {
        this.close(); // the stream ended after the job did; there is nothing to resume
        this.hooks.ended(this);
        return;
      }
      if (source.readyState !== CLOSED) {
        this.hooks.failed(this, interrupted()); // EventSource tries again by itself
        return;
      }
      this.source = null;
      void this.hooks.refusal(this).then((error) => {
        if (this.closed) return;
        this.hooks.failed(this, error);
        this.retry();
      });
    });
  }

  private retry(): void {
    if (this.closed) return;
    this.reopen.start(this.hooks.backoff(this.attempt), () => this.start());
    this.attempt += 1;
  }
}

export class EventStreamLink implements Link {
  readonly kind = "sse";
  private active = false;
  private destroyed = false;
  private following = false;
  private userStream: Stream | null = null;
  private readonly jobStreams = new Map<string, Stream>();
  private status: ConnectionStatus = "disconnected";
  private attempts = 0;
  private readonly fetch: typeof fetch;
  private readonly streamHooks: StreamHooks;
  /** Client clock before which the server refuses credentials from here (its last `Retry-After`). */
  private refusedUntil = 0;

  constructor(
    private readonly options: EventStreamLinkOptions,
    private readonly hooks: LinkHooks,
  ) {
    this.fetch = options.fetch ?? ((...args) => globalThis.fetch(...args));
    const eventSource = options.eventSource ?? defaultEventSource;
    this.streamHooks = {
      open: async (stream) => {
        const query = await this.identify();
        if (stream.once && stream.lastEventId !== "") query.set("last_event_id", stream.lastEventId);
        return eventSource(this.address(stream.path, query));
      },
      up: (stream) => this.up(stream),
      failed: (stream, error) => this.failed(stream, error),
      refusal: (stream) => this.refusal(stream),
      ended: (stream) => this.ended(stream),
      snapshot: (data) => this.hooks.snapshot(data),
      event: (data) => this.hooks.event(data),
      // The backoff starts once the server's Retry-After (if any) is over.
      backoff: (attempt) => Math.max(0, this.refusedUntil - options.now()) + options.backoff(attempt),
    };
  }

  /** HTTP requests can go out whenever the link is open. */
  get connected(): boolean {
    return this.active;
  }

  connect(): void {
    if (this.active || this.destroyed) return;
    this.active = true;
    this.setStatus("connecting");
    if (this.following) {
      this.userStream = this.openStream("/api/stream", false);
    } else {
      // Nothing to wait for: each watched job's stream opens with its subscribe.
      void Promise.resolve().then(() => {
        if (this.active) this.up(null);
      });
    }
  }

  disconnect(): void {
    this.active = false;
    this.userStream?.close();
    this.userStream = null;
    for (const stream of this.jobStreams.values()) stream.close();
    this.jobStreams.clear();
    this.attempts = 0;
    if (this.status !== "disconnected") this.hooks.closed();
    this.setStatus("disconnected");
  }

  destroy(): void {
    this.disconnect();
    this.destroyed = true;
  }

  follow(on: boolean): void {
    this.following = on;
    if (!this.active) return;
    if (on && this.userStream === null) this.userStream = this.openStream("/api/stream", false);
    if (!on && this.userStream !== null) {
      this.userStream.close();
      this.userStream = null;
    }
  }

  request<E extends keyof ClientToServerEvents>(event: E, payload: RequestOf<E>): Promise<ResultOf<E>> {
    if (this.destroyed) return Promise.reject(new JobClientError("disconnected", "The client was destroyed."));
    return this.answer(event, payload) as Promise<ResultOf<E>>;
  }

  // ---- what the streams say -------------------------------------------------------------------

  private up(stream: Stream | null): void {
    if (stream !== null) stream.broken = false;
    if (stream !== null && stream !== this.userStream) {
      this.settleStatus();
      return;
    }
    this.attempts = 0;
    this.setStatus("connected", null);
    this.hooks.opened(); // the user stream (re)opened: catch every job up, list the user's
  }

  private failed(stream: Stream, error: JobClientError): void {
    // A job stream that never opened may wait for its job to exist; a refused address is news.
    if (stream !== this.userStream && !stream.opened && error.code !== "rate_limited") return;
    // Requests go over HTTP, not the stream: what is in flight is still answered.
    stream.broken = true;
    this.attempts += 1;
    this.setStatus("reconnecting", error);
  }

  private ended(stream: Stream): void {
    for (const [jobId, candidate] of this.jobStreams) if (candidate === stream) this.jobStreams.delete(jobId);
    this.settleStatus();
  }

  // ---- internals ------------------------------------------------------------------------------

  private settleStatus(): void {
    const broken = (this.userStream?.broken ?? false) || [...this.jobStreams.values()].some((s) => s.broken);
    this.setStatus(broken ? "reconnecting" : "connected", broken ? undefined : null);
  }

  private setStatus(status: ConnectionStatus, error?: JobClientError | null): void {
    this.status = status;
    this.hooks.status(status, error, this.attempts);
  }

  private openStream(path: string, once: boolean): Stream {
    return new Stream(path, this.streamHooks, once);
  }

  private async answer(event: keyof ClientToServerEvents, payload: unknown): Promise<Ack<unknown>> {
    switch (event) {
      case "subscribe":
        return this.catchUp(payload as SubscribeRequest);
      case "unsubscribe": {
        const { job_id } = payload as RequestOf<"unsubscribe">;
        this.jobStreams.get(job_id)?.close();
        this.jobStreams.delete(job_id);
        return { ok: true };
      }
      case "cancel": {
        const { job_id } = payload as RequestOf<"cancel">;
        const { status, body } = await this.http("POST", `/api/jobs/${encodeURIComponent(job_id)}/cancel`);
        return status === 200 ? { ok: true, job: body as Snapshot } : failure(status, body);
      }
      case "list_jobs": {
        const { status, body } = await this.http("GET", "/api/jobs");
        return status === 200 ? { ok: true, jobs: (body as { jobs: ListedJob[] }).jobs } : failure(status, body);
      }
    }
  }

  /** `subscribe` over HTTP: the missed events when the server has them, else the job's state. */
  private async catchUp({ job_id, epoch, since }: SubscribeRequest): Promise<Ack<SubscribeResult>> {
    if (!this.following && !this.jobStreams.has(job_id)) {
      this.jobStreams.set(job_id, this.openStream(`/api/jobs/${encodeURIComponent(job_id)}/stream`, true));
    }
    const path = `/api/jobs/${encodeURIComponent(job_id)}`;
    if (epoch !== undefined && since !== undefined) {
      const { status, body } = await this.http("GET", `${path}/events`, { epoch, since: String(since) });
      if (status !== 200) return failure(status, body);
      const missed = body as { events: Event[]; recovered: boolean };
      if (missed.recovered) return { ok: true, job: null, events: missed.events, recovered: true };
    }
    const { status, body } = await this.http("GET", path);
    // Not there: not created yet, or not the caller's; the API does not say which, so: waiting.
    if (status === 404) return { ok: true, job: null, events: [], recovered: false };
    return status === 200 ? { ok: true, job: body as Snapshot, events: [], recovered: false } : failure(status, body);
  }

  private async http(method: string, path: string, params: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
    const response = await this.send(method, path, params);
    const body: unknown = await response.json().catch(() => null);
    return { status: response.status, body };
  }

  /** Why the server closed `stream` for good: the same request again, read as far as its status. */
  private async refusal(stream: Stream): Promise<JobClientError> {
    const reading = new AbortController();
    try {
      const response = await this.send("GET", stream.path, {}, reading.signal);
      reading.abort(); // a stream that opens this time is not read: the EventSource is opened again
      return response.status === 429 ? rateLimitedError(retryAfterSeconds(response.headers.get("Retry-After"))) : interrupted();
    } catch {
      return interrupted();
    }
  }

  /** One HTTP request, the token as a header; an answer 429 holds the streams for its Retry-After. */
  private async send(method: string, path: string, params: Record<string, string>, signal?: AbortSignal): Promise<Response> {
    const query = await this.identify();
    for (const [key, value] of Object.entries(params)) query.set(key, value);
    const token = query.get("token");
    query.delete("token");
    let response: Response;
    try {
      response = await this.fetch(this.address(path, query), {
        method,
        headers: token === null ? {} : { Authorization: `Bearer ${token}` },
        cache: "no-store",
        ...(signal === undefined ? {} : { signal }),
      });
    } catch (cause) {
      throw new JobClientError("connection_failed", `${method} ${path} failed: ${String(cause)}`, { cause });
    }
    if (response.status === 429) {
      const seconds = retryAfterSeconds(response.headers.get("Retry-After")) ?? 0;
      this.refusedUntil = Math.max(this.refusedUntil, this.options.now() + seconds * 1_000);
    }
    return response;
  }

  /** Who the caller is, as a query: `token` (moved to a header for HTTP) or `user_id`. */
  private async identify(): Promise<URLSearchParams> {
    const auth = await connectAuth(this.options.getToken, this.options.userId, this.hooks.error);
    const query = new URLSearchParams();
    if (auth.token !== undefined) query.set("token", auth.token);
    else if (auth.user_id !== undefined) query.set("user_id", auth.user_id);
    return query;
  }

  private address(path: string, query: URLSearchParams): string {
    const base = (this.options.url ?? "").replace(/\/+$/, "");
    const search = query.toString();
    return `${base}${path}${search === "" ? "" : `?${search}`}`;
  }
}

/** An HTTP error answered as the Socket.IO acknowledgement of the same refusal. */
function failure(status: number, body: unknown): AckFailure {
  const code: ProtocolErrorCode =
    status === 400
      ? "invalid_request"
      : status === 401 || status === 403 || status === 404
        ? "forbidden"
        : status === 429
          ? "rate_limited"
          : "unavailable";
  const said = (body as { error?: { message?: unknown } } | null)?.error?.message;
  const message = typeof said === "string" ? said : `The server answered ${status}.`;
  return { ok: false, error: { code, message } };
}
