/**
 * The Socket.IO connection: it makes the socket, asks for a fresh token on every (re)connect,
 * reconnects with backoff where socket.io-client gives up (a refused handshake, a socket the server
 * closed), and turns acknowledgements into promises. What the connection carries is the core's.
 *
 * A connect refused `rate_limited` (too many wrong credentials from this address) names the
 * seconds until the server listens again: no attempt goes out before they have passed, not even
 * one `connect()` asks for, since the server would refuse it and keep the budget empty.
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";

import type { Backoff } from "./backoff.js";
import { Timer } from "./backoff.js";
import { JobClientError, rateLimitedError, retryAfterSeconds, type JobClientErrorCode } from "./errors.js";
import type { Link, LinkHooks, RequestOf, ResultOf } from "./link.js";
import type { ClientToServerEvents, ConnectAuth, EventBatch, ServerToClientEvents } from "./protocol.js";
import type { ConnectionStatus } from "./store.js";

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

export interface SocketLinkOptions {
  url: string | undefined;
  path: string | undefined;
  getToken: TokenSource | undefined;
  userId: string | undefined;
  ackTimeout: number;
  reconnectionDelay: number;
  reconnectionDelayMax: number;
  randomizationFactor: number;
  transports: ("websocket" | "polling" | "webtransport")[] | undefined;
  socketOptions: TransportOptions | undefined;
  transport: TransportFactory | undefined;
  backoff: Backoff;
  /** The client's clock (ms). */
  now: () => number;
}

const SERVER_EVENTS = ["job_update", "job_complete", "job_error"] as const;

const defaultTransport: TransportFactory = (url, options) => {
  const socket: TypedSocket = url === undefined ? io(options) : io(url, options);
  return socket;
};

/** `auth` for the handshake: a fresh token when there is a source, else the open-mode user id. */
export async function connectAuth(
  getToken: TokenSource | undefined,
  userId: string | undefined,
  onError: (error: JobClientError) => void,
): Promise<ConnectAuth> {
  const auth: ConnectAuth = {};
  if (getToken !== undefined) {
    try {
      const token = await getToken();
      if (typeof token === "string" && token !== "") auth.token = token;
    } catch (cause) {
      onError(new JobClientError("unauthorized", "getToken failed", { cause }));
    }
  }
  if (auth.token === undefined && userId !== undefined) auth.user_id = userId;
  return auth;
}

/**
 * The origin of a page on another origin than the server at `url`, or null (not a browser page,
 * or the same origin): only such a page can be refused by the server's CORS rules.
 */
function crossOrigin(url: string | undefined): { page: string; server: string } | null {
  if (url === undefined || typeof location === "undefined" || typeof fetch === "undefined") return null;
  try {
    const server = new URL(url, location.href).origin;
    return server === location.origin ? null : { page: location.origin, server };
  } catch {
    return null;
  }
}

/**
 * Whether `server` answers this page, but not across origins: a `cors` request fails while an
 * opaque `no-cors` one to the same address gets through. (A browser says no more than
 * "xhr poll error" about a refused origin.)
 */
async function refusesOrigin(server: string): Promise<boolean> {
  const probe = `${server}/healthz`;
  try {
    await fetch(probe, { mode: "cors", cache: "no-store" });
    return false;
  } catch {
    // refused, or not there at all: the opaque request tells which
  }
  try {
    await fetch(probe, { mode: "no-cors", cache: "no-store" });
    return true;
  } catch {
    return false;
  }
}

/** The seconds a `rate_limited` refusal asks the client to wait (its `data.retry_after`). */
function retryAfterOf(error: Error & { data?: unknown }): number | null {
  return retryAfterSeconds((error.data as { retry_after?: unknown } | null | undefined)?.retry_after);
}

export class SocketLink implements Link {
  readonly kind = "socket.io";
  private socket: TransportSocket | null = null;
  private closedByUser = false;
  private destroyed = false;
  private status: ConnectionStatus = "disconnected";
  /** Failed attempts since the last successful connect. */
  private attempts = 0;
  private readonly reconnectTimer = new Timer();
  /** Null until a failed connect from another origin was looked into; then whether CORS refused it. */
  private originRefused: boolean | null = null;
  /** Client clock before which the server refuses a connect (its last `rate_limited`'s `retry_after`). */
  private refusedUntil = 0;

  constructor(
    private readonly options: SocketLinkOptions,
    private readonly hooks: LinkHooks,
  ) {}

  get connected(): boolean {
    return this.socket?.connected ?? false;
  }

  connect(): void {
    if (this.destroyed) return;
    this.closedByUser = false;
    const socket = this.ensureSocket();
    if (socket.connected || socket.active) return;
    this.setStatus(this.status === "disconnected" ? "connecting" : this.status);
    if (this.refusedUntil > this.options.now()) {
      this.scheduleReconnect();
      return;
    }
    this.reconnectTimer.stop();
    socket.connect();
  }

  disconnect(): void {
    this.closedByUser = true;
    this.reconnectTimer.stop();
    this.socket?.disconnect();
    this.attempts = 0;
    this.setStatus("disconnected");
  }

  destroy(): void {
    if (this.destroyed) return;
    this.disconnect();
    this.destroyed = true;
    if (this.socket !== null) {
      this.listen(this.socket, "off");
      this.socket = null;
    }
  }

  follow(): void {
    // The server puts every socket with a user in its user room: nothing to ask for.
  }

  /** Emits with an acknowledgement; a timeout or a lost connection rejects with a JobClientError. */
  request<E extends keyof ClientToServerEvents>(event: E, payload: RequestOf<E>): Promise<ResultOf<E>> {
    if (this.destroyed) {
      return Promise.reject(new JobClientError("disconnected", "The client was destroyed."));
    }
    const socket = this.ensureSocket();
    if (!socket.connected && !socket.active) this.connect();
    return new Promise((resolve, reject) => {
      socket.timeout(this.options.ackTimeout).emit(event, payload, (error: Error | null, result: ResultOf<E>) => {
        if (error) {
          const code: JobClientErrorCode = /disconnected/.test(error.message) ? "disconnected" : "timeout";
          reject(new JobClientError(code, error.message, { cause: error }));
        } else {
          resolve(result);
        }
      });
    });
  }

  private setStatus(status: ConnectionStatus, error?: JobClientError | null): void {
    this.status = status;
    this.hooks.status(status, error, this.attempts);
  }

  private ensureSocket(): TransportSocket {
    if (this.socket !== null) return this.socket;
    const { options } = this;
    const transport = options.transport ?? defaultTransport;
    const socket = transport(options.url, {
      forceNew: true,
      autoConnect: false,
      transports: options.transports ?? ["websocket", "polling"],
      tryAllTransports: true,
      reconnection: true,
      reconnectionDelay: options.reconnectionDelay,
      reconnectionDelayMax: options.reconnectionDelayMax,
      randomizationFactor: options.randomizationFactor,
      ...(options.path === undefined ? {} : { path: options.path }),
      ...options.socketOptions,
      auth: (callback: (data: object) => void) => {
        void connectAuth(options.getToken, options.userId, (error) => this.hooks.error(error)).then(callback);
      },
    });
    this.listen(socket, "on");
    this.socket = socket;
    return socket;
  }

  /** Adds (or removes, by the very same handlers) every listener the link keeps on a socket. */
  private listen(target: TransportSocket, method: "on" | "off"): void {
    target[method]("connect", this.onConnect);
    target[method]("disconnect", this.onDisconnect);
    target[method]("connect_error", this.onConnectError);
    for (const name of SERVER_EVENTS) target[method](name, this.hooks.event);
    target[method]("job_batch", this.onBatch);
  }

  private readonly onConnect = (): void => {
    this.reconnectTimer.stop();
    this.attempts = 0;
    this.setStatus("connected", null);
    this.hooks.opened();
  };

  private readonly onDisconnect = (): void => {
    this.hooks.closed();
    if (this.closedByUser || this.destroyed) {
      this.setStatus("disconnected");
      return;
    }
    this.setStatus("reconnecting");
    // The manager reconnects by itself after a transport failure, but not after the server
    // closed the socket (an expired token): that one is ours.
    if (this.socket !== null && !this.socket.active) this.scheduleReconnect();
  };

  private readonly onConnectError = (error: Error & { data?: unknown }): void => {
    this.attempts += 1;
    if (error.message === "rate_limited") this.refusedUntil = this.options.now() + (retryAfterOf(error) ?? 0) * 1_000;
    // Refused by the server: socket.io-client gives up, so ask again (with a fresh token).
    if (this.socket !== null && !this.socket.active && !this.closedByUser && !this.destroyed) {
      this.scheduleReconnect();
    }
    const origins = crossOrigin(this.options.url);
    const serverRefused = error.message === "unauthorized" || error.message === "rate_limited";
    if (this.originRefused === null && origins !== null && !serverRefused) {
      // Once: is this page's origin one the server's TIDINGS_CORS_ORIGINS leaves out?
      this.originRefused = false;
      void refusesOrigin(origins.server).then((refused) => {
        this.originRefused = refused;
        if (!this.destroyed) this.report(error);
      });
      return;
    }
    this.report(error);
  };

  private report(error: Error & { data?: unknown }): void {
    const failure = this.failureOf(error);
    this.setStatus("reconnecting", failure);
    this.hooks.error(failure);
  }

  /** What a failed connect means to the application: a code, and a sentence where one helps. */
  private failureOf(error: Error & { data?: unknown }): JobClientError {
    if (error.message === "unauthorized") return new JobClientError("unauthorized", error.message, { cause: error });
    if (error.message === "rate_limited") return rateLimitedError(retryAfterOf(error), error);
    const origins = crossOrigin(this.options.url);
    if (this.originRefused === true && origins !== null) {
      return new JobClientError(
        "connection_failed",
        `The server at ${origins.server} does not accept pages from ${origins.page}: add ${origins.page} ` +
          `to TIDINGS_CORS_ORIGINS on the server (the browser said "${error.message}").`,
        { cause: error },
      );
    }
    return new JobClientError("connection_failed", error.message, { cause: error });
  }

  private readonly onBatch = (batch: EventBatch): void => {
    if (batch === null || typeof batch !== "object" || !Array.isArray(batch.events)) return;
    for (const event of batch.events) this.hooks.event(event);
  };

  /** Asks again after the backoff, which starts once the server's `retry_after` (if any) is over. */
  private scheduleReconnect(): void {
    const held = Math.max(0, this.refusedUntil - this.options.now());
    this.reconnectTimer.start(held + this.options.backoff(Math.max(0, this.attempts - 1)), () => {
      const socket = this.socket;
      if (!this.closedByUser && !this.destroyed && socket !== null && !socket.connected) socket.connect();
    });
  }
}
