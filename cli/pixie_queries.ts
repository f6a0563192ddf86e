/**
 * The Pixie queries a sensor runs, derived from the config: one per measurement source and one per stage.
 * @module
 */
import { queryName } from "../util/query_name.ts";
import { configIssue } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import type { ComposedQueryInput } from "../pixie/pxl.ts";
import { SOURCE_TAP } from "../pixie/row.ts";
// Types only: the gRPC client is loaded when a command connects, not by `check` or `analyze`.
import type { PixieClient, PixieConnectOptions } from "../pixie/client.ts";

/**
 * How a query of this config is scoped and labelled: against a standalone PEM (`pixie.direct_addr`) no node scope
 * (its `df.ctx['node']` is '', so a node filter keeps no row) and the pod column from the process; else the
 * defaults (the node scope, `df.ctx['pod']`). Every query sent to Pixie takes it, `discover`'s too.
 */
export function pixieQueryMode(config: Config): Pick<ComposedQueryInput, "scope" | "podSource"> {
  return config.pixie.direct_addr !== "" ? { scope: { kind: "none" }, podSource: "process" } : {};
}

/**
 * Every Pixie query of the config (rules with a `stream_filter`; packet taps are not Pixie's), scoped to `node`.
 * Against a standalone PEM (`pixie.direct_addr`) there is no node scope (the PEM only sees its own node, and its
 * `df.ctx['node']` is '') and the pod column names the process.
 */
export function queriesFromConfig(config: Config, node: string): ComposedQueryInput[] {
  const mode = pixieQueryMode(config);
  const out: ComposedQueryInput[] = [];
  for (const m of config.measurements) {
    const s = m.signature_rules;
    if (s.stream_filter !== undefined) {
      out.push({
        name: queryName(m.name, SOURCE_TAP),
        streamFilter: s.stream_filter,
        node,
        ...mode,
        columns: s.columns,
        streamKeyColumns: s.stream_key,
      });
    }
    for (const r of m.match_rules) {
      if (r.stream_filter === undefined) continue;
      out.push({
        name: queryName(m.name, r.stage),
        streamFilter: r.stream_filter,
        node,
        ...mode,
        columns: r.columns,
        streamKeyColumns: r.stream_key,
      });
    }
  }
  return out;
}

/** Connection options from the `pixie` section: the standalone PEM when `direct_addr` is set, else the cloud. */
export function connectOptions(config: Config): PixieConnectOptions {
  const p = config.pixie;
  if (p.direct_addr !== "") return { mode: "direct", directAddr: p.direct_addr };
  if (p.api_key === "") {
    throw configIssue(
      config,
      ["pixie", "api_key"],
      "a Pixie API key ($PIXIE_API_KEY)",
      "an empty value",
      "or pixie.direct_addr for a standalone PEM",
    );
  }
  return { mode: "cloud", cloudAddr: p.cloud_addr, apiKey: p.api_key, caFile: p.ca_file || undefined };
}

/** Connects to Pixie and resolves the cluster id (ignored by a standalone PEM). */
export async function connectPixie(config: Config): Promise<{ client: PixieClient; clusterId: string }> {
  const options = connectOptions(config);
  const { PixieClient } = await import("../pixie/client.ts");
  const client = await PixieClient.connect(options);
  try {
    const clusterId = client.cloud ? await client.resolveCluster(config.pixie.cluster) : "";
    return { client, clusterId };
  } catch (e) {
    client.close();
    throw e;
  }
}
