/**
 * Sending files: the client's uploader (`createUploader`, in the bundle beside this file: each
 * file in a POST /api/upload of its own, a few at a time), told who the page is; and reading
 * what was dropped or picked, dropped folders walked with the drag-and-drop entry API.
 */
import { createUploader } from "./tidings-client.js";
import { identity } from "./identity.js";

/**
 * The page's uploader. `onChange(upload)` after every change of an upload; `settings()` is read
 * for each file sent (`extractEntities`).
 */
export function pageUploader(onChange, settings) {
  const { userId, token } = identity();
  return createUploader({
    ...(token ? { getToken: () => identity().token } : { userId }),
    extractEntities: () => settings().extractEntities,
    concurrency: settings().parallel,
    onChange,
  });
}

/** Whether a name is one a folder walk skips (.DS_Store, .git, editors' files). */
function hidden(name) {
  return name.startsWith(".");
}

function readBatch(reader) {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

async function walk(entry, into) {
  if (hidden(entry.name)) return;
  if (entry.isFile) {
    into.push(await new Promise((resolve, reject) => entry.file(resolve, reject)));
    return;
  }
  const reader = entry.createReader();
  // readEntries answers in batches (100 in Chromium) until an empty one.
  for (let batch = await readBatch(reader); batch.length > 0; batch = await readBatch(reader)) {
    for (const child of batch) await walk(child, into);
  }
}

/** Every file of a drop, folders walked; the items must be read before the drop handler returns. */
export async function filesOfDrop(dataTransfer) {
  const items = Array.from(dataTransfer.items ?? []).filter((item) => item.kind === "file");
  if (items.length === 0) return Array.from(dataTransfer.files ?? []);
  const dropped = items.map((item) => ({
    entry: typeof item.webkitGetAsEntry === "function" ? item.webkitGetAsEntry() : null,
    file: item.getAsFile(),
  }));
  const files = [];
  for (const { entry, file } of dropped) {
    if (entry !== null && entry.isDirectory) {
      await walk(entry, files);
    } else if (file !== null) {
      files.push(file);
    }
  }
  return files;
}

/** The files of a folder picker, hidden ones left out as a dropped folder leaves them out. */
export function filesOfFolder(fileList) {
  return Array.from(fileList).filter(
    (file) => !(file.webkitRelativePath || file.name).split("/").some(hidden),
  );
}
