export { JobClientContext, JobClientProvider, useJobClient } from "./context.js";
export type { JobClientProviderProps } from "./context.js";
export { useConnectionStatus, useFileStatusSocket, useJob, useJobs, useJobStore } from "./hooks.js";
export type { FileStatusSocket, FileStatusSocketOptions, JobsView } from "./hooks.js";
export { JobProgress, JobTimeline } from "./components.js";
export type { JobProgressProps, JobTimelineProps } from "./components.js";
