/**
 * `tidings-client/compat/react`: the documents' hooks and modal, over the client of the
 * surrounding `JobClientProvider` — one connection and one store for them and for the idiomatic
 * hooks alike. Make that client with `createFileStatusClient` for `useFileStatusSocket` to hand
 * it its session token.
 */
import { useEffect, useId, useMemo, useRef } from "react";
import { useStore } from "zustand";

import type { TokenSource } from "../connection.js";
import { formatPercent } from "../format.js";
import type { JobRequest, ListedJob, Snapshot } from "../protocol.js";
import type { ConnectionState, ConnectionStatus } from "../store.js";
import { useJobClient } from "../react/context.js";
import { useJob, useJobs } from "../react/hooks.js";
import {
  fileStatusView,
  onJobEvent,
  setClientToken,
  toUploadProgress,
  type CompatEvents,
  type FileStatus,
  type FileStatusState,
  type UploadProgress,
} from "./index.js";

export * from "./index.js";

/** The file statuses of the provider's store, under the documents' names; with a selector, a slice. */
export function useFileStatusStore(): FileStatusState;
export function useFileStatusStore<T>(selector: (state: FileStatusState) => T): T;
export function useFileStatusStore<T>(selector?: (state: FileStatusState) => T): T | FileStatusState {
  return useStore(useJobClient().store, (state) => {
    const view = fileStatusView(state);
    return selector === undefined ? view : selector(view);
  });
}

/** What `emit` sends, and what it resolves with. */
export interface FileStatusEmits {
  subscribe: [JobRequest, void];
  unsubscribe: [JobRequest, void];
  cancel: [JobRequest, Snapshot];
  list_jobs: [Record<string, never>, ListedJob[]];
}

export interface FileStatusSocketOptions {
  /** Called on every (re)connect: a fresh token, where `sessionToken` may have expired. */
  getToken?: TokenSource;
}

export interface FileStatusSocketResult {
  isConnected: boolean;
  status: ConnectionStatus;
  /** Why the connection is not up (e.g. `rate_limited`, with a sentence to show); null once it is. */
  error: ConnectionState["error"];
  /** Sends one of the protocol's requests through the shared client. */
  emit<K extends keyof FileStatusEmits>(event: K, payload: FileStatusEmits[K][0]): Promise<FileStatusEmits[K][1]>;
  /** Listens for `file_progress` (an alias of `job_update`), `job_update`, `job_complete` or `job_error`. */
  on<K extends keyof CompatEvents>(event: K, handler: CompatEvents[K]): () => void;
  /** The user's files, oldest first. */
  files: FileStatus[];
}

/**
 * Follows every job of the user while `userId` is set, on the provider's connection, writing the
 * provider's store (so `useFileStatusStore` sees it). The token is read on every (re)connect: the
 * `getToken` option, else the `sessionToken` of the last render.
 */
export function useFileStatusSocket(
  userId: string | null | undefined,
  sessionToken: string | null | undefined,
  options: FileStatusSocketOptions = {},
): FileStatusSocketResult {
  const client = useJobClient();
  const watches = useRef(new Map<string, () => void>());

  useEffect(() => {
    const trying = client.status === "connecting" || client.status === "reconnecting";
    if (setClientToken(client, sessionToken, options.getToken) && trying) {
      client.disconnect(); // a new token cuts short a wait after a refused connection (not a rate_limited one's)
      client.connect();
    }
  }, [client, sessionToken, options.getToken]);

  useEffect(() => {
    if (!userId) return undefined;
    return client.followUser();
  }, [client, userId]);

  useEffect(() => {
    const held = watches.current;
    return () => {
      for (const stop of held.values()) stop();
      held.clear();
    };
  }, [client]);

  const status = useStore(client.store, (state) => state.connection.status);
  const error = useStore(client.store, (state) => state.connection.error);
  const files = useFileStatusStore((state) => state.getAllStatuses());

  return useMemo(() => {
    const requests: { [K in keyof FileStatusEmits]: (payload: FileStatusEmits[K][0]) => Promise<FileStatusEmits[K][1]> } = {
      subscribe: async ({ job_id }) => {
        if (!watches.current.has(job_id)) watches.current.set(job_id, client.subscribe(job_id));
      },
      unsubscribe: async ({ job_id }) => {
        watches.current.get(job_id)?.();
        watches.current.delete(job_id);
      },
      cancel: ({ job_id }) => client.cancel(job_id),
      list_jobs: () => client.listJobs(),
    };
    return {
      isConnected: status === "connected",
      status,
      error,
      emit: (event, payload) => requests[event](payload),
      on: (event, handler) => onJobEvent(client, event, handler),
      files,
    };
  }, [client, error, files, status]);
}

export interface UploadProgressResult {
  progress: UploadProgress | null;
  isComplete: boolean;
  isFailed: boolean;
  error: string | null;
}

/** One upload's progress (its upload id is its job id); nothing is watched for a null id. */
export function useUploadProgress(uploadId: string | null | undefined): UploadProgressResult {
  const entry = useJob(uploadId);
  return useMemo(() => {
    if (!uploadId) return { progress: null, isComplete: false, isFailed: false, error: null };
    const progress = toUploadProgress(uploadId, entry);
    return {
      progress,
      isComplete: progress.status === "completed",
      isFailed: progress.status === "failed",
      error: progress.error ?? null,
    };
  }, [entry, uploadId]);
}

export interface MultiUploadProgress {
  progressMap: Record<string, UploadProgress>;
  /** Mean progress, 0–100: a finished upload counts as 100. */
  overallPercentage: number;
  /** Every upload has finished, completed or failed (and there is at least one). */
  allCompleted: boolean;
  /** Every upload completed. */
  allSucceeded: boolean;
  failedCount: number;
}

const NO_IDS: readonly string[] = [];

/** Many uploads at once; nothing is watched while `uploadIds` is null. */
export function useMultiUploadProgress(uploadIds: readonly string[] | null): MultiUploadProgress {
  const { jobs, aggregate } = useJobs(uploadIds ?? NO_IDS);
  const key = (uploadIds ?? NO_IDS).join("\u0000");
  return useMemo(() => {
    const progressMap: Record<string, UploadProgress> = {};
    (key === "" ? [] : key.split("\u0000")).forEach((id, index) => {
      progressMap[id] = toUploadProgress(id, jobs[index]);
    });
    return {
      progressMap,
      overallPercentage: aggregate.percentage,
      allCompleted: aggregate.allSettled,
      allSucceeded: aggregate.allCompleted,
      failedCount: aggregate.failed,
    };
  }, [jobs, aggregate, key]);
}

export interface UploadProgressModalProps {
  uploadIds: readonly string[];
  /** Called by the close button, by Escape, and by the modal itself once every upload has completed. */
  onClose: () => void;
  title?: string;
  className?: string;
}

const STATUS_WORDS: Record<UploadProgress["status"], string> = {
  uploading: "in progress",
  completed: "completed",
  failed: "failed",
};

const FOCUSABLE = 'button:not([disabled]), [href], input:not([disabled]), select, textarea, [tabindex]:not([tabindex="-1"])';

/** Tab and Shift+Tab go round the dialog's own controls, as in a modal they must. */
function keepFocusIn(dialog: HTMLElement, event: { shiftKey: boolean; preventDefault(): void }): void {
  const focusable = [...dialog.querySelectorAll<HTMLElement>(FOCUSABLE)];
  const first = focusable[0];
  const last = focusable.at(-1);
  if (first === undefined || last === undefined) return;
  const active = document.activeElement;
  if (event.shiftKey && (active === first || active === dialog)) {
    event.preventDefault();
    last.focus();
  } else if (!event.shiftKey && (active === last || active === dialog)) {
    event.preventDefault();
    first.focus();
  }
}

/**
 * A dialog with one progress bar per upload and one overall. It closes itself once every upload
 * has completed; when one fails it stays open, with the reason, until closed. Focus moves into it
 * when it opens, Tab stays inside it, and focus goes back where it was when it closes.
 */
export function UploadProgressModal({ uploadIds, onClose, title = "Uploading files", className }: UploadProgressModalProps) {
  const { progressMap, overallPercentage, allCompleted, allSucceeded, failedCount } = useMultiUploadProgress(uploadIds);
  const titleId = useId();
  const dialog = useRef<HTMLDivElement>(null);
  const close = useRef(onClose);
  useEffect(() => {
    close.current = onClose;
  });

  useEffect(() => {
    const before = document.activeElement;
    dialog.current?.focus();
    return () => {
      if (before instanceof HTMLElement) before.focus();
    };
  }, []);

  useEffect(() => {
    if (allSucceeded) close.current();
  }, [allSucceeded]);

  const overall = Math.floor(overallPercentage);
  const summary = allCompleted
    ? failedCount === 0
      ? "All uploads completed."
      : `${failedCount} of ${uploadIds.length} ${uploadIds.length === 1 ? "upload" : "uploads"} failed.`
    : `${formatPercent(overallPercentage)} of ${uploadIds.length} ${uploadIds.length === 1 ? "upload" : "uploads"}`;
  return (
    <div
      ref={dialog}
      role="dialog"
      aria-modal="true"
      aria-labelledby={titleId}
      tabIndex={-1}
      className={className}
      data-tidings="upload-modal"
      onKeyDown={(event) => {
        if (event.key === "Escape") close.current();
        if (event.key === "Tab") keepFocusIn(event.currentTarget, event);
      }}
    >
      <h2 id={titleId}>{title}</h2>
      <div
        role="progressbar"
        aria-label="Overall progress"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={overall}
        data-tidings="bar"
      >
        <div data-tidings="fill" style={{ width: `${overall}%` }} />
      </div>
      <p role="status" aria-live="polite" data-tidings="summary">
        {summary}
      </p>
      <ul data-tidings="uploads">
        {uploadIds.map((id) => {
          const progress = progressMap[id] ?? toUploadProgress(id, undefined);
          const value = Math.floor(progress.progress_percentage);
          return (
            <li key={id} data-status={progress.status}>
              <div
                role="progressbar"
                aria-label={progress.filename}
                aria-valuemin={0}
                aria-valuemax={100}
                aria-valuenow={value}
                aria-valuetext={`${value}%, ${STATUS_WORDS[progress.status]}`}
                data-tidings="bar"
              >
                <div data-tidings="fill" style={{ width: `${value}%` }} />
              </div>
              <span data-tidings="filename">{progress.filename}</span>{" "}
              <span data-tidings="upload-status">{STATUS_WORDS[progress.status]}</span>
              {progress.error === undefined ? null : <span data-tidings="upload-error">: {progress.error}</span>}
            </li>
          );
        })}
      </ul>
      <button type="button" onClick={() => close.current()}>
        Close
      </button>
    </div>
  );
}
