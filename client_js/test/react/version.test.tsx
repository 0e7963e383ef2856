import { version } from "react";
import { version as domVersion } from "react-dom";
import { expect, it } from "vitest";

it("runs on the React it is meant to (18 under test:react18, 19 otherwise)", () => {
  const major = Number(version.split(".")[0]);
  expect(major).toBeGreaterThanOrEqual(18);
  expect(domVersion).toBe(version);
  const expected = process.env["EXPECT_REACT_MAJOR"];
  if (expected !== undefined) expect(major).toBe(Number(expected));
});
