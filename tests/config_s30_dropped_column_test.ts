/**
 * A configured column (columns.payload/time/body_size, a stream_key column) that the table has but the
 * stream_filter itself leaves out (select=[...], df[[...]], df.drop) was reported as a column the table does not
 * have, with "did you mean" the very same name: the fix is to keep it in the filter, and the error says so.
 */
import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { ConfigError } from "../config/errors.ts";
import { parseConfigText } from "../config/load.ts";

function errorsOf(text: string): ConfigError {
  let error: ConfigError | undefined;
  throws(() => parseConfigText(text, "c.yaml", { NODE_NAME: "n" }), (e: unknown) => {
    ok(e instanceof ConfigError, String(e));
    error = e;
    return true;
  });
  return error!;
}

for (
  const [how, filter] of [
    [
      "a projection",
      "df = px.DataFrame(table='http_events', start_time='-30s')\n        df = df[['time_', 'upid', 'req_body']]",
    ],
    [
      "select=[...]",
      "df = px.DataFrame(table='http_events', select=['time_', 'upid', 'req_body'], start_time='-30s')",
    ],
    [
      "df.drop",
      "df = px.DataFrame(table='http_events', start_time='-30s')\n        df = df.drop(['req_body_size', 'remote_port'])",
    ],
  ] as const
) {
  Deno.test(`a configured column the stream_filter leaves out (${how}) is said to be left out, with the fix`, () => {
    const e = errorsOf(`measurements:
  - name: m
    signature_rules:
      stream_filter: |
        ${filter}
      columns: { payload: req_body, body_size: req_body_size }
      stream_key: [pod, remote_port]
`);
    deepEqual(e.issues.map((i) => i.path), [
      "measurements[0].signature_rules.columns.body_size",
      "measurements[0].signature_rules.stream_key[1]",
    ]);
    for (const [i, name] of [[0, "req_body_size"], [1, "remote_port"]] as const) {
      const issue = e.issues[i]!;
      equal(
        issue.found,
        `"${name}", which http_events has but the stream_filter leaves out (a select=[...], df[[...]] or ` +
          "df.drop that does not keep it)",
      );
      equal(issue.hint, `keep '${name}' in the stream_filter's columns`);
    }
  });
}

Deno.test("a column the table does not have still gets its did-you-mean", () => {
  const e = errorsOf(`measurements:
  - name: m
    signature_rules:
      stream_filter: |
        df = px.DataFrame(table='http_events', start_time='-30s')
      columns: { payload: req_body, body_size: req_bdy_size }
`);
  equal(e.issues.length, 1);
  equal(e.issues[0]!.found, `"req_bdy_size", which http_events does not have`);
  equal(e.issues[0]!.hint, `did you mean "req_body_size"?`);
});
