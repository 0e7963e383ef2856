/**
 * Small, unstyled, accessible pieces. They carry `data-tidings` and `data-status` attributes to
 * style by; the only inline style is the bar's width.
 */
import type { StepStatus } from "../protocol.js";
import { formatEta as defaultFormatEta, formatPercent } from "../format.js";
import type { JobEntry } from "../store.js";
import { useJob } from "./hooks.js";

export interface JobProgressProps {
  jobId: string;
  /** The progress bar's accessible name; the file name, else "Job <id>", by default. */
  label?: string;
  /** ETA in words; return null to say nothing. */
  formatEta?: (seconds: number | null) => string | null;
  /**
   * What the live region says; the message (or the outcome, once finished) by default. Keep
   * numbers that change every tick out of it: they are in the bar's `aria-valuetext`, and a live
   * region reads out every change.
   */
  describe?: (entry: JobEntry | undefined) => string;
  className?: string;
}

function defaultDescribe(entry: JobEntry | undefined): string {
  if (entry === undefined || (entry.status === "pending" && entry.message === null)) return "Waiting to start...";
  if (entry.status === "error" || entry.status === "cancelled") {
    return entry.error?.message ?? (entry.status === "cancelled" ? "Cancelled." : "Something went wrong.");
  }
  return entry.message ?? (entry.status === "done" ? "Done." : "");
}

/**
 * A progress bar (`role="progressbar"`, the percentage and ETA in `aria-valuetext`) and a polite
 * live region that says the message when it changes and the outcome at the end, not every tick.
 */
export function JobProgress({ jobId, label, formatEta = defaultFormatEta, describe, className }: JobProgressProps) {
  const entry = useJob(jobId);
  const progress = entry?.progress ?? null;
  // Rounded down, as formatPercent does: 99.5 % is not done.
  const value = progress === null ? undefined : Math.floor(Math.min(100, Math.max(0, progress)));
  const eta = entry?.status === "processing" ? formatEta(entry.etaSeconds) : null;
  const percent = formatPercent(progress);
  const valueText = [percent, eta].filter((part) => part !== null).join(", ") || undefined;
  const text = describe === undefined ? defaultDescribe(entry) : describe(entry);
  const status = entry?.status ?? "pending";
  return (
    <div className={className} data-tidings="job-progress" data-status={status}>
      <div
        role="progressbar"
        aria-label={label ?? entry?.filename ?? `Job ${jobId}`}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={value}
        aria-valuetext={valueText}
        data-tidings="bar"
      >
        <div data-tidings="fill" style={{ width: `${value ?? 0}%` }} />
      </div>
      <div role="status" aria-live="polite" aria-atomic="true" data-tidings="message">
        {text}
      </div>
    </div>
  );
}

const STEP_WORDS: Record<StepStatus, string> = {
  complete: "done",
  in_progress: "in progress",
  error: "failed",
};

export interface JobTimelineProps {
  jobId: string;
  /** The list's accessible name. */
  label?: string;
  /** How a step's state is said; "done", "in progress", "failed" by default. */
  stepWords?: Record<StepStatus, string>;
  className?: string;
}

/** The job's steps in the order they began, each with its state; the running one is `aria-current`. */
export function JobTimeline({ jobId, label = "Steps", stepWords = STEP_WORDS, className }: JobTimelineProps) {
  const steps = useJob(jobId, (entry) => entry?.steps);
  return (
    <ol className={className} aria-label={label} data-tidings="job-timeline">
      {(steps ?? []).map((step, index) => (
        <li
          key={`${index}:${step.step}`}
          data-status={step.status}
          data-step={step.step}
          aria-current={step.status === "in_progress" ? "step" : undefined}
        >
          <span data-tidings="step-message">{step.message}</span>{" "}
          <span data-tidings="step-status">({stepWords[step.status]})</span>
        </li>
      ))}
    </ol>
  );
}
