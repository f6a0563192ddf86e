/** A standalone PEM (pixie.direct_addr) has no Kubernetes metadata: filters on it are config errors at file:line:col. */
import assert from "node:assert/strict";
import { parseConfigText } from "../config/load.ts";
import { ConfigError } from "../config/errors.ts";

const config = (direct: string, filter: string) =>
  `pixie:
  direct_addr: "${direct}"
measurements:
  - name: m
    signature_rules:
      stream_filter: |
        df = px.DataFrame(table='http_events', start_time='-30s')
        ${filter}
`;

Deno.test("direct mode: a pod filter is an error at its line and column that says what to filter on", () => {
  try {
    parseConfigText(config("127.0.0.1:12345", "df = df[px.contains(df.ctx['pod'], 'relay')]"), "c.yaml", {});
    assert.fail("expected a config error");
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    assert.match(
      e.message,
      /c\.yaml:8:\d+: measurements\[0\]\.signature_rules\.stream_filter: .*standalone PEM/,
    );
    assert.match(e.message, /df\.local_port == 8080/);
  }
});

Deno.test("direct mode: port filters load; with Pixie Cloud the same pod filter loads", () => {
  parseConfigText(config("127.0.0.1:12345", "df = df[df.local_port == 8080]"), "c.yaml", {});
  parseConfigText(config("", "df = df[px.contains(df.ctx['pod'], 'relay')]"), "c.yaml", {});
});
