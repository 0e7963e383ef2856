import { createContext, useContext, type ReactNode } from "react";

import type { JobClient } from "../client.js";

export const JobClientContext = createContext<JobClient | null>(null);

export interface JobClientProviderProps {
  /** Made once, outside render or in `useState(() => createJobClient(...))`; it connects lazily. */
  client: JobClient;
  children?: ReactNode;
}

/**
 * Hands a client to the hooks below it. Making a client opens nothing: the socket opens when the
 * first hook subscribes, in an effect, so server-side rendering never opens one.
 */
export function JobClientProvider({ client, children }: JobClientProviderProps) {
  return <JobClientContext.Provider value={client}>{children}</JobClientContext.Provider>;
}

export function useJobClient(): JobClient {
  const client = useContext(JobClientContext);
  if (client === null) {
    throw new Error("useJobClient: no client here. Wrap the tree in <JobClientProvider client={...}>.");
  }
  return client;
}
