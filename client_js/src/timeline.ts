/**
 * The step timeline, grown from events exactly as the server grows it from updates: a new step
 * completes the one before it; the job's end settles the last one. A client that builds the
 * timeline from events therefore shows what a fresh snapshot would show.
 */
import type { Event, JobStatus, StepEntry } from "./protocol.js";

/** The server keeps the last 200 steps of a job. */
export const MAX_STEPS = 200;

export function advanceTimeline(
  steps: readonly StepEntry[],
  previousStep: string | null,
  event: Pick<Event, "step" | "message" | "progress" | "status" | "timestamp">,
): StepEntry[] {
  const next = steps.slice();
  const at = event.timestamp;
  const last = next.length - 1;
  if (next.length === 0 || event.step !== previousStep) {
    const tail = next[last];
    if (tail !== undefined && tail.status === "in_progress") {
      next[last] = { ...tail, status: "complete", updated_at: at };
    }
    next.push({
      step: event.step,
      message: event.message,
      status: "in_progress",
      progress: event.progress,
      started_at: at,
      updated_at: at,
    });
    if (next.length > MAX_STEPS) next.splice(0, next.length - MAX_STEPS);
  } else {
    const tail = next[last] as StepEntry;
    next[last] = { ...tail, message: event.message, progress: event.progress, updated_at: at };
  }
  return settleTimeline(next, event.status);
}

/** The job's end settles its last step: `complete` when done, `error` when it failed or stopped. */
export function settleTimeline(steps: StepEntry[], status: JobStatus): StepEntry[] {
  const last = steps.length - 1;
  const tail = steps[last];
  if (tail === undefined) return steps;
  if (status === "done" && tail.status !== "complete") {
    steps[last] = { ...tail, status: "complete" };
  } else if ((status === "error" || status === "cancelled") && tail.status !== "error") {
    steps[last] = { ...tail, status: "error" };
  }
  return steps;
}
