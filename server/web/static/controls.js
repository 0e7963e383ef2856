/**
 * The upload settings: whether the server extracts entities from each file, whether files go up
 * as soon as they are added or wait for "Upload all", and how many go up at once. They are kept
 * in localStorage, so a reload keeps them. Plain form controls, so a keyboard and a screen reader
 * use them as they use any form.
 */
const KEY = "tidings.uploadSettings";
const DEFAULTS = { extractEntities: false, autoStart: true, parallel: 4 };
const MAX_PARALLEL = 16;

function load() {
  try {
    return { ...DEFAULTS, ...JSON.parse(localStorage.getItem(KEY) ?? "{}") };
  } catch {
    return { ...DEFAULTS }; // storage refused, or not JSON
  }
}

function save(settings) {
  try {
    localStorage.setItem(KEY, JSON.stringify(settings));
  } catch {
    // storage refused: the settings last as long as the page
  }
}

const $ = (id) => document.getElementById(id);

/**
 * Wires the settings form. `onChange(settings)` after a change; `onUploadAll()` when the button is
 * pressed. Returns `settings()` and `setHeld(count)` (the files waiting for "Upload all").
 */
export function setUpControls({ onChange, onUploadAll }) {
  let settings = load();
  const extract = $("extract-entities");
  const parallel = $("parallel");
  const modes = document.querySelectorAll('input[name="start-mode"]');
  const uploadAll = $("upload-all");
  const held = $("held-count");

  extract.checked = settings.extractEntities;
  parallel.max = String(MAX_PARALLEL);
  parallel.value = String(settings.parallel);
  for (const mode of modes) mode.checked = (mode.value === "now") === settings.autoStart;

  const update = (change) => {
    settings = { ...settings, ...change };
    save(settings);
    $("upload-all-group").hidden = settings.autoStart;
    onChange(settings);
  };
  extract.addEventListener("change", () => update({ extractEntities: extract.checked }));
  for (const mode of modes) mode.addEventListener("change", () => update({ autoStart: mode.value === "now" }));
  parallel.addEventListener("change", () => {
    const value = Math.min(MAX_PARALLEL, Math.max(1, Math.floor(Number(parallel.value)) || DEFAULTS.parallel));
    parallel.value = String(value);
    update({ parallel: value });
  });
  uploadAll.addEventListener("click", onUploadAll);
  $("upload-all-group").hidden = settings.autoStart;

  return {
    settings: () => settings,
    setHeld(count) {
      uploadAll.disabled = count === 0;
      const text = count === 0 ? "No files waiting" : `${count} ${count === 1 ? "file" : "files"} waiting`;
      if (held.textContent !== text) held.textContent = text; // a status region: said only when it changes
    },
  };
}
