/**
 * The metrics and UI servers on an IPv6 address: their `addr` (logged as `http://<addr>/metrics`, and the UI's
 * `url` printed to open) brackets the host. Before, `[::1]:0` gave `::1:<port>` and `http://::1:<port>/`, no
 * valid URL.
 */
import { equal } from "node:assert/strict";
import { FsmMetrics } from "../http/metrics.ts";
import { formatHostPort, parseListen, startHttpServer } from "../http/server.ts";
import { startUiServer } from "../http/ui_server.ts";
import { RecordStore } from "../http/ui/store.ts";

/** IPv6 loopback is not configured everywhere (some containers): the test needs it. */
function hasIpv6Loopback(): boolean {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}

Deno.test("host:port of a bound address brackets an IPv6 host, and parseListen reads it back", () => {
  equal(formatHostPort({ hostname: "127.0.0.1", port: 9464 }), "127.0.0.1:9464");
  equal(formatHostPort({ hostname: "::", port: 9464 }), "[::]:9464");
  equal(formatHostPort({ hostname: "fe80::1", port: 80 }), "[fe80::1]:80");
  equal(parseListen(formatHostPort({ hostname: "::1", port: 9464 })).hostname, "::1");
});

Deno.test({
  name: "metrics and UI servers on [::1]: their addr and url are URLs that reach them",
  ignore: !hasIpv6Loopback(),
  async fn() {
    const http = startHttpServer({
      listen: "[::1]:0",
      metrics: new FsmMetrics({ rss: () => 0 }),
      healthz: () => ({ ok: true, detail: "actors running" }),
      readyz: () => ({ ok: true, detail: "ready" }),
    });
    const ui = startUiServer({ listen: "[::1]:0", store: new RecordStore() });
    try {
      equal(http.addr, `[::1]:${http.port}`);
      const health = await fetch(`http://${http.addr}/healthz`);
      equal(health.status, 200);
      await health.body?.cancel();
      equal(ui.url, `http://${ui.addr}/`);
      const page = await fetch(ui.url);
      equal(page.status, 200);
      await page.body?.cancel();
    } finally {
      await ui.close();
      await http.close();
    }
  },
});
