/**
 * What the core asks of a transport. Two implement it: `SocketLink` (Socket.IO, the default) and
 * `EventStreamLink` (Server-Sent Events and the HTTP API, for when Socket.IO cannot connect).
 * Both answer the requests of `ClientToServerEvents` with the acknowledgements of the contract,
 * so the core, the subscription queue and discovery do not know which one carries them.
 */
import type { JobClientError } from "./errors.js";
import type { ClientToServerEvents } from "./protocol.js";
import type { ConnectionStatus, TransportKind } from "./store.js";

export type RequestOf<E extends keyof ClientToServerEvents> = Parameters<ClientToServerEvents[E]>[0];
export type ResultOf<E extends keyof ClientToServerEvents> = Parameters<Parameters<ClientToServerEvents[E]>[1]>[0];

export interface Link {
  readonly kind: TransportKind;
  /** Requests can go out now. */
  readonly connected: boolean;
  /** Opens the link, unless it is open or opening; `opened` says when it is. */
  connect(): void;
  /** Closes it; `connect` opens it again. */
  disconnect(): void;
  /** Closes it for good and lets go of every listener. */
  destroy(): void;
  /** One request; resolves with the server's acknowledgement, rejects with a JobClientError. */
  request<E extends keyof ClientToServerEvents>(event: E, payload: RequestOf<E>): Promise<ResultOf<E>>;
  /** Whether every job of the user is wanted (Socket.IO's user room carries them anyway). */
  follow(on: boolean): void;
}

/** What a link tells the core. */
export interface LinkHooks {
  /** Open (again): every watched job is to be caught up, the user's jobs listed. */
  opened(): void;
  /** Lost: nothing in flight will be answered. */
  closed(): void;
  /** A server event: `job_update`, `job_complete`, `job_error`, or each event of a `job_batch`. */
  event(data: unknown): void;
  /** A snapshot from the server outside any request (an event stream's opening). */
  snapshot(data: unknown): void;
  /** The status changed; `error` null clears the last one, undefined keeps it. */
  status(status: ConnectionStatus, error: JobClientError | null | undefined, attempts: number): void;
  error(error: JobClientError): void;
}
