/**
 * `tidings-client/compat`: the names and shapes of the documents tidings was specified from, as
 * thin adapters over the idiomatic API. `FileStatus` is a view of a `JobEntry`; the file-status
 * actions are the store's; `file_progress` is `job_update` under another name; `liveSystem` is
 * the one uploader (`createUploader`) with a `JobClient` watching each file's job. Only
 * `UploadProgressStream` talks to the server by itself: it follows the upload-progress event
 * stream (`GET /api/files/progress/{upload_id}`), one `EventSource` per upload.
 */
import { createJobClient, type JobClient, type JobClientOptions } from "../client.js";
import type { TokenSource } from "../connection.js";
import type { EventSourceFactory, EventSourceLike } from "../event-stream.js";
import { isTerminal, type Event, type JsonValue } from "../protocol.js";
import type { JobEntry, JobStoreState } from "../store.js";
import { createUploader, type Upload, type UploadFile } from "../upload.js";

// ---- file status ---------------------------------------------------------------------------

export interface ProcessingStep {
  step: string;
  message: string;
  status: "in_progress" | "complete" | "error";
  /** ms since 1970. */
  timestamp: number;
  progress?: number;
  extra?: Record<string, any>;
}

export interface FileStatus {
  fileId: string;
  filename?: string;
  steps: ProcessingStep[];
  currentStep?: string;
  overallProgress: number;
  startedAt: number;
  completedAt?: number;
  error?: string;
}

export interface FileStatusState {
  /** Every file, by id. */
  files: Record<string, FileStatus>;
  addStep(fileId: string, step: ProcessingStep): void;
  updateProgress(fileId: string, progress: number): void;
  markComplete(fileId: string): void;
  setError(fileId: string, error: string): void;
  clearStatus(fileId: string): void;
  clearAll(): void;
  getStatus(fileId: string): FileStatus | undefined;
  getAllStatuses(): FileStatus[];
  /** Files not finished yet. */
  getActiveFiles(): FileStatus[];
  getCompletedFiles(): FileStatus[];
}

function time(iso: string | null | undefined): number | undefined {
  if (iso === null || iso === undefined) return undefined;
  const value = Date.parse(iso);
  return Number.isNaN(value) ? undefined : value;
}

const statuses = new WeakMap<JobEntry, FileStatus>();

/** A job entry under the documents' names; the same object for the same entry. */
export function toFileStatus(entry: JobEntry): FileStatus {
  const cached = statuses.get(entry);
  if (cached !== undefined) return cached;
  const steps = entry.steps.map((step): ProcessingStep => ({
    step: step.step,
    message: step.message,
    status: step.status,
    timestamp: time(step.started_at) ?? 0,
    ...(step.progress === null ? {} : { progress: step.progress }),
  }));
  const completedAt = isTerminal(entry.status) ? time(entry.updatedAt) : undefined;
  const status: FileStatus = {
    fileId: entry.jobId,
    ...(entry.filename === null ? {} : { filename: entry.filename }),
    steps,
    ...(entry.step === null ? {} : { currentStep: entry.step }),
    overallProgress: entry.status === "done" ? 100 : (entry.progress ?? 0),
    startedAt: time(entry.snapshot?.created_at) ?? steps[0]?.timestamp ?? time(entry.updatedAt) ?? entry.lastEventAt ?? 0,
    ...(completedAt === undefined ? {} : { completedAt }),
    ...(entry.error === null ? {} : { error: entry.error.message }),
  };
  statuses.set(entry, status);
  return status;
}

const views = new WeakMap<JobStoreState, FileStatusState>();

/**
 * The store's state under the documents' names: the same object for the same state, so it can be
 * returned from a selector. Its actions are the store's own.
 */
export function fileStatusView(state: JobStoreState): FileStatusState {
  const cached = views.get(state);
  if (cached !== undefined) return cached;
  const all = state.order.map((id) => toFileStatus(state.jobs[id] as JobEntry));
  const files: Record<string, FileStatus> = {};
  for (const status of all) files[status.fileId] = status;
  const active = all.filter((status) => !isTerminal(state.jobs[status.fileId]?.status));
  const completed = all.filter((status) => state.jobs[status.fileId]?.status === "done");
  const view: FileStatusState = {
    files,
    addStep(fileId, step) {
      const filename = step.extra?.["filename"];
      state.addStep(fileId, {
        step: step.step,
        message: step.message,
        at: new Date(step.timestamp).toISOString(),
        ...(step.progress === undefined ? {} : { progress: step.progress }),
        ...(typeof filename === "string" ? { filename } : {}),
      });
      if (step.status === "error") state.setError(fileId, step.message);
    },
    updateProgress: (fileId, progress) => state.updateProgress(fileId, { progress }),
    markComplete: (fileId) => state.markComplete(fileId),
    setError: (fileId, error) => state.setError(fileId, error),
    clearStatus: (fileId) => state.clearStatus(fileId),
    clearAll: () => state.clearAll(),
    getStatus: (fileId) => files[fileId],
    getAllStatuses: () => all,
    getActiveFiles: () => active,
    getCompletedFiles: () => completed,
  };
  views.set(state, view);
  return view;
}

// ---- the documents' event names ----------------------------------------------------------------

/** `file_progress`: a `job_update` with the job's id also as `fileId`. */
export type FileProgressEvent = Event & { fileId: string };

export interface CompatEvents {
  file_progress: (data: FileProgressEvent) => void;
  job_update: (event: Event) => void;
  job_complete: (event: Event) => void;
  job_error: (event: Event) => void;
}

function nameOf(event: Event): "job_update" | "job_complete" | "job_error" {
  if (event.status === "done") return "job_complete";
  return event.status === "error" || event.status === "cancelled" ? "job_error" : "job_update";
}

/**
 * Listens for one of the documents' event names on a client's ordered events (each once, in
 * order). Returns the matching removal.
 */
export function onJobEvent<K extends keyof CompatEvents>(client: JobClient, name: K, handler: CompatEvents[K]): () => void {
  return client.on("event", (event) => {
    const kind = nameOf(event);
    if (name === "file_progress" && kind === "job_update") {
      (handler as CompatEvents["file_progress"])({ ...event, fileId: event.job_id });
    } else if (name === kind) {
      (handler as CompatEvents["job_update"])(event);
    }
  });
}

// ---- a client whose token a hook can hand in -----------------------------------------------------

interface TokenSlot {
  token: string | null | undefined;
  getToken: TokenSource | undefined;
}

const slots = new WeakMap<JobClient, TokenSlot>();

/**
 * A client for `JobClientProvider` whose token `useFileStatusSocket(userId, sessionToken,
 * { getToken })` may set: the hook's `getToken`, else its `sessionToken`, else `options.getToken`.
 */
export function createFileStatusClient(options: JobClientOptions = {}): JobClient {
  const slot: TokenSlot = { token: undefined, getToken: undefined };
  const client = createJobClient({
    ...options,
    getToken: () => (slot.getToken !== undefined ? slot.getToken() : (slot.token ?? options.getToken?.() ?? null)),
  });
  slots.set(client, slot);
  return client;
}

/** Hands a token to a client made by `createFileStatusClient`; whether it changed. */
export function setClientToken(client: JobClient, token: string | null | undefined, getToken?: TokenSource): boolean {
  const slot = slots.get(client);
  if (slot === undefined) return false;
  const changed = slot.token !== token || slot.getToken !== getToken;
  slot.token = token;
  slot.getToken = getToken;
  return changed;
}

// ---- upload progress over SSE -----------------------------------------------------------------

export interface UploadProgress {
  upload_id: string;
  filename: string;
  total_bytes: number;
  uploaded_bytes: number;
  status: "uploading" | "completed" | "failed";
  error?: string;
  started_at?: string;
  completed_at?: string;
  progress_percentage: number;
}

/** A job entry as the documents' upload progress; a job not heard of yet is uploading at 0 %. */
export function toUploadProgress(uploadId: string, entry: JobEntry | undefined): UploadProgress {
  const size = entry?.extra["size_bytes"];
  const total = typeof size === "number" ? size : 0;
  const percentage = entry?.status === "done" ? 100 : Math.min(100, Math.max(0, entry?.progress ?? 0));
  const status = entry?.status === "done" ? "completed" : isTerminal(entry?.status) ? "failed" : "uploading";
  return {
    upload_id: uploadId,
    filename: entry?.filename ?? uploadId,
    total_bytes: total,
    uploaded_bytes: Math.round((total * percentage) / 100),
    status,
    ...(entry?.error ? { error: entry.error.message } : {}),
    ...(entry?.snapshot ? { started_at: entry.snapshot.created_at } : {}),
    ...(status !== "uploading" && entry?.updatedAt ? { completed_at: entry.updatedAt } : {}),
    progress_percentage: percentage,
  };
}

export interface UploadProgressHandlers {
  onProgress?: (progress: UploadProgress) => void;
  /** Completed or failed: the stream is closed. */
  onComplete?: (progress: UploadProgress) => void;
  /** The stream broke before the upload finished; it is closed. */
  onError?: (error: Error) => void;
}

export interface UploadProgressStreamOptions {
  /** The server; the page's own origin when left out. */
  baseUrl?: string;
  eventSource?: EventSourceFactory;
}

/** One upload's progress, from `GET /api/files/progress/{upload_id}` (SSE event `progress`). */
export class UploadProgressStream {
  readonly uploadId: string;
  /** The last progress heard. */
  latest: UploadProgress | null = null;
  private source: EventSourceLike | null;

  constructor(uploadId: string, handlers: UploadProgressHandlers = {}, options: UploadProgressStreamOptions = {}) {
    this.uploadId = uploadId;
    const url = new URL(`/api/files/progress/${encodeURIComponent(uploadId)}`, options.baseUrl ?? globalThis.location.origin);
    const source = (options.eventSource ?? ((href: string) => new EventSource(href)))(url.href);
    this.source = source;
    source.addEventListener("progress", (message) => {
      const progress = JSON.parse(message.data) as UploadProgress;
      this.latest = progress;
      handlers.onProgress?.(progress);
      if (progress.status !== "uploading") {
        this.close();
        handlers.onComplete?.(progress);
      }
    });
    source.addEventListener("error", () => {
      if (this.source === null) return;
      this.close();
      handlers.onError?.(new Error(`The progress stream of upload ${uploadId} was lost.`));
    });
  }

  get closed(): boolean {
    return this.source === null;
  }

  close(): void {
    this.source?.close();
    this.source = null;
  }
}

/** Many uploads' streams, one per upload id. */
export class UploadProgressManager {
  private readonly streams = new Map<string, UploadProgressStream>();

  constructor(private readonly options: UploadProgressStreamOptions = {}) {}

  /** Follows an upload (replacing an earlier stream for it); the stream leaves when it closes. */
  track(uploadId: string, handlers: UploadProgressHandlers = {}): UploadProgressStream {
    this.close(uploadId);
    const forget = () => {
      if (this.streams.get(uploadId) === stream) this.streams.delete(uploadId);
    };
    const stream = new UploadProgressStream(
      uploadId,
      {
        ...handlers,
        onComplete: (progress) => {
          forget();
          handlers.onComplete?.(progress);
        },
        onError: (error) => {
          forget();
          handlers.onError?.(error);
        },
      },
      this.options,
    );
    this.streams.set(uploadId, stream);
    return stream;
  }

  close(uploadId: string): void {
    this.streams.get(uploadId)?.close();
    this.streams.delete(uploadId);
  }

  /** Closes every open stream. */
  closeAll(): void {
    for (const stream of this.streams.values()) stream.close();
    this.streams.clear();
  }

  /** Upload ids with an open stream. */
  get active(): string[] {
    return [...this.streams.keys()];
  }
}

let manager: UploadProgressManager | null = null;

/** The page's one manager (made on first use, on the page's origin). */
export function getUploadProgressManager(): UploadProgressManager {
  manager ??= new UploadProgressManager();
  return manager;
}

// ---- liveSystem.uploadFiles -------------------------------------------------------------------

/** queued → processing → extracting (entity extraction) → done, or error / cancelled. */
export type LiveStatus = "uploading" | "queued" | "processing" | "extracting" | "done" | "error" | "cancelled";

export interface LiveProgress {
  job_id: string | null;
  filename: string;
  status: LiveStatus;
  /** 0–100. */
  progress: number;
  message: string | null;
}

export interface LiveUploadResult {
  index: number;
  filename: string;
  success: boolean;
  job_id: string | null;
  status: LiveStatus;
  result?: JsonValue;
  error?: string;
}

export interface UploadFilesOptions {
  extractEntities?: boolean;
  /** When a file's name, status or percent changes (a new message alone is not reported). */
  onProgress?: (index: number, filename: string, progress: LiveProgress) => void;
  /** Once every file has finished, however. */
  onComplete?: (results: LiveUploadResult[]) => void;
  onError?: (index: number, filename: string, error: Error) => void;
}

export interface LiveSystemOptions {
  /** The server; the page's own origin when left out. */
  url?: string;
  getToken?: TokenSource;
  userId?: string;
  /** Files uploaded at once (4). */
  concurrency?: number;
  /** Watches the jobs; a client of its own (made on first use, falling back to SSE) otherwise. */
  client?: JobClient;
}

export interface LiveSystem {
  /** Uploads every file and follows its job to the end; resolves with one result per file, in order. */
  uploadFiles(files: Iterable<UploadFile> | ArrayLike<UploadFile>, options?: UploadFilesOptions): Promise<LiveUploadResult[]>;
  /** The client watching the jobs. */
  readonly client: JobClient;
}

function liveStatusOf(entry: JobEntry): LiveStatus {
  if (entry.status === "pending") return "queued";
  if (entry.status === "processing" && entry.step === "entity_extraction") return "extracting";
  return entry.status;
}

export function createLiveSystem(options: LiveSystemOptions = {}): LiveSystem {
  let client = options.client ?? null;
  const clientOf = (): JobClient => {
    client ??= createJobClient({
      ...(options.url === undefined ? {} : { url: options.url }),
      ...(options.getToken === undefined ? {} : { getToken: options.getToken }),
      ...(options.userId === undefined ? {} : { userId: options.userId }),
      fallback: "sse",
    });
    return client;
  };

  function uploadFiles(files: Iterable<UploadFile> | ArrayLike<UploadFile>, handlers: UploadFilesOptions = {}) {
    const jobs = clientOf();
    const store = jobs.store;
    const results: LiveUploadResult[] = [];
    const stops = new Map<string, () => void>();
    /** Each upload's place: `add` tells of every upload, in order, before it sends any. */
    const indexOf = new Map<Upload, number>();
    const names: string[] = [];
    const watched = new Map<string, number>();
    const seen = new Map<string, JobEntry>();
    /** What each file was last reported as: a store change that leaves its name, status and
     * percent as they were (a new message, a step's timestamp) is not reported again. */
    const told = new Map<number, string>();
    const tell = (index: number, progress: LiveProgress) => {
      const shown = JSON.stringify([progress.filename, progress.status, progress.progress]);
      if (told.get(index) === shown) return;
      told.set(index, shown);
      handlers.onProgress?.(index, progress.filename, progress);
    };
    let left = 0;

    return new Promise<LiveUploadResult[]>((resolve) => {
      const settle = (result: LiveUploadResult) => {
        if (results[result.index] !== undefined) return;
        results[result.index] = result;
        left -= 1;
        if (!result.success) handlers.onError?.(result.index, result.filename, new Error(result.error ?? "The file failed."));
        if (left > 0) return;
        stopStore();
        handlers.onComplete?.(results);
        resolve(results);
      };

      const stopStore = store.subscribe((state) => {
        for (const [jobId, index] of watched) {
          const entry = state.jobs[jobId];
          if (entry === undefined || seen.get(jobId) === entry || entry.snapshot === null) continue;
          seen.set(jobId, entry);
          report(index, entry);
        }
      });
      const report = (index: number, entry: JobEntry) => {
        const filename = entry.filename ?? names[index] ?? entry.jobId;
        const status = liveStatusOf(entry);
        tell(index, {
          job_id: entry.jobId,
          filename,
          status,
          progress: entry.status === "done" ? 100 : (entry.progress ?? 0),
          message: entry.message,
        });
        if (!isTerminal(entry.status)) return;
        watched.delete(entry.jobId);
        stops.get(entry.jobId)?.();
        settle({
          index,
          filename,
          success: entry.status === "done",
          job_id: entry.jobId,
          status,
          ...(entry.status === "done" ? { result: entry.result } : { error: entry.error?.message ?? entry.message ?? status }),
        });
      };

      const uploader = createUploader({
        ...(options.url === undefined ? {} : { url: options.url }),
        ...(options.getToken === undefined ? {} : { getToken: options.getToken }),
        ...(options.userId === undefined ? {} : { userId: options.userId }),
        ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
        ...(handlers.extractEntities === undefined ? {} : { extractEntities: handlers.extractEntities }),
        onChange(upload) {
          let index = indexOf.get(upload);
          if (index === undefined) {
            index = indexOf.size;
            indexOf.set(upload, index);
          }
          names[index] = upload.name;
          if (upload.state === "uploading" && upload.loaded === 0) {
            tell(index, { job_id: null, filename: upload.name, status: "uploading", progress: 0, message: null });
          } else if (upload.state === "uploaded" && upload.jobId !== null) {
            watched.set(upload.jobId, index);
            stops.set(upload.jobId, jobs.subscribe(upload.jobId));
          } else if (upload.state === "failed" || upload.state === "cancelled") {
            settle({
              index,
              filename: upload.name,
              success: false,
              job_id: null,
              status: upload.state === "failed" ? "error" : "cancelled",
              error: upload.error ?? "The upload was cancelled.",
            });
          }
        },
      });
      const list = Array.from(files);
      left = list.length;
      if (left === 0) {
        stopStore();
        handlers.onComplete?.(results);
        resolve(results);
        return;
      }
      uploader.add(list);
    });
  }

  return {
    uploadFiles,
    get client() {
      return clientOf();
    },
  };
}

/** The documents' `liveSystem`, on the page's origin; `createLiveSystem` makes one for another server or user. */
export const liveSystem: LiveSystem = createLiveSystem();
