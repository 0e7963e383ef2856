// The live page opened through nginx (deploy/nginx.conf) on a port other than 80, in Debian's
// Chromium: run by tests/cluster/test_proxy.py as `node proxy_page.mjs '<json config>'`.
//
// A browser sends its own origin (http://127.0.0.1:<port>) with every Socket.IO request, and
// python-engineio accepts it only when it matches the Host header the node receives: a proxy
// that drops the port from Host gets every websocket and polling POST refused ("... is not an
// accepted origin"), and the page quietly falls back to Server-Sent Events. So this checks that
// the page is live over Socket.IO and that a websocket to /socket.io/ carried frames both ways.

import { check, config, readOverview, run, step, waitUntil } from "../e2e/harness.mjs";

await run(async (open) => {
  const { page } = await open();
  const sockets = [];
  const refused = [];
  page.on("websocket", (ws) => {
    const socket = { url: ws.url(), sent: 0, received: 0 };
    sockets.push(socket);
    ws.on("framesent", () => (socket.sent += 1));
    ws.on("framereceived", () => (socket.received += 1));
  });
  page.on("response", (response) => {
    if (response.url().includes("/socket.io/") && response.status() >= 400) {
      refused.push(`${response.status()} ${response.request().method()} ${response.url()}`);
    }
  });
  step(`open the page through the proxy at ${config.url}`);
  await page.goto(config.url);
  await waitUntil("the badge to say live", () => readOverview(page), (o) => o.badge === "live");
  const overview = await readOverview(page);
  step(`the page is ${overview.badge} ${overview.transport}`);
  check(refused.length === 0, `the proxy's node refused Socket.IO requests: ${refused.join("; ")}`);
  check(overview.transport === "via Socket.IO", `the page fell back: ${overview.transport}`);
  await waitUntil(
    "a websocket to /socket.io/ carrying frames both ways",
    () => Promise.resolve(sockets.filter((s) => s.url.includes("/socket.io/"))),
    (found) => found.some((s) => s.sent > 0 && s.received > 0),
  );
  step(`websockets: ${JSON.stringify(sockets)}`);
});
