/**
 * A stand-in for socket.io-client's Socket that the test drives by hand: it connects, drops,
 * refuses and answers only when told, so every test states the exact order of things.
 */
import type { TransportEventName, TransportOptions, TransportSocket } from "../src/connection.js";
import type { ClientToServerEvents, ConnectAuth, Event, JobStatus, Snapshot } from "../src/protocol.js";

export interface Sent {
  event: keyof ClientToServerEvents;
  payload: Record<string, unknown>;
  answered: boolean;
  answer(result: unknown): void;
  fail(message: string): void;
}

type Listener = (...args: any[]) => void;

export class FakeSocket implements TransportSocket {
  connected = false;
  active = false;
  connectCalls = 0;
  readonly sent: Sent[] = [];
  readonly auths: ConnectAuth[] = [];
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(
    readonly url: string | undefined,
    readonly options: TransportOptions,
  ) {}

  connect(): this {
    this.connectCalls += 1;
    this.active = true;
    return this;
  }

  disconnect(): this {
    const was = this.connected;
    this.connected = false;
    this.active = false;
    if (was) this.fire("disconnect", "io client disconnect");
    this.clearAcks();
    return this;
  }

  on(event: TransportEventName, listener: Listener): this {
    let set = this.listeners.get(event);
    if (set === undefined) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return this;
  }

  off(event: TransportEventName, listener?: Listener): this {
    if (listener === undefined) this.listeners.delete(event);
    else this.listeners.get(event)?.delete(listener);
    return this;
  }

  listenerCount(): number {
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }

  timeout(_ms: number): { emit(event: keyof ClientToServerEvents, ...args: any[]): unknown } {
    return {
      emit: (event, payload: Record<string, unknown>, ack: (error: Error | null, result?: unknown) => void) => {
        const sent: Sent = {
          event,
          payload,
          answered: false,
          answer: (result) => {
            if (sent.answered) throw new Error(`answered twice: ${event}`);
            sent.answered = true;
            ack(null, result);
          },
          fail: (message) => {
            if (sent.answered) return;
            sent.answered = true;
            ack(new Error(message));
          },
        };
        this.sent.push(sent);
        return this;
      },
    };
  }

  // ---- what the server side does ----

  /** Completes a connection: asks `auth` like socket.io-client does, then fires `connect`. */
  async open(): Promise<ConnectAuth> {
    if (!this.active) throw new Error("open() before connect()");
    const auth = this.options.auth;
    let data: ConnectAuth = {};
    if (typeof auth === "function") data = await new Promise<ConnectAuth>((resolve) => auth(resolve));
    this.auths.push(data);
    this.connected = true;
    this.fire("connect");
    return data;
  }

  /** The transport fails: the manager would reconnect by itself, so `active` stays true. */
  drop(reason = "transport close"): void {
    this.connected = false;
    this.fire("disconnect", reason);
    this.clearAcks();
  }

  /** The server closes the socket (an expired token): socket.io-client does not reconnect. */
  serverDisconnect(): void {
    this.connected = false;
    this.active = false;
    this.fire("disconnect", "io server disconnect");
    this.clearAcks();
  }

  /**
   * The server's middleware refuses the connection (after reading `auth`, as a real one does),
   * with `data` beside the message as socket.io-client hands it on (`rate_limited`'s `retry_after`).
   */
  async refuse(message = "unauthorized", data?: unknown): Promise<void> {
    if (!this.active) throw new Error("refuse() before connect()");
    const auth = this.options.auth;
    let sent: ConnectAuth = {};
    if (typeof auth === "function") sent = await new Promise<ConnectAuth>((resolve) => auth(resolve));
    this.auths.push(sent);
    this.connected = false;
    this.active = false;
    this.fire("connect_error", Object.assign(new Error(message), data === undefined ? {} : { data }));
  }

  push(event: "job_update" | "job_complete" | "job_error", payload: Event): void;
  push(event: "job_batch", payload: { events: Event[] }): void;
  push(event: string, payload: unknown): void {
    this.fire(event, payload);
  }

  pending(event?: keyof ClientToServerEvents): Sent[] {
    return this.sent.filter((s) => !s.answered && (event === undefined || s.event === event));
  }

  /** The one unanswered request of that kind; fails the test when there is not exactly one. */
  only(event: keyof ClientToServerEvents): Sent {
    const pending = this.pending(event);
    if (pending.length !== 1) {
      throw new Error(`expected one pending ${event}, found ${pending.length}: ${JSON.stringify(pending.map((p) => p.payload))}`);
    }
    return pending[0] as Sent;
  }

  private fire(event: string, ...args: unknown[]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) listener(...args);
  }

  private clearAcks(): void {
    for (const sent of this.sent) if (!sent.answered) sent.fail("socket has been disconnected");
  }
}

/** A transport factory that records the sockets it made. */
export function fakeTransport(): { sockets: FakeSocket[]; factory: (url: string | undefined, options: TransportOptions) => FakeSocket; last(): FakeSocket } {
  const sockets: FakeSocket[] = [];
  return {
    sockets,
    factory: (url, options) => {
      const socket = new FakeSocket(url, options);
      sockets.push(socket);
      return socket;
    },
    last() {
      const socket = sockets.at(-1);
      if (socket === undefined) throw new Error("no socket made yet");
      return socket;
    },
  };
}

const STEPS = ["initializing_streaming", "duplicate_check", "field_detection", "complete"];

export function ev(
  seq: number,
  options: { job?: string; epoch?: string; status?: JobStatus; step?: string; progress?: number | null } = {},
): Event {
  const status = options.status ?? "processing";
  const step = options.step ?? STEPS[Math.min(seq - 1, 2)] ?? "field_detection";
  return {
    job_id: options.job ?? "job-1",
    epoch: options.epoch ?? "e1",
    seq,
    status,
    step: status === "done" ? "complete" : step,
    message: `message ${seq}`,
    progress: options.progress === undefined ? Math.min(100, seq * 10) : options.progress,
    eta_seconds: null,
    timestamp: new Date(Date.UTC(2026, 10, 22, 10, 30, seq)).toISOString(),
    extra: { filename: "a.csv" },
    result: status === "done" ? { rows: 3 } : null,
    error: status === "error" ? { code: "failed", message: "broken" } : null,
  };
}

export function snap(
  seq: number,
  options: { job?: string; epoch?: string; status?: JobStatus; owner?: string | null } = {},
): Snapshot {
  const event = ev(Math.max(seq, 1), options);
  return {
    job_id: event.job_id,
    epoch: event.epoch,
    seq,
    owner: options.owner === undefined ? "user-1" : options.owner,
    status: event.status,
    step: event.step,
    message: event.message,
    progress: event.progress,
    eta_seconds: null,
    created_at: "2026-11-22T10:30:00.000Z",
    updated_at: event.timestamp,
    extra: event.extra,
    result: event.result,
    error: event.error,
    cancel_requested: false,
    steps: [
      {
        step: event.step,
        message: event.message,
        status: "in_progress",
        progress: event.progress,
        started_at: event.timestamp,
        updated_at: event.timestamp,
      },
    ],
  };
}

export async function flush(): Promise<void> {
  for (let i = 0; i < 20; i += 1) await Promise.resolve();
}
