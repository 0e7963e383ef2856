/**
 * The one error class of the package.
 *
 *   JobClientError
 *     code: ProtocolErrorCode   the server refused (invalid_request, forbidden, rate_limited, unavailable);
 *                               a connection refused rate_limited waits the server's retry_after
 *         | "unauthorized"      the server refused the connection (bad or expired token)
 *         | "timeout"           no acknowledgement in time
 *         | "disconnected"      the connection closed before the answer came
 *         | "connection_failed" the server could not be reached
 */
import type { ProtocolErrorCode } from "./protocol.js";

export type JobClientErrorCode =
  | ProtocolErrorCode
  | "unauthorized"
  | "timeout"
  | "disconnected"
  | "connection_failed";

export class JobClientError extends Error {
  override readonly name = "JobClientError";
  readonly code: JobClientErrorCode;
  readonly jobId: string | undefined;

  constructor(code: JobClientErrorCode, message: string, options?: { jobId?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.jobId = options?.jobId;
  }
}

/**
 * Seconds from a server's `retry_after` (Socket.IO) or `Retry-After` (HTTP), or null when it said
 * none the client can use (missing, not a number, negative).
 */
export function retryAfterSeconds(value: unknown): number | null {
  const seconds = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  return typeof seconds === "number" && Number.isFinite(seconds) && seconds >= 0 ? seconds : null;
}

/**
 * The server refuses credentials from this address for a while (too many wrong ones from it):
 * the sentence says so and when the client asks again, for `connection.error` to show as is.
 */
export function rateLimitedError(seconds: number | null, cause?: unknown): JobClientError {
  const when = seconds === null ? "shortly" : `in ${seconds} s`;
  return new JobClientError(
    "rate_limited",
    `The server refuses connections from this address for now (too many wrong credentials from it); trying again ${when}.`,
    { cause },
  );
}

export function isJobClientError(value: unknown): value is JobClientError {
  return value instanceof JobClientError;
}
