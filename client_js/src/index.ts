export { createJobClient } from "./client.js";
export type {
  ClientEvents,
  EventSourceFactory,
  EventSourceLike,
  JobClient,
  JobClientOptions,
  TokenSource,
  TransportFactory,
  TransportOptions,
  TransportSocket,
  TypedSocket,
} from "./client.js";
export { JobClientError, isJobClientError } from "./errors.js";
export type { JobClientErrorCode } from "./errors.js";
export { aggregate, createJobStore, emptyEntry } from "./store.js";
export type {
  Aggregate,
  ConnectionState,
  ConnectionStatus,
  EntryStatus,
  JobEntry,
  JobStore,
  JobStoreState,
  ProgressInput,
  StepInput,
  SubscriptionState,
  TransportKind,
} from "./store.js";
export { formatAgo, formatEta, formatPercent } from "./format.js";
export { JOB_ID_PATTERN, TERMINAL_STATUSES, isTerminal } from "./protocol.js";
export type {
  Ack,
  AckFailure,
  CancelResult,
  ClientToServerEvents,
  ConnectAuth,
  Event,
  EventBatch,
  JobError,
  JobEvent,
  JobRequest,
  JobStatus,
  JsonValue,
  ListJobsRequest,
  ListJobsResult,
  ListedJob,
  ProtocolErrorCode,
  ServerToClientEvents,
  Snapshot,
  StepEntry,
  StepStatus,
  SubscribeRequest,
  SubscribeResult,
  TerminalStatus,
  UnsubscribeResult,
} from "./protocol.js";
export { DEFAULT_CONCURRENCY, createUploader } from "./upload.js";
export type { Upload, UploadFile, UploadState, Uploader, UploaderOptions } from "./upload.js";
