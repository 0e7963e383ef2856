/** `tidings-client/compat` has the documents' names and shapes (and their snippets compile: ../compat/seed-snippets.tsx). */
import { describe, expectTypeOf, it } from "vitest";

import type { JobClientErrorCode } from "../../src/errors.js";
import {
  getUploadProgressManager,
  liveSystem,
  useFileStatusSocket,
  useFileStatusStore,
  useMultiUploadProgress,
  useUploadProgress,
  type FileStatus,
  type FileStatusState,
  type ProcessingStep,
  type UploadProgress,
  type UploadProgressManager,
} from "../../src/compat/react.js";
import * as seeds from "../compat/seed-snippets.js";

describe("compat types", () => {
  it("spells FileStatus and ProcessingStep as the documents do", () => {
    expectTypeOf<keyof FileStatus>().toEqualTypeOf<
      "fileId" | "filename" | "steps" | "currentStep" | "overallProgress" | "startedAt" | "completedAt" | "error"
    >();
    expectTypeOf<FileStatus["overallProgress"]>().toEqualTypeOf<number>();
    expectTypeOf<FileStatus["completedAt"]>().toEqualTypeOf<number | undefined>();
    expectTypeOf<ProcessingStep["status"]>().toEqualTypeOf<"in_progress" | "complete" | "error">();
    expectTypeOf<UploadProgress["status"]>().toEqualTypeOf<"uploading" | "completed" | "failed">();
  });

  it("takes a number in updateProgress, and a selector in the store hook", () => {
    expectTypeOf<FileStatusState["updateProgress"]>().parameters.toEqualTypeOf<[string, number]>();
    expectTypeOf(useFileStatusStore()).toEqualTypeOf<FileStatusState>();
    expectTypeOf(useFileStatusStore((state) => state.getStatus("a"))).toEqualTypeOf<FileStatus | undefined>();
  });

  it("returns isConnected and emit from useFileStatusSocket", () => {
    const socket = useFileStatusSocket(undefined, undefined, { getToken: () => "t" });
    expectTypeOf(socket.isConnected).toEqualTypeOf<boolean>();
    expectTypeOf(socket.error).toEqualTypeOf<{ code: JobClientErrorCode; message: string } | null>();
    expectTypeOf(socket.emit("cancel", { job_id: "a" })).resolves.toHaveProperty("status");
    // the documents' listing fields: id, type, filename, created_at
    expectTypeOf(socket.emit("list_jobs", {})).resolves.items.toMatchTypeOf<{ id: string; type: string; filename: string | null; created_at: string }>();
    // @ts-expect-error: not a request of the protocol
    void socket.emit("shout", {});
  });

  it("has the upload hooks, the manager and liveSystem", () => {
    expectTypeOf(useMultiUploadProgress(null)).toMatchTypeOf<{
      progressMap: Record<string, UploadProgress>;
      overallPercentage: number;
      allCompleted: boolean;
    }>();
    expectTypeOf(useUploadProgress("a").progress).toEqualTypeOf<UploadProgress | null>();
    expectTypeOf(getUploadProgressManager()).toEqualTypeOf<UploadProgressManager>();
    expectTypeOf(getUploadProgressManager().closeAll).returns.toBeVoid();
    expectTypeOf(liveSystem.uploadFiles).parameter(1).exclude<undefined>().toHaveProperty("onProgress");
    expectTypeOf(seeds.chainUpload).returns.resolves.items.toHaveProperty("success");
  });
});
