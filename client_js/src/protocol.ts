/**
 * The wire, as PROTOCOL.md writes it. Field names stay snake_case on purpose: these are the
 * exact objects the server sends, so a reader can hold this file next to the contract.
 */

/** A job's life: `queued` → `processing` → one of the terminal three. */
export type JobStatus = "queued" | "processing" | "done" | "error" | "cancelled";

/** The terminal statuses: once a job has one, it takes no more progress. */
export type TerminalStatus = "done" | "error" | "cancelled";

/** One entry of a job's timeline. */
export type StepStatus = "complete" | "in_progress" | "error";

/** The codes a failed acknowledgement carries. */
export type ProtocolErrorCode = "invalid_request" | "forbidden" | "rate_limited" | "unavailable";

/** What went wrong in a job (`{ code, message }`). Workers may use their own codes. */
export interface JobError {
  code: string;
  message: string;
}

/** Any JSON value, for `extra` and `result`. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };

/** One change of one job, numbered `seq` within its `epoch`. */
export interface Event {
  job_id: string;
  epoch: string;
  seq: number;
  status: JobStatus;
  step: string;
  message: string;
  progress: number | null;
  eta_seconds: number | null;
  /** UTC ISO-8601 with milliseconds and `Z`. */
  timestamp: string;
  /** Already merged by the server: replace, never merge. */
  extra: Record<string, JsonValue>;
  /** Set on `job_complete`. */
  result: JsonValue;
  /** Set on `job_error`. */
  error: JobError | null;
}

/** `Event` under a name that does not shadow the DOM's `Event`. */
export type JobEvent = Event;

/** One step of the timeline, in the order the steps began. */
export interface StepEntry {
  step: string;
  message: string;
  status: StepStatus;
  progress: number | null;
  started_at: string;
  updated_at: string;
}

/** The whole state of a job at its `seq`. */
export interface Snapshot {
  job_id: string;
  epoch: string;
  seq: number;
  owner: string | null;
  status: JobStatus;
  step: string;
  message: string;
  progress: number | null;
  eta_seconds: number | null;
  created_at: string;
  updated_at: string;
  extra: Record<string, JsonValue>;
  result: JsonValue;
  error: JobError | null;
  cancel_requested: boolean;
  steps: StepEntry[];
}

/**
 * A job as the lists give it (`list_jobs`, `GET /api/jobs`, `GET /api/jobs/recent`) and as
 * `GET /api/jobs/{id}` returns it: the Snapshot with the names the seed documents read a listed
 * job by on top (their `created_at` is the Snapshot's own).
 */
export interface ListedJob extends Snapshot {
  /** The job id, the same as `job_id`. */
  id: string;
  /** `extra.type` when it is text, else `"job"`; an upload's job is `"upload"`. */
  type: string;
  /** `extra.filename` when it is text, else null. */
  filename: string | null;
}

/** `job_batch`: several events in one frame, in order. */
export interface EventBatch {
  events: Event[];
}

export interface SubscribeRequest {
  job_id: string;
  /** Given together with `since`, or not at all. */
  epoch?: string;
  since?: number;
}

export interface JobRequest {
  job_id: string;
}

/** `list_jobs` takes an empty object. */
export type ListJobsRequest = Record<string, never>;

export interface AckFailure {
  ok: false;
  error: { code: ProtocolErrorCode; message: string };
}

export interface SubscribeResult {
  ok: true;
  /** Null while the job does not exist yet. */
  job: Snapshot | null;
  events: Event[];
  recovered: boolean;
}

export interface UnsubscribeResult {
  ok: true;
}

export interface CancelResult {
  ok: true;
  job: Snapshot;
}

export interface ListJobsResult {
  ok: true;
  /** The caller's jobs, newest first. */
  jobs: ListedJob[];
}

export type Ack<T> = T | AckFailure;

/** What the server emits (the event map for `socket.io-client`). */
export interface ServerToClientEvents {
  job_update: (event: Event) => void;
  job_complete: (event: Event) => void;
  job_error: (event: Event) => void;
  job_batch: (batch: EventBatch) => void;
}

/** What the client emits; every one is answered through the acknowledgement. */
export interface ClientToServerEvents {
  subscribe: (request: SubscribeRequest, ack: (result: Ack<SubscribeResult>) => void) => void;
  unsubscribe: (request: JobRequest, ack: (result: Ack<UnsubscribeResult>) => void) => void;
  cancel: (request: JobRequest, ack: (result: Ack<CancelResult>) => void) => void;
  list_jobs: (request: ListJobsRequest, ack: (result: Ack<ListJobsResult>) => void) => void;
}

/** The `auth` object sent at connect. */
export interface ConnectAuth {
  token?: string;
  user_id?: string;
}

export const TERMINAL_STATUSES: readonly TerminalStatus[] = ["done", "error", "cancelled"];

export function isTerminal(status: string | null | undefined): status is TerminalStatus {
  return status === "done" || status === "error" || status === "cancelled";
}

/** Job ids the server accepts: 1–128 characters of `A-Za-z0-9_.:-`. */
export const JOB_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
