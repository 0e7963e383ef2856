/**
 * The uploader's queue, where no browser is needed: held files wait for `release()`, and where
 * there is no XMLHttpRequest (Node) each file fails with a reason rather than throwing. Sending is
 * covered in a real browser by the page's tests (tests/e2e, the controls scenario) and in jsdom
 * against a real server by test/integration/compat.test.tsx.
 */
import { describe, expect, it } from "vitest";

import { createUploader, type Upload } from "../../src/upload.js";

const file = (name: string) => new File(["a,b\n1,2\n"], name);

describe("createUploader", () => {
  it("holds files until release(), then fails each for want of XMLHttpRequest, in order", async () => {
    expect(typeof XMLHttpRequest).toBe("undefined");
    const changes: string[] = [];
    const uploader = createUploader({ url: "http://tidings.test", concurrency: 1, onChange: (u: Upload) => changes.push(`${u.name} ${u.state}`) });
    const uploads = uploader.add([file("a.csv"), file("b.csv")], { hold: true });
    expect(uploader.held).toBe(2);
    expect(uploads.map((upload) => upload.state)).toEqual(["waiting", "waiting"]);
    expect(changes).toEqual(["a.csv waiting", "b.csv waiting"]);
    expect(uploader.release()).toBe(2);
    await new Promise((settled) => setTimeout(settled, 0));
    expect(uploads.map((upload) => upload.state)).toEqual(["failed", "failed"]);
    expect(uploads[0]?.error).toMatch(/^The upload could not start: .*XMLHttpRequest/);
    expect(uploads.every((upload) => upload.finishedAt !== null)).toBe(true);
    expect(uploader.active).toBe(0);
  });

  it("cancels a held file without sending it (control: the other still goes)", async () => {
    const uploader = createUploader({ url: "http://tidings.test" });
    const [kept, dropped] = uploader.add([file("kept.csv"), file("dropped.csv")], { hold: true });
    uploader.cancel(dropped as Upload);
    expect(dropped?.state).toBe("cancelled");
    expect(uploader.held).toBe(1);
    expect(uploader.release()).toBe(1);
    await new Promise((settled) => setTimeout(settled, 0));
    expect(kept?.state).toBe("failed");
    expect(dropped?.state).toBe("cancelled");
  });
});
