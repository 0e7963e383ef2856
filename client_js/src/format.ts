/** Words for numbers, the way people say them. English; pass your own to the components to translate. */

/** "a few seconds left", "about 15 seconds left", "about a minute left", "about 3 minutes left", … */
export function formatEta(seconds: number | null | undefined): string | null {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) {
    return null;
  }
  if (seconds < 10) return "a few seconds left";
  if (seconds < 55) return `about ${Math.max(10, Math.round(seconds / 5) * 5)} seconds left`;
  if (seconds < 90) return "about a minute left";
  const minutes = Math.round(seconds / 60);
  if (minutes < 55) return `about ${minutes} minutes left`;
  if (minutes < 90) return "about an hour left";
  return `about ${Math.round(minutes / 60)} hours left`;
}

/** "just now", "3 s ago", "2 min ago", "1 h ago": for "updated … ago" beside a job. */
export function formatAgo(then: number | null | undefined, now: number = Date.now()): string | null {
  if (then === null || then === undefined) return null;
  const seconds = Math.max(0, Math.floor((now - then) / 1000));
  if (seconds < 1) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  return `${Math.floor(minutes / 60)} h ago`;
}

/** "45%", rounded down so 99.6 % is not shown as done. */
export function formatPercent(progress: number | null | undefined): string | null {
  if (progress === null || progress === undefined || !Number.isFinite(progress)) return null;
  return `${Math.floor(Math.min(100, Math.max(0, progress)))}%`;
}
