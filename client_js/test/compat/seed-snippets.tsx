/**
 * The seed documents' own frontend snippets, written as the documents write them, against
 * `tidings-client/compat`. Where strict TypeScript (or a test) needs a change, the line says so
 * with `STRICT:` or `ADDED:`. `npm run typecheck` and the types project compile this file; the
 * integration test test/integration/compat.test.tsx renders and runs it against a real server.
 */
import { createContext, useContext, useState } from "react";

import {
  getUploadProgressManager,
  liveSystem,
  UploadProgressModal,
  useFileStatusSocket,
  useFileStatusStore,
  useMultiUploadProgress,
} from "../../src/compat/react.js";

// ADDED: the documents import `useAuth` from '@/components/AuthProvider', an application's own.
export const AuthContext = createContext<{ user: { id: string } | null; sessionToken?: string }>({ user: null });
const useAuth = () => useContext(AuthContext);

// ---- 001: "Step 2.1: File Status Store (Zustand)" ------------------------------------------------

/** The document's store actions and queries, run when the button is pressed. */
export function StoreWalkthrough({ fileId }: { fileId: string }) {
  const store = useFileStatusStore();
  const [queried, setQueried] = useState("");
  const run = () => {
    // Add a processing step
    store.addStep(fileId, {
      step: 'duplicate_check',
      message: 'Checking if I\'ve seen this file before...',
      status: 'in_progress',
      timestamp: Date.now(),
      progress: 15
    });

    // Update overall progress
    store.updateProgress(fileId, 25);
  };
  const finish = () => {
    // Mark as complete
    store.markComplete(fileId);
  };
  const fail = () => {
    // Set error
    store.setError(fileId, 'Processing failed');
  };
  const query = () => {
    // Get specific file status
    const status = store.getStatus(fileId);

    // Get all statuses
    const all = store.getAllStatuses();

    // Get active files (in-progress)
    const active = store.getActiveFiles();

    // Get completed files
    const completed = store.getCompletedFiles();
    setQueried(`${status?.overallProgress ?? "none"} ${all.length} ${active.length} ${completed.length}`);
  };
  const clear = () => {
    // Clear specific file
    store.clearStatus(fileId);
  };
  const clearAll = () => {
    // Clear all
    store.clearAll();
  };
  return (
    <div>
      <button onClick={run}>run</button>
      <button onClick={finish}>complete</button>
      <button onClick={fail}>fail</button>
      <button onClick={query}>query</button>
      <button onClick={clear}>clear</button>
      <button onClick={clearAll}>clear all</button>
      <output aria-label="queried">{queried}</output>
    </div>
  );
}

/** 001, "UI components subscribe to store". */
export function FileStatusLine({ fileId }: { fileId: string }) {
  const status = useFileStatusStore((state) => state.getStatus(fileId));
  // Re-renders automatically when status changes
  return (
    <p aria-label={`status of ${fileId}`}>
      {status ? `${status.currentStep ?? ""} ${status.overallProgress}% ${status.completedAt ? "completed" : "running"}${status.error ? ` ${status.error}` : ""}` : "unknown"}
    </p>
  );
}

// ---- 001: "Step 2.2: WebSocket Connection Hook" ------------------------------------------------

export const MyComponent = () => {
  const { user } = useAuth();
  const sessionToken = useAuth().sessionToken; // ADDED: the document leaves where it comes from out
  const { isConnected, emit } = useFileStatusSocket(
    user?.id,
    sessionToken
  );
  void emit; // ADDED: the document takes `emit` and leaves it unused

  return (
    <div>
      {isConnected ? '✅ Connected' : '⚠️ Disconnected'}
    </div>
  );
};

// ---- 002: "Using the Hook" -------------------------------------------------------------------

export function UploadHookComponent() {
  const [uploadIds, setUploadIds] = useState<string[] | null>(null);

  const {
    progressMap,
    overallPercentage,
    allCompleted
  } = useMultiUploadProgress(uploadIds);
  void progressMap; // ADDED: the document leaves these unused
  void allCompleted;

  // Handle upload
  const handleUpload = async (files: FileList) => {
    const formData = new FormData();
    Array.from(files).forEach(file => {
      formData.append('files', file);
    });

    const response = await fetch('/api/files/upload', {
      method: 'POST',
      body: formData
    });

    const result = await response.json();
    setUploadIds(result.upload_ids); // Start progress tracking
  };

  return (
    <div>
      {/* ADDED: a way to call handleUpload */}
      <input type="file" multiple aria-label="files" onChange={(event) => void handleUpload(event.target.files!)} />
      {uploadIds && (
        <div>
          Overall Progress: {overallPercentage.toFixed(1)}%
        </div>
      )}
    </div>
  );
}

// ---- 002: "Using the Modal Component" -----------------------------------------------------------

export function FileManager({ initial = null }: { initial?: string[] | null }) {
  const [uploadIds, setUploadIds] = useState<string[] | null>(initial); // ADDED: `initial`, so a test can start it

  return (
    <div>
      {/* Your file manager UI */}

      {uploadIds && (
        <UploadProgressModal
          uploadIds={uploadIds}
          onClose={() => setUploadIds(null)}
        />
      )}
      {uploadIds ? null : <p>modal closed</p>}
    </div>
  );
}

// ---- 002: "Memory Leaks" ----------------------------------------------------------------------------

export function closeEverything() {
  const manager = getUploadProgressManager();
  manager.closeAll(); // Close all active connections
}

// ---- 000: "Chain Upload Example" --------------------------------------------------------------------

export async function chainUpload(log: (line: string) => void) {
  const console = { log, error: (...parts: unknown[]) => log(parts.map(String).join(" ")) }; // ADDED: the test reads the log

  // Get files from input
  const files = (document.getElementById('fileInput') as HTMLInputElement).files!; // STRICT: the element's type

  // Upload with entity extraction
  const results = await liveSystem.uploadFiles(files, {
    extractEntities: true,

    // Called for each file's progress
    onProgress: (index, filename, progress) => {
      console.log(`[${index}] ${filename}: ${progress.progress}% (${progress.status})`);
      // progress.status: queued → processing → extracting → done
    },

    // Called when all files done
    onComplete: (results) => {
      const success = results.filter(r => r.success).length;
      const failed = results.filter(r => !r.success).length;
      console.log(`Upload complete: ${success} success, ${failed} failed`);
    },

    // Called on individual file error
    onError: (index, filename, error) => {
      console.error(`Failed: ${filename}:`, error);
    }
  });
  return results;
}

// ---- 000: "GET /api/jobs" (List all jobs) -------------------------------------------------------

/** A listed job as the document's example response shows it. ADDED: the document shows the JSON. */
interface DocumentedJob {
  id: string;
  type: string;
  status: string;
  filename: string;
  progress: number;
  created_at: string;
}

/** ADDED: the document lists jobs with `curl http://localhost/api/jobs`; a page reads the same reply. */
export async function listJobs(): Promise<string[]> {
  const response = await fetch('/api/jobs');
  const { jobs } = (await response.json()) as { jobs: DocumentedJob[] };
  return jobs.map((job) => `${job.id} ${job.type} ${job.filename}: ${job.progress}% (${job.status}) since ${new Date(job.created_at).toISOString()}`);
}

// ---- 000: "GET /api/upload/progress/{job_id}" (SSE progress stream) -----------------------------

export function watchUpload(job_id: string, log: (line: string) => void) {
  const console = { log }; // ADDED: the test reads the log
  const progress = new EventSource(`/api/upload/progress/${job_id}`);
  progress.onmessage = (e) => {
      const { job } = JSON.parse(e.data);
      console.log(`${job.filename}: ${job.progress}% (${job.status})`);
  };
  return progress; // ADDED: so it can be closed
}
