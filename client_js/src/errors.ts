/**
 * The one error class of the package.
 *
 *   JobClientError
 *     code: ProtocolErrorCode   the server refused (invalid_request, forbidden, rate_limited, unavailable)
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

export function isJobClientError(value: unknown): value is JobClientError {
  return value instanceof JobClientError;
}
