/**
 * The UI server's methods: HEAD is answered as GET (head only), and a 405 says what is allowed. Before, every
 * HEAD (an uptime check, `curl -I`) got 405, and no 405 carried the `Allow` header HTTP requires.
 */
import { equal } from "node:assert/strict";
import { RecordStore } from "../http/ui/store.ts";
import { startUiServer } from "../http/ui_server.ts";

Deno.test("ui server: HEAD is answered like GET without a body; other methods get 405 with Allow", async () => {
  const ui = startUiServer({ listen: "127.0.0.1:0", store: new RecordStore(), eventIntervalMs: 50 });
  try {
    for (const path of ["", "app.js", "api/info", "api/overview", "api/health", "api/events"]) {
      const head = await fetch(ui.url + path, { method: "HEAD" });
      equal(head.status, 200, `HEAD /${path}`);
      equal(await head.text(), "", `HEAD /${path} has no body`);
      if (path !== "api/events") {
        const get = await fetch(ui.url + path);
        equal(head.headers.get("content-type"), get.headers.get("content-type"), `HEAD /${path}`);
        await get.body?.cancel();
      } else equal(head.headers.get("content-type"), "text/event-stream");
    }
    equal((await fetch(ui.url + "nope", { method: "HEAD" })).status, 404);
    for (const method of ["POST", "PUT", "DELETE", "OPTIONS"]) {
      const res = await fetch(ui.url + "api/info", { method });
      equal(res.status, 405, method);
      equal(res.headers.get("allow"), "GET, HEAD", method);
      await res.body?.cancel();
    }
  } finally {
    await ui.close();
  }
});
