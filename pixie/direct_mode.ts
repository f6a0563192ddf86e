/**
 * What a `stream_filter` cannot use against a standalone PEM (`pixie.direct_addr`). The standalone PEM has no
 * Kubernetes metadata at all: pixie-io/pixie src/shared/metadata/standalone_state_manager.cc builds its metadata
 * state with an empty pod name and never accepts Kubernetes updates ("k8s not available in standalone context"),
 * so `df.ctx['pod']`, `['namespace']`, `['service']` and `['node']` read as the empty string and a filter on them
 * matches nothing (a node filter removes every row). It does know its processes (it scans /proc), so
 * `px.upid_to_cmdline(df.upid)` and `px.upid_to_pid(df.upid)` work, and every protocol column (ports, addresses,
 * paths) is there. Config-free: the config loader calls {@link directModeProblems} for each stream_filter when
 * `pixie.direct_addr` is set.
 * @module
 */

import { codeMask } from "./pxl.ts";

/** One use of Kubernetes metadata in a stream_filter, placed in the filter's own text. */
export interface DirectModeProblem {
  /** 1-based line in the stream_filter. */
  line: number;
  /** 1-based column in that line. */
  col: number;
  /** The text found, e.g. `df.ctx['pod']`. */
  found: string;
  /** What is wrong and what to filter on instead. */
  message: string;
}

/** What to filter on instead, for the messages. */
export const DIRECT_MODE_ALTERNATIVES =
  "filter on what the PEM sees instead: ports (df.local_port == 8080, df.remote_port == 5060), " +
  "paths (df.req_path == '/audio', px.contains(df.req_path, '/media')), " +
  "addresses (df.remote_addr == '10.0.0.7'), or the process " +
  "(px.contains(px.upid_to_cmdline(df.upid), 'media-relay'))";

const CTX = /\bctx\s*\[\s*(['"])([^'"]*)\1\s*\]/g;
const K8S_FUNCS =
  /\bpx\s*\.\s*((?:upid_to_|pod_id_to_|pod_name_to_|service_id_to_|service_name_to_)\w*|(?:pod|service|namespace|node|container)_\w+)\s*\(/g;
/** Process functions that still answer on a standalone PEM. */
const PROCESS_FUNCS = new Set([
  "upid_to_cmdline",
  "upid_to_pid",
  "upid_to_exe",
  "upid_to_asid",
  "upid_to_string",
]);

function lineCol(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let start = 0;
  for (let i = 0; i < offset; i++) {
    if (text[i] === "\n") {
      line++;
      start = i + 1;
    }
  }
  return { line, col: offset - start + 1 };
}

/**
 * Every use of Kubernetes metadata in `streamFilter` (code only, not strings or comments), with a message saying
 * why it matches nothing on a standalone PEM and what to filter on instead. Empty when the filter is fine.
 */
export function directModeProblems(streamFilter: string): DirectModeProblem[] {
  const mask = codeMask(streamFilter);
  const out: DirectModeProblem[] = [];
  for (const m of streamFilter.matchAll(CTX)) {
    if (!mask[m.index]) continue;
    const key = m[2]!;
    const found = m[0].replace(/\s+/g, "");
    const why = key === "node" || key === "node_name"
      ? `a standalone PEM only sees its own node, so no node filter is needed, and df.ctx['${key}'] reads as '' ` +
        `there (this filter would remove every row); remove it`
      : `df.ctx['${key}'] reads as '' on a standalone PEM (pixie.direct_addr has no Kubernetes metadata), so ` +
        `this filter matches nothing; ${DIRECT_MODE_ALTERNATIVES}`;
    out.push({ ...lineCol(streamFilter, m.index), found, message: `${found}: ${why}` });
  }
  for (const m of streamFilter.matchAll(K8S_FUNCS)) {
    if (!mask[m.index] || PROCESS_FUNCS.has(m[1]!)) continue;
    const found = `px.${m[1]}`;
    out.push({
      ...lineCol(streamFilter, m.index),
      found,
      message:
        `${found}() needs Kubernetes metadata, which a standalone PEM (pixie.direct_addr) does not have; ` +
        DIRECT_MODE_ALTERNATIVES,
    });
  }
  return out.sort((a, b) => a.line - b.line || a.col - b.col);
}
