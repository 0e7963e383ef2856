import { useContext, useEffect, useMemo, useRef, useState } from "react";
import { useStore } from "zustand";
import { useShallow } from "zustand/react/shallow";

import { createJobClient, type JobClient, type JobClientOptions } from "../client.js";
import { JobClientError } from "../errors.js";
import type { Snapshot } from "../protocol.js";
import {
  aggregate,
  createJobStore,
  type Aggregate,
  type ConnectionState,
  type ConnectionStatus,
  type JobEntry,
  type JobStoreState,
} from "../store.js";
import { JobClientContext, useJobClient } from "./context.js";

/** Any slice of the client's store. The selector must return a stable value (zustand v5). */
export function useJobStore<T>(selector: (state: JobStoreState) => T): T {
  return useStore(useJobClient().store, selector);
}

/**
 * Watches one job while the component is mounted and returns its entry (or what the selector
 * picks from it). `undefined` until the store has heard of the job; nothing is watched for a
 * null id.
 */
export function useJob(jobId: string | null | undefined): JobEntry | undefined;
export function useJob<T>(jobId: string | null | undefined, selector: (entry: JobEntry | undefined) => T): T;
export function useJob<T>(
  jobId: string | null | undefined,
  selector?: (entry: JobEntry | undefined) => T,
): T | JobEntry | undefined {
  const client = useJobClient();
  useEffect(() => {
    if (!jobId) return undefined;
    return client.subscribe(jobId);
  }, [client, jobId]);
  return useStore(client.store, (state) => {
    const entry = jobId ? state.jobs[jobId] : undefined;
    return selector === undefined ? entry : selector(entry);
  });
}

export interface JobsView {
  /** In the order of the ids given; `undefined` for a job not heard of yet. */
  jobs: (JobEntry | undefined)[];
  aggregate: Aggregate;
}

/** Watches many jobs and sums them up (overall percentage, counts by status, all completed). */
export function useJobs(jobIds: readonly string[]): JobsView {
  const client = useJobClient();
  const key = jobIds.join("\u0000");
  const ids = useMemo(() => (key === "" ? [] : key.split("\u0000")), [key]);
  useEffect(() => {
    const stops = ids.map((id) => client.subscribe(id));
    return () => {
      for (const stop of stops) stop();
    };
  }, [client, ids]);
  const jobs = useStore(
    client.store,
    useShallow((state: JobStoreState) => ids.map((id) => state.jobs[id])),
  );
  return useMemo(() => ({ jobs, aggregate: aggregate(jobs) }), [jobs]);
}

/** `connecting`, `connected`, `reconnecting` or `disconnected`. */
export function useConnectionStatus(): ConnectionStatus {
  return useStore(useJobClient().store, (state) => state.connection.status);
}

export interface FileStatusSocketOptions extends Omit<JobClientOptions, "userId" | "getToken" | "store"> {
  /** The user's jobs as the server rendered the page with them: the first render shows them filled. */
  initialJobs?: readonly Snapshot[];
}

export interface FileStatusSocket {
  /** Every job of the user, oldest first. */
  files: JobEntry[];
  activeFiles: JobEntry[];
  completedFiles: JobEntry[];
  failedFiles: JobEntry[];
  aggregate: Aggregate;
  status: ConnectionStatus;
  /** Why the connection is not up (e.g. `rate_limited`, with a sentence to show); null once it is. */
  error: ConnectionState["error"];
  cancel(jobId: string): Promise<Snapshot>;
  clearStatus(jobId: string): void;
  /** The connection this hook owns; null until mounted (and during server rendering). */
  client: JobClient | null;
}

/**
 * Follows every job of one user through the user room, on a connection of its own (made on mount,
 * closed on unmount). The token is read on every (re)connect, so pass the current one each render;
 * a new token also cuts short a wait after a refused connection (not the wait of a `rate_limited`
 * refusal: the server would refuse any token before it is over). The server URL comes from
 * `options.url`, else from a surrounding `JobClientProvider`'s client, else the page's origin.
 */
export function useFileStatusSocket(
  userId: string | null | undefined,
  sessionToken: string | null | undefined,
  options: FileStatusSocketOptions = {},
): FileStatusSocket {
  const outer = useContext(JobClientContext);
  const url = options.url ?? outer?.url;
  const [store] = useState(() => createJobStore({ snapshots: options.initialJobs ?? [] }));
  const [client, setClient] = useState<JobClient | null>(null);
  const token = useRef(sessionToken);
  const settings = useRef(options);

  useEffect(() => {
    settings.current = options;
  });

  useEffect(() => {
    const changed = token.current !== sessionToken;
    token.current = sessionToken;
    if (changed && client !== null && client.status !== "connected") {
      client.disconnect();
      client.connect();
    }
  }, [client, sessionToken]);

  useEffect(() => {
    if (!userId) return undefined;
    const { initialJobs: _rendered, ...clientOptions } = settings.current;
    const made = createJobClient({
      ...clientOptions,
      ...(url === undefined ? {} : { url }),
      userId,
      getToken: () => token.current ?? null,
      store,
    });
    const stop = made.followUser();
    setClient(made);
    return () => {
      stop();
      made.destroy();
      store.getState().clearAll();
      setClient((current) => (current === made ? null : current));
    };
  }, [store, url, userId]);

  const files = useStore(
    store,
    useShallow((state: JobStoreState) => state.order.map((id) => state.jobs[id] as JobEntry)),
  );
  const status = useStore(store, (state) => state.connection.status);
  const error = useStore(store, (state) => state.connection.error);
  return useMemo(() => {
    const terminalFailure = (entry: JobEntry) => entry.status === "error" || entry.status === "cancelled";
    return {
      files,
      activeFiles: files.filter((entry) => entry.status === "pending" || entry.status === "queued" || entry.status === "processing"),
      completedFiles: files.filter((entry) => entry.status === "done"),
      failedFiles: files.filter(terminalFailure),
      aggregate: aggregate(files),
      status,
      error,
      cancel: (jobId: string) =>
        client === null
          ? Promise.reject(new JobClientError("disconnected", "useFileStatusSocket: not mounted yet."))
          : client.cancel(jobId),
      clearStatus: (jobId: string) => store.getState().clearStatus(jobId),
      client,
    };
  }, [client, error, files, status, store]);
}
