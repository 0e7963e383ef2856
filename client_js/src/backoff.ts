/** Capped exponential backoff with jitter, shared by every loop of the client that asks again. */

export interface BackoffOptions {
  /** First delay (ms). */
  base: number;
  /** Largest delay (ms). */
  max: number;
  /** Each delay is moved by up to this fraction either way. */
  jitter: number;
  /** Source of jitter, 0 ≤ x < 1. */
  random: () => number;
}

/** The delay before attempt `attempt` (0-based): base · 2^attempt, capped, moved by ±jitter. */
export type Backoff = (attempt: number) => number;

export function createBackoff({ base, max, jitter, random }: BackoffOptions): Backoff {
  return (attempt) => {
    const plain = Math.min(max, base * 2 ** Math.min(attempt, 30));
    const deviation = plain * jitter * (random() * 2 - 1);
    return Math.max(0, Math.min(max, Math.round(plain + deviation)));
  };
}

/** One delayed call at a time; `start` while one waits does nothing. */
export class Timer {
  private handle: ReturnType<typeof setTimeout> | undefined;

  get pending(): boolean {
    return this.handle !== undefined;
  }

  start(delay: number, callback: () => void): void {
    if (this.handle !== undefined) return;
    this.handle = setTimeout(() => {
      this.handle = undefined;
      callback();
    }, delay);
  }

  stop(): void {
    if (this.handle !== undefined) clearTimeout(this.handle);
    this.handle = undefined;
  }
}
