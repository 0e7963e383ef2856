/** Reading acknowledgements: success or refusal, and which refusals mean "not now". */
import { JobClientError, type JobClientErrorCode } from "./errors.js";
import type { Ack, AckFailure } from "./protocol.js";

/** Refusals that say "not now" rather than "no": asked again after a pause, never reported. */
const TRANSIENT_CODES: ReadonlySet<JobClientErrorCode> = new Set(["rate_limited", "unavailable"]);

export function isFailure<T>(result: Ack<T>): result is AckFailure {
  return typeof result !== "object" || result === null || (result as { ok?: unknown }).ok !== true;
}

/** The error of a failed acknowledgement; no ack at all (or a malformed one) reads as unavailable. */
export function refusal(result: AckFailure | undefined, jobId?: string): JobClientError {
  const { code, message } = result?.error ?? {
    code: "unavailable",
    message: "The server answered without a result; try again.",
  };
  return new JobClientError(code, message, jobId === undefined ? undefined : { jobId });
}

export function isTransient(error: JobClientError): boolean {
  return TRANSIENT_CODES.has(error.code);
}
