/**
 * Discovery: while the client follows the user, every (re)connect lists the user's jobs
 * (`list_jobs`), since the user room only carries what happens from then on. An answer that says
 * "not now" is asked again with backoff, quietly, as a refused subscribe is.
 */
import { Timer, type Backoff } from "./backoff.js";
import { JobClientError } from "./errors.js";
import { isTransient, refusal, isFailure } from "./acks.js";
import type { Ack, ListJobsResult, Snapshot } from "./protocol.js";

export interface DiscoveryHooks {
  list(): Promise<Ack<ListJobsResult>>;
  /** Whether the listing is still wanted (the user is followed, the link is up). */
  wanted(): boolean;
  /** The user's jobs, oldest first. */
  found(jobs: Snapshot[]): void;
  error(error: JobClientError): void;
}

export class Discovery {
  private readonly timer = new Timer();
  private attempt = 0;

  constructor(
    private readonly hooks: DiscoveryHooks,
    private readonly backoff: Backoff,
  ) {}

  /** Lists now; `fresh` (a new connection) also starts the backoff over. */
  run(fresh = false): void {
    this.timer.stop();
    if (fresh) this.attempt = 0;
    this.hooks.list().then(
      (result) => {
        if (!this.hooks.wanted()) return;
        if (isFailure(result)) {
          const error = refusal(result);
          if (isTransient(error)) {
            this.timer.start(this.backoff(this.attempt), () => {
              if (this.hooks.wanted()) this.run();
            });
            this.attempt += 1;
          } else {
            this.hooks.error(error);
          }
          return;
        }
        this.attempt = 0;
        this.hooks.found([...result.jobs].reverse());
      },
      (error: JobClientError) => this.hooks.error(error),
    );
  }

  stop(): void {
    this.timer.stop();
  }
}
