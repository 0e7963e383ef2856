/**
 * A page made of the seed documents' own snippets (./seed-snippets.tsx) for the Chromium test
 * tests/e2e/test_seed_snippets.py, which bundles it with esbuild and serves it on the tidings
 * server's own origin (the snippets use relative URLs, as the documents do). The query says what
 * to show: `?user=` the user `useFileStatusSocket` follows, `?upload=` (repeatable) the upload ids
 * the modal opens on, `?file=` (repeatable) the files whose status lines are shown.
 */
import { StrictMode, useState } from "react";
import { createRoot } from "react-dom/client";

import { createFileStatusClient } from "../../src/compat/index.js";
import { JobClientProvider } from "../../src/react/index.js";
import {
  AuthContext,
  chainUpload,
  FileManager,
  FileStatusLine,
  listJobs,
  MyComponent,
  UploadHookComponent,
  watchUpload,
} from "./seed-snippets.js";

const query = new URLSearchParams(location.search);
const user = query.get("user");
const uploads = query.getAll("upload");
const client = createFileStatusClient(user === null ? {} : { userId: user });

function Lines({ label, lines }: { label: string; lines: string[] }) {
  return (
    <ul aria-label={label}>
      {lines.map((line, index) => (
        <li key={index}>{line}</li>
      ))}
    </ul>
  );
}

/** 000's chain upload, then its job list and its progress stream, each written out as read. */
function ChainUpload() {
  const [log, setLog] = useState<string[]>([]);
  const [listed, setListed] = useState<string[]>([]);
  const [streamed, setStreamed] = useState<string[]>([]);
  const start = async () => {
    const results = await chainUpload((line) => setLog((lines) => [...lines, line]));
    setListed(await listJobs());
    const first = results[0]?.job_id;
    if (first) watchUpload(first, (line) => setStreamed((lines) => [...lines, line]));
  };
  return (
    <section aria-label="Chain upload">
      <input id="fileInput" type="file" multiple aria-label="chain files" />
      <button type="button" onClick={() => void start()}>
        Upload all
      </button>
      <Lines label="upload log" lines={log} />
      <Lines label="listed jobs" lines={listed} />
      <Lines label="progress stream" lines={streamed} />
    </section>
  );
}

const root = document.getElementById("root");
if (root === null) throw new Error("the page has no #root");
createRoot(root).render(
  <StrictMode>
    <JobClientProvider client={client}>
      <AuthContext.Provider value={{ user: user === null ? null : { id: user } }}>
        <MyComponent />
      </AuthContext.Provider>
      {query.getAll("file").map((fileId) => (
        <FileStatusLine key={fileId} fileId={fileId} />
      ))}
      <FileManager initial={uploads.length > 0 ? uploads : null} />
      <UploadHookComponent />
      <ChainUpload />
    </JobClientProvider>
  </StrictMode>,
);
