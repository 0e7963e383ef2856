/**
 * The per-client state: one vanilla Zustand store holding, per job, the status a file-status UI
 * shows, the step timeline and the last server snapshot, plus the connection status.
 *
 * The client writes server state through `applyEvent` and `replaceSnapshot` (only ever in seq
 * order); an application may drive a job by hand with `addStep`, `updateProgress`,
 * `markComplete` and `setError` (an upload before the server knows the job, say). The store knows
 * nothing of Socket.IO.
 */
import { createStore, type StoreApi } from "zustand/vanilla";

import type { JobClientError, JobClientErrorCode } from "./errors.js";
import {
  isTerminal,
  type Event,
  type JobError,
  type JobStatus,
  type JsonValue,
  type Snapshot,
  type StepEntry,
} from "./protocol.js";
import { advanceTimeline, settleTimeline } from "./timeline.js";

/** A job's status as the store shows it: `pending` until the server knows the job. */
export type EntryStatus = "pending" | JobStatus;

/**
 * Where the client's subscription to a job stands: `none` (not watched by the client),
 * `pending` (asked), `active`, `forbidden` (the server refused: no such job for this caller),
 * `failed` (another error; the client retries where that can help).
 */
export type SubscriptionState = "none" | "pending" | "active" | "forbidden" | "failed";

export interface JobEntry {
  jobId: string;
  status: EntryStatus;
  step: string | null;
  message: string | null;
  /** 0–100, or null while unknown. Never goes backwards. */
  progress: number | null;
  etaSeconds: number | null;
  /** `extra.filename` when the worker set it, or the one given to `addStep`. */
  filename: string | null;
  extra: Record<string, JsonValue>;
  result: JsonValue;
  /** Why the job failed, or why it cannot be watched (`code: "forbidden"`). */
  error: JobError | null;
  /** The timeline, in the order the steps began. */
  steps: StepEntry[];
  /** The server's state of the job as of `seq`, kept current event by event. */
  snapshot: Snapshot | null;
  epoch: string | null;
  /** The last applied seq (0 before any). */
  seq: number;
  subscription: SubscriptionState;
  cancelRequested: boolean;
  /** Server time of the last change (ISO-8601). */
  updatedAt: string | null;
  /** Client clock (ms since 1970) when the last event or snapshot was applied: "updated 3 s ago". */
  lastEventAt: number | null;
}

export type ConnectionStatus = "connecting" | "connected" | "reconnecting" | "disconnected";

/** What carries the client: Socket.IO, or the Server-Sent Events it falls back to. */
export type TransportKind = "socket.io" | "sse";

export interface ConnectionState {
  status: ConnectionStatus;
  /** The last connection error, cleared on connect. */
  error: { code: JobClientErrorCode; message: string } | null;
  /** Failed attempts since the last successful connect. */
  attempts: number;
  transport: TransportKind;
}

export interface Aggregate {
  total: number;
  /** Mean progress, 0–100: a finished job (done, error, cancelled) counts as 100. */
  percentage: number;
  counts: Record<EntryStatus, number>;
  /** pending + queued + processing. */
  active: number;
  /** done. */
  completed: number;
  /** error + cancelled. */
  failed: number;
  /** Every job done (and there is at least one). */
  allCompleted: boolean;
  /** Every job finished, however (and there is at least one). */
  allSettled: boolean;
}

export interface StepInput {
  step: string;
  message?: string;
  progress?: number | null;
  filename?: string;
  /** ISO-8601; now when left out. */
  at?: string;
}

export interface ProgressInput {
  progress?: number | null;
  message?: string;
  step?: string;
  etaSeconds?: number | null;
}

export interface JobStoreState {
  jobs: Record<string, JobEntry>;
  /** Job ids in the order the store first saw them. */
  order: string[];
  connection: ConnectionState;

  addStep(jobId: string, step: StepInput): void;
  updateProgress(jobId: string, update: ProgressInput): void;
  markComplete(jobId: string, result?: JsonValue): void;
  setError(jobId: string, error: JobError | string, status?: "error" | "cancelled"): void;
  clearStatus(jobId: string): void;
  clearAll(): void;

  getStatus(jobId: string): JobEntry | undefined;
  getAllStatuses(): JobEntry[];
  /** Jobs not finished yet (pending, queued, processing). */
  getActiveFiles(): JobEntry[];
  /** Jobs done. */
  getCompletedFiles(): JobEntry[];
  /** Jobs that failed or were cancelled. */
  getFailedFiles(): JobEntry[];
  /** Totals for the given jobs, or for every job in the store. */
  getAggregate(jobIds?: readonly string[]): Aggregate;

  /** Used by the client: apply one event, already checked to be next in order. */
  applyEvent(event: Event, at: number): void;
  /** Used by the client: replace the server state of a job (null: the job does not exist yet). */
  replaceSnapshot(jobId: string, snapshot: Snapshot | null, at: number): void;
  /**
   * Used by the client: record where the subscription stands. Only `pending` (a watch begins)
   * adds a job the store does not hold; the others change an entry that is there.
   */
  setSubscription(jobId: string, state: SubscriptionState, error?: JobClientError | JobError): void;
  /** Used by the client: the server accepted a cancel request. Adds no entry. */
  setCancelRequested(jobId: string, requested: boolean): void;
  /** Used by the client. */
  setConnection(connection: Partial<ConnectionState>): void;
}

export type JobStore = StoreApi<JobStoreState>;

export function emptyEntry(jobId: string): JobEntry {
  return {
    jobId,
    status: "pending",
    step: null,
    message: null,
    progress: null,
    etaSeconds: null,
    filename: null,
    extra: {},
    result: null,
    error: null,
    steps: [],
    snapshot: null,
    epoch: null,
    seq: 0,
    subscription: "none",
    cancelRequested: false,
    updatedAt: null,
    lastEventAt: null,
  };
}

const EMPTY_COUNTS: Record<EntryStatus, number> = {
  pending: 0,
  queued: 0,
  processing: 0,
  done: 0,
  error: 0,
  cancelled: 0,
};

/** Totals for many jobs at once; a job not in the store yet counts as pending at 0 %. */
export function aggregate(entries: readonly (JobEntry | undefined)[]): Aggregate {
  const counts = { ...EMPTY_COUNTS };
  let sum = 0;
  for (const entry of entries) {
    const status = entry?.status ?? "pending";
    counts[status] += 1;
    sum += isTerminal(status) ? 100 : clampProgress(entry?.progress ?? 0);
  }
  const total = entries.length;
  const completed = counts.done;
  const failed = counts.error + counts.cancelled;
  return {
    total,
    percentage: total === 0 ? 0 : sum / total,
    counts,
    active: counts.pending + counts.queued + counts.processing,
    completed,
    failed,
    allCompleted: total > 0 && completed === total,
    allSettled: total > 0 && completed + failed === total,
  };
}

function clampProgress(value: number): number {
  return Math.min(100, Math.max(0, value));
}

function filenameOf(extra: Record<string, JsonValue>, fallback: string | null): string | null {
  const name = extra["filename"];
  return typeof name === "string" ? name : fallback;
}

function fromSnapshot(entry: JobEntry, snapshot: Snapshot, at: number | null): JobEntry {
  return {
    ...entry,
    status: snapshot.status,
    step: snapshot.step,
    message: snapshot.message,
    progress: snapshot.progress,
    etaSeconds: snapshot.eta_seconds,
    filename: filenameOf(snapshot.extra, entry.filename),
    extra: snapshot.extra,
    result: snapshot.result,
    error: snapshot.error,
    steps: snapshot.steps,
    snapshot,
    epoch: snapshot.epoch,
    seq: snapshot.seq,
    cancelRequested: snapshot.cancel_requested,
    updatedAt: snapshot.updated_at,
    lastEventAt: at,
  };
}

function withEvent(entry: JobEntry, event: Event, at: number): JobEntry {
  const sameEpoch = entry.epoch === event.epoch;
  const steps = advanceTimeline(sameEpoch ? entry.steps : [], sameEpoch ? entry.step : null, event);
  const previous = sameEpoch ? entry.snapshot : null;
  const snapshot: Snapshot = {
    job_id: event.job_id,
    epoch: event.epoch,
    seq: event.seq,
    owner: previous?.owner ?? null,
    status: event.status,
    step: event.step,
    message: event.message,
    progress: event.progress,
    eta_seconds: event.eta_seconds,
    created_at: previous?.created_at ?? event.timestamp,
    updated_at: event.timestamp,
    extra: event.extra,
    result: event.result,
    error: event.error,
    cancel_requested: (previous?.cancel_requested ?? false) || event.status === "cancelled",
    steps,
  };
  return {
    ...fromSnapshot(entry, snapshot, at),
    cancelRequested: snapshot.cancel_requested || entry.cancelRequested,
  };
}

function nowIso(): string {
  return new Date().toISOString();
}

export interface JobStoreInit {
  /**
   * Jobs as the server had them when the page was made (`GET /api/jobs`, say): the first render,
   * on the server and in the browser alike, shows them filled, and a client watching them resumes
   * from their `(epoch, seq)`. `lastEventAt` stays null until the client applies something.
   */
  snapshots?: readonly Snapshot[];
}

/** A new store. Each client has its own; there is no global one. */
export function createJobStore(init: JobStoreInit = {}): JobStore {
  const jobs: Record<string, JobEntry> = {};
  for (const snapshot of init.snapshots ?? []) jobs[snapshot.job_id] = fromSnapshot(emptyEntry(snapshot.job_id), snapshot, null);
  return createStore<JobStoreState>()((set, get) => {
    /**
     * Replace one entry and keep `order`. A missing entry is created only when `create` holds:
     * bookkeeping about a job (its subscription, a cancel request) must not bring back a job the
     * application cleared, as a `pending` one that would never settle.
     */
    const update = (jobId: string, change: (entry: JobEntry) => JobEntry, create = true): void => {
      set((state) => {
        const current = state.jobs[jobId];
        if (current === undefined && !create) return state;
        const next = change(current ?? emptyEntry(jobId));
        if (next === current) return state;
        return {
          jobs: { ...state.jobs, [jobId]: next },
          order: current === undefined ? [...state.order, jobId] : state.order,
        };
      });
    };

    return {
      jobs,
      order: Object.keys(jobs),
      connection: { status: "disconnected", error: null, attempts: 0, transport: "socket.io" },

      addStep(jobId, input) {
        update(jobId, (entry) => {
          const at = input.at ?? nowIso();
          const progress = maxProgress(entry.progress, input.progress);
          const status: EntryStatus = isTerminal(entry.status) ? entry.status : "processing";
          const message = input.message ?? entry.message ?? input.step;
          return {
            ...entry,
            status,
            step: input.step,
            message,
            progress,
            filename: input.filename ?? entry.filename,
            steps: advanceTimeline(entry.steps, entry.step, {
              step: input.step,
              message,
              progress,
              status,
              timestamp: at,
            }),
            updatedAt: at,
          };
        });
      },

      updateProgress(jobId, input) {
        if (input.step !== undefined && input.step !== get().jobs[jobId]?.step) {
          get().addStep(jobId, {
            step: input.step,
            ...(input.message === undefined ? {} : { message: input.message }),
            ...(input.progress === undefined ? {} : { progress: input.progress }),
          });
          if (input.etaSeconds !== undefined) {
            update(jobId, (entry) => ({ ...entry, etaSeconds: input.etaSeconds ?? null }));
          }
          return;
        }
        update(jobId, (entry) => {
          const at = nowIso();
          const progress = maxProgress(entry.progress, input.progress);
          const message = input.message ?? entry.message;
          const steps = entry.steps.slice();
          const last = steps.length - 1;
          const tail = steps[last];
          if (tail !== undefined) {
            steps[last] = { ...tail, progress, message: message ?? tail.message, updated_at: at };
          }
          return {
            ...entry,
            status: entry.status === "pending" || entry.status === "queued" ? "processing" : entry.status,
            progress,
            message,
            etaSeconds: input.etaSeconds === undefined ? entry.etaSeconds : input.etaSeconds,
            steps,
            updatedAt: at,
          };
        });
      },

      markComplete(jobId, result = null) {
        update(jobId, (entry) => ({
          ...entry,
          status: "done",
          progress: 100,
          etaSeconds: null,
          result,
          error: null,
          steps: settleTimeline(entry.steps.slice(), "done"),
          updatedAt: nowIso(),
        }));
      },

      setError(jobId, error, status = "error") {
        const info = typeof error === "string" ? { code: "failed", message: error } : error;
        update(jobId, (entry) => {
          // A finished job stays as it finished, as the server keeps it: a late failure (of the
          // upload, say) must not turn a done file into a failed one.
          if (isTerminal(entry.status)) return entry;
          return {
            ...entry,
            status,
            etaSeconds: null,
            error: { code: info.code, message: info.message },
            steps: settleTimeline(entry.steps.slice(), status),
            updatedAt: nowIso(),
          };
        });
      },

      clearStatus(jobId) {
        set((state) => {
          if (!(jobId in state.jobs)) return state;
          const jobs = { ...state.jobs };
          delete jobs[jobId];
          return { jobs, order: state.order.filter((id) => id !== jobId) };
        });
      },

      clearAll() {
        set({ jobs: {}, order: [] });
      },

      getStatus(jobId) {
        return get().jobs[jobId];
      },

      getAllStatuses() {
        const { jobs, order } = get();
        return order.map((id) => jobs[id] as JobEntry);
      },

      getActiveFiles() {
        return get()
          .getAllStatuses()
          .filter((entry) => !isTerminal(entry.status));
      },

      getCompletedFiles() {
        return get()
          .getAllStatuses()
          .filter((entry) => entry.status === "done");
      },

      getFailedFiles() {
        return get()
          .getAllStatuses()
          .filter((entry) => entry.status === "error" || entry.status === "cancelled");
      },

      getAggregate(jobIds) {
        const { jobs } = get();
        return aggregate(jobIds === undefined ? get().getAllStatuses() : jobIds.map((id) => jobs[id]));
      },

      applyEvent(event, at) {
        update(event.job_id, (entry) => withEvent(entry, event, at));
      },

      replaceSnapshot(jobId, snapshot, at) {
        update(jobId, (entry) => {
          if (snapshot !== null) return fromSnapshot(entry, snapshot, at);
          if (entry.snapshot === null) return entry;
          // The server lost the job: show it as not started rather than as it was.
          return { ...emptyEntry(jobId), filename: entry.filename, subscription: entry.subscription };
        });
      },

      setSubscription(jobId, subscription, error) {
        // Only the start of a watch makes an entry; everything after it shows on the one it made,
        // or stays away if the application has cleared the job since.
        update(jobId, (entry) => {
          if (subscription === "forbidden" && error !== undefined) {
            return {
              ...entry,
              subscription,
              status: "error",
              error: { code: error.code, message: error.message },
            };
          }
          if (subscription === "active" && entry.snapshot === null && entry.error?.code === "forbidden") {
            // Refused before (an older token, say), allowed now.
            return { ...entry, subscription, status: "pending", error: null };
          }
          if (entry.subscription === subscription) return entry;
          return { ...entry, subscription };
        }, subscription === "pending");
      },

      setCancelRequested(jobId, requested) {
        update(
          jobId,
          (entry) => (entry.cancelRequested === requested ? entry : { ...entry, cancelRequested: requested }),
          false,
        );
      },

      setConnection(connection) {
        set((state) => ({ connection: { ...state.connection, ...connection } }));
      },
    };
  });
}

function maxProgress(current: number | null, next: number | null | undefined): number | null {
  if (next === undefined || next === null) return current;
  const value = clampProgress(next);
  return current === null || value > current ? value : current;
}
