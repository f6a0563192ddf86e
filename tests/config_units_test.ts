import { deepEqual, equal } from "node:assert/strict";
import { wholeTableQuery } from "../config/defaults.ts";
import { ConfigError, formatIssue } from "../config/errors.ts";
import { formatKeyPath } from "../config/problem.ts";
import { didYouMean, editDistance } from "../util/suggest.ts";
import { compilePattern, isUuid, parseByteSize, parseDuration, parseHostPort } from "../config/units.ts";

Deno.test("parseDuration: Go-style units, combined, > 0", () => {
  equal(parseDuration("168h"), 604_800_000);
  equal(parseDuration("7d"), 604_800_000);
  equal(parseDuration("30m"), 1_800_000);
  equal(parseDuration("90s"), 90_000);
  equal(parseDuration("250ms"), 250);
  equal(parseDuration("1h30m"), 5_400_000);
  equal(parseDuration("1.5s"), 1500);
  for (const bad of ["", "7", "7 days", "h", "0s", "-1s", "1w", "1h 30m"]) {
    equal(parseDuration(bad), undefined, bad);
  }
});

Deno.test("parseByteSize: SI and binary units, plain numbers", () => {
  equal(parseByteSize("1GiB"), 1_073_741_824);
  equal(parseByteSize("512MiB"), 536_870_912);
  equal(parseByteSize("100MB"), 100_000_000);
  equal(parseByteSize("1.5KiB"), 1536);
  equal(parseByteSize("4096"), 4096);
  equal(parseByteSize("2 gib"), 2 * 2 ** 30);
  for (const bad of ["", "GiB", "1 parsec", "0", "-1GiB", "1e3"]) equal(parseByteSize(bad), undefined, bad);
});

Deno.test("parseHostPort: names, IPv4, bracketed IPv6, port range", () => {
  deepEqual(parseHostPort("work.withpixie.ai:443"), { host: "work.withpixie.ai", port: 443 });
  deepEqual(parseHostPort("0.0.0.0:9464"), { host: "0.0.0.0", port: 9464 });
  deepEqual(parseHostPort("[::1]:51000"), { host: "::1", port: 51000 });
  deepEqual(parseHostPort("vizier-query-broker-svc.pl.svc:50300"), {
    host: "vizier-query-broker-svc.pl.svc",
    port: 50300,
  });
  equal(parseHostPort("127.0.0.1:0"), undefined);
  deepEqual(parseHostPort("127.0.0.1:0", true), { host: "127.0.0.1", port: 0 });
  for (const bad of ["localhost", ":9464", "host:65536", "host:-1", "::1:80", "a b:80", "host:"]) {
    equal(parseHostPort(bad, true), undefined, bad);
  }
});

Deno.test("isUuid", () => {
  equal(isUuid("9b3c1e0a-52f4-4f7e-9a8e-1c2d3e4f5a6b"), true);
  equal(isUuid("9B3C1E0A-52F4-4F7E-9A8E-1C2D3E4F5A6B"), true);
  equal(isUuid("my-cluster"), false);
  equal(isUuid("9b3c1e0a52f44f7e9a8e1c2d3e4f5a6b"), false);
});

Deno.test("compilePattern counts capturing groups, named included, non-capturing excluded", () => {
  const groups = (p: string) => {
    const c = compilePattern(p);
    return "groups" in c ? c.groups : c.error;
  };
  equal(groups("abc"), 0);
  equal(groups("a(b)c"), 1);
  equal(groups("(?:a|b)(c)"), 1);
  equal(groups("(?<id>[0-9]+)"), 1);
  equal(groups("(a)(b(c))"), 3);
  equal(groups("\\(literal\\)"), 0);
  equal(groups("[(]x[)]"), 0);
  equal(typeof groups("(abc"), "string");
});

Deno.test("didYouMean: close typos only", () => {
  // A tie (one insertion vs one substitution) goes to the earlier candidate.
  equal(didYouMean("ulaw", ["mulaw", "alaw", "pcm16le"]), "mulaw");
  equal(didYouMean("clustr", ["cloud_addr", "cluster", "ca_file"]), "cluster");
  equal(didYouMean("MULAW", ["mulaw", "alaw"]), "mulaw");
  equal(didYouMean("sample_rte", ["sample_rate", "channels"]), "sample_rate");
  equal(didYouMean("url", ["ttl", "uri"]), "uri");
  equal(didYouMean("colour", ["pixie", "nats", "metrics"]), undefined);
  equal(didYouMean("x", []), undefined);
  equal(editDistance("kitten", "sitting"), 3);
  equal(editDistance("", "abc"), 3);
});

Deno.test("wholeTableQuery: the first px.DataFrame call, parentheses inside strings included", () => {
  equal(
    wholeTableQuery("df = px.DataFrame(table='http_events', start_time='-30s')\ndf = df[df.x]"),
    "df = px.DataFrame(table='http_events', start_time='-30s')",
  );
  equal(
    wholeTableQuery("t = px.DataFrame(\n  table=\"a)b\",\n  select=['(', 'x'])\ndf = t"),
    "df = px.DataFrame(\n  table=\"a)b\",\n  select=['(', 'x'])",
  );
  equal(wholeTableQuery("df = px.DataFrame(table='x'"), undefined);
  equal(wholeTableQuery("df = something_else()"), undefined);
});

Deno.test("formatKeyPath and formatIssue", () => {
  equal(
    formatKeyPath(["measurements", 0, "signature_rules", "audio", "codec"]),
    "measurements[0].signature_rules.audio.codec",
  );
  equal(formatKeyPath(["a b", 2]), '["a b"][2]');
  equal(formatKeyPath([]), "");
  equal(
    formatIssue({
      file: "config.yaml",
      line: 12,
      col: 7,
      path: "a.b",
      expected: "x",
      found: "y",
      hint: "did you mean z?",
    }),
    "config.yaml:12:7: a.b: expected x, found y (did you mean z?)",
  );
  equal(
    formatIssue({ file: "f.yaml", line: 0, col: 0, path: "", expected: "x", found: "y" }),
    "f.yaml: expected x, found y",
  );
  const e = new ConfigError([
    { file: "f", line: 3, col: 1, path: "b", expected: "x", found: "y" },
    { file: "f", line: 1, col: 9, path: "a", expected: "x", found: "y" },
  ]);
  deepEqual(e.issues.map((i) => i.path), ["a", "b"]);
  equal(e.name, "ConfigError");
  equal(e.exitCode, 2);
});
