/**
 * The uploader's queue, where no browser is needed: held files wait for `release()`, and where
 * there is no XMLHttpRequest (Node) each file fails with a reason rather than throwing. Sending is
 * covered in a real browser by the page's tests (tests/e2e, the controls scenario) and in jsdom
 * against a real server by test/integration/compat.test.tsx. What an answer 429 says is here, with an
 * XMLHttpRequest that answers at once: the real server's Retry-After is out of a page's reach on
 * another origin, as it is in jsdom.
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

/** An XMLHttpRequest that answers every upload with `status` and `headers`, at once. */
function answering(status: number, headers: Record<string, string>, body: string): () => XMLHttpRequest {
  return () => {
    const listeners = new Map<string, () => void>();
    const xhr = {
      status: 0,
      responseText: "",
      upload: { addEventListener: () => undefined },
      addEventListener: (type: string, listener: () => void) => listeners.set(type, listener),
      open: () => undefined,
      setRequestHeader: () => undefined,
      getResponseHeader: (name: string) => headers[name] ?? null,
      send: () => {
        xhr.status = status;
        xhr.responseText = body;
        listeners.get("load")?.();
      },
    };
    return xhr as unknown as XMLHttpRequest;
  };
}

describe("an upload answered 429", () => {
  const throttled = JSON.stringify({ error: { code: "rate_limited", message: "Too many wrong credentials from this address; wait and retry." } });

  it.each([
    ["says for how long, from Retry-After", 429, { "Retry-After": "7" }, "Too many attempts from this address: the server takes no upload from it for 7 s. Try again after that."],
    ["says for a while where Retry-After cannot be read (another origin)", 429, {}, "Too many attempts from this address: the server takes no upload from it for now. Try again later."],
    ["(control: another refusal keeps the server's sentence)", 401, {}, "A valid token is required."],
  ])("%s", async (_name, status, headers, reason) => {
    const body = status === 429 ? throttled : JSON.stringify({ error: { code: "unauthorized", message: "A valid token is required." } });
    const uploader = createUploader({ url: "http://tidings.test", getToken: () => "token", xhr: answering(status, headers, body) });
    const [upload] = uploader.add([file("a.csv")]);
    await new Promise((settled) => setTimeout(settled, 0));
    expect(upload?.state).toBe("failed");
    expect(upload?.error).toBe(reason);
  });
});
