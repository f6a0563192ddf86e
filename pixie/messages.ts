/**
 * Typed, lossless views of the Vizier messages and their wire encoding. 64-bit values become `bigint` (never
 * `number`), STRING cells stay bytes, UInt128 becomes one unsigned 128-bit `bigint`. Both directions exist because
 * the test suite's fake Vizier speaks the same wire format.
 * @module
 */

import type protobuf from "protobufjs";
import { types } from "./proto.ts";
import { fastDecodeExecuteScriptResponse, fastDecodeRowBatch } from "./wire_decode.ts";

/** Pixie's column data types (`px.api.vizierpb.DataType`). */
export const DataType = {
  UNKNOWN: 0,
  BOOLEAN: 1,
  INT64: 2,
  UINT128: 3,
  FLOAT64: 4,
  STRING: 5,
  TIME64NS: 6,
} as const;

/** One column of a row batch, typed by its oneof case. */
export type ColumnData =
  | { readonly type: "boolean"; readonly data: boolean[] }
  | { readonly type: "int64"; readonly data: bigint[] }
  | { readonly type: "uint128"; readonly data: bigint[] }
  | { readonly type: "time64ns"; readonly data: bigint[] }
  | { readonly type: "float64"; readonly data: number[] }
  | { readonly type: "string"; readonly data: Uint8Array[] };

/** `RowBatchData`: one batch of one output table. */
export interface RowBatch {
  tableId: string;
  cols: ColumnData[];
  numRows: number;
  eow: boolean;
  eos: boolean;
}

/** `Relation.ColumnInfo`. */
export interface ColumnInfo {
  name: string;
  /** A {@link DataType} value. */
  type: number;
  desc?: string;
  semanticType?: number;
}

/** `CompilerError`, line and column as Pixie reports them against the script it compiled. */
export interface CompilerErrorDetail {
  line: number;
  column: number;
  message: string;
}

/** `Status` carried in a response (code 0 is OK). */
export interface PixieStatus {
  code: number;
  message: string;
  compilerErrors: CompilerErrorDetail[];
}

/** `QueryExecutionStats`. */
export interface QueryStats {
  executionTimeNs: bigint;
  compilationTimeNs: bigint;
  bytesProcessed: bigint;
  recordsProcessed: bigint;
}

/** `QueryMetadata`: announces one output table. */
export interface TableMetadata {
  id: string;
  name: string;
  relation: ColumnInfo[];
}

/** `ExecuteScriptResponse`, flattened: at most one of metaData, batch, encryptedBatch, stats is set. */
export interface ExecuteScriptResponse {
  queryId: string;
  status?: PixieStatus;
  metaData?: TableMetadata;
  batch?: RowBatch;
  /** A compact JWE holding a serialized RowBatchData. */
  encryptedBatch?: Uint8Array;
  stats?: QueryStats;
  /**
   * Set (to why) instead of the rest when the message could not be decoded (PixieClient.execute): the stream
   * counts it and skips it.
   */
  malformed?: string;
}

/** `ExecuteScriptRequest.EncryptionOptions`. */
export interface EncryptionOptions {
  jwkKey: string;
  keyAlg: string;
  contentAlg: string;
  compressionAlg: string;
}

/** `ExecuteScriptRequest` (the fields fsm-px uses). */
export interface ExecuteScriptRequest {
  queryStr: string;
  clusterId: string;
  queryId?: string;
  queryName?: string;
  encryption?: EncryptionOptions;
}

/** `px.cloudapi.ClusterInfo` (the fields fsm-px uses). */
export interface ClusterInfo {
  /** UUID with dashes. */
  id: string;
  /** 1 is CS_HEALTHY. */
  status: number;
  clusterName: string;
  prettyClusterName: string;
  vizierVersion: string;
}

type Obj = Record<string, unknown>;

const U64 = (1n << 64n) - 1n;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null;
}

/** Converts a protobufjs 64-bit value (Long, number or decimal string) to a bigint without losing precision. */
export function longToBigInt(v: unknown, unsigned = false): bigint {
  if (typeof v === "bigint") return v;
  if (typeof v === "number") return BigInt(Math.trunc(v));
  if (typeof v === "string") return BigInt(v);
  if (isObj(v) && typeof v.high === "number" && typeof v.low === "number") {
    const hi = unsigned || v.unsigned === true ? BigInt(v.high >>> 0) : BigInt(v.high | 0);
    const value = (hi << 32n) | BigInt(v.low >>> 0);
    return unsigned ? BigInt.asUintN(64, value) : BigInt.asIntN(64, value);
  }
  return 0n;
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

function bool(v: unknown): boolean {
  return v === true;
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function bytes(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) {
    // protobufjs hands out Node Buffers that view a shared pool; copy into a plain, exact Uint8Array.
    return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  }
  return new Uint8Array(0);
}

function decodeColumn(c: Obj): ColumnData {
  const which = c.col_data;
  const inner = which && isObj(c[String(which)]) ? (c[String(which)] as Obj).data : undefined;
  switch (which) {
    case "boolean_data":
      return { type: "boolean", data: arr(inner).map(bool) };
    case "int64_data":
      return { type: "int64", data: arr(inner).map((x) => longToBigInt(x)) };
    case "time64ns_data":
      return { type: "time64ns", data: arr(inner).map((x) => longToBigInt(x)) };
    case "float64_data":
      return { type: "float64", data: arr(inner).map((x) => (typeof x === "number" ? x : NaN)) };
    case "string_data":
      return { type: "string", data: arr(inner).map(bytes) };
    case "uint128_data":
      return {
        type: "uint128",
        data: arr(inner).map((x) => {
          const o = isObj(x) ? x : {};
          return (longToBigInt(o.high, true) << 64n) | longToBigInt(o.low, true);
        }),
      };
    default:
      throw new Error(`column without data (case ${String(which)})`);
  }
}

function rowBatchFromObj(b: Obj): RowBatch {
  const rows = longToBigInt(b.num_rows);
  if (rows < 0n || rows > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`bad num_rows ${rows}`);
  return {
    tableId: str(b.table_id),
    cols: arr(b.cols).map((c) => decodeColumn(isObj(c) ? c : {})),
    numRows: Number(rows),
    eow: bool(b.eow),
    eos: bool(b.eos),
  };
}

function columnToObj(c: ColumnData): Obj {
  switch (c.type) {
    case "boolean":
      return { boolean_data: { data: c.data } };
    case "int64":
      return { int64_data: { data: c.data.map((x) => BigInt.asIntN(64, x).toString()) } };
    case "time64ns":
      return { time64ns_data: { data: c.data.map((x) => BigInt.asIntN(64, x).toString()) } };
    case "float64":
      return { float64_data: { data: c.data } };
    case "string":
      return { string_data: { data: c.data } };
    case "uint128":
      return {
        uint128_data: {
          data: c.data.map((x) => ({ high: ((x >> 64n) & U64).toString(), low: (x & U64).toString() })),
        },
      };
  }
}

function rowBatchToObj(b: RowBatch): Obj {
  return {
    table_id: b.tableId,
    cols: b.cols.map(columnToObj),
    num_rows: String(b.numRows),
    eow: b.eow,
    eos: b.eos,
  };
}

function encode(type: protobuf.Type, obj: Obj): Uint8Array {
  const buf = type.encode(type.fromObject(obj)).finish();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

function decode(type: protobuf.Type, data: Uint8Array): Obj {
  return type.decode(data) as unknown as Obj;
}

/**
 * Decodes a serialized RowBatchData (the plaintext of an encrypted batch). STRING cells are views into `data`,
 * which must not change afterwards.
 */
export function decodeRowBatch(data: Uint8Array): RowBatch {
  return fastDecodeRowBatch(data) ?? decodeRowBatchReference(data);
}

/** {@link decodeRowBatch} through protobufjs: what the hand-written decoder must agree with (tests). */
export function decodeRowBatchReference(data: Uint8Array): RowBatch {
  return rowBatchFromObj(decode(types.rowBatchData, data));
}

/** Serializes a RowBatchData. */
export function encodeRowBatch(b: RowBatch): Uint8Array {
  return encode(types.rowBatchData, rowBatchToObj(b));
}

function statusFromObj(s: Obj): PixieStatus {
  const compilerErrors: CompilerErrorDetail[] = [];
  for (const d of arr(s.error_details)) {
    if (!isObj(d) || !isObj(d.compiler_error)) continue;
    const ce = d.compiler_error;
    compilerErrors.push({
      line: Number(longToBigInt(ce.line, true)),
      column: Number(longToBigInt(ce.column, true)),
      message: str(ce.message),
    });
  }
  return { code: typeof s.code === "number" ? s.code : 0, message: str(s.message), compilerErrors };
}

function statusToObj(s: PixieStatus): Obj {
  return {
    code: s.code,
    message: s.message,
    error_details: s.compilerErrors.map((e) => ({
      compiler_error: { line: String(e.line), column: String(e.column), message: e.message },
    })),
  };
}

/**
 * Decodes an ExecuteScriptResponse. A batch's STRING cells are views into `data` (grpc-js gives every message a
 * buffer of its own), which must not change afterwards.
 */
export function decodeExecuteScriptResponse(data: Uint8Array): ExecuteScriptResponse {
  return fastDecodeExecuteScriptResponse(data) ?? decodeExecuteScriptResponseReference(data);
}

/** {@link decodeExecuteScriptResponse} through protobufjs: every response the fast path leaves (tests compare). */
export function decodeExecuteScriptResponseReference(data: Uint8Array): ExecuteScriptResponse {
  const m = decode(types.executeScriptResponse, data);
  const out: ExecuteScriptResponse = { queryId: str(m.query_id) };
  if (isObj(m.status)) out.status = statusFromObj(m.status);
  if (m.result === "meta_data" && isObj(m.meta_data)) {
    const md = m.meta_data;
    const rel = isObj(md.relation) ? arr(md.relation.columns) : [];
    out.metaData = {
      id: str(md.id),
      name: str(md.name),
      relation: rel.map((c) => {
        const o = isObj(c) ? c : {};
        return {
          name: str(o.column_name),
          type: typeof o.column_type === "number" ? o.column_type : 0,
          desc: str(o.column_desc),
          semanticType: typeof o.column_semantic_type === "number" ? o.column_semantic_type : 0,
        };
      }),
    };
  } else if (m.result === "data" && isObj(m.data)) {
    const d = m.data;
    if (isObj(d.batch)) out.batch = rowBatchFromObj(d.batch);
    if (d.encrypted_batch instanceof Uint8Array && d.encrypted_batch.byteLength > 0) {
      out.encryptedBatch = bytes(d.encrypted_batch);
    }
    if (isObj(d.execution_stats)) {
      const st = d.execution_stats;
      const t = isObj(st.timing) ? st.timing : {};
      out.stats = {
        executionTimeNs: longToBigInt(t.execution_time_ns),
        compilationTimeNs: longToBigInt(t.compilation_time_ns),
        bytesProcessed: longToBigInt(st.bytes_processed),
        recordsProcessed: longToBigInt(st.records_processed),
      };
    }
  }
  return out;
}

/** Serializes an ExecuteScriptResponse. */
export function encodeExecuteScriptResponse(r: ExecuteScriptResponse): Uint8Array {
  const obj: Obj = { query_id: r.queryId };
  if (r.status) obj.status = statusToObj(r.status);
  if (r.metaData) {
    obj.meta_data = {
      id: r.metaData.id,
      name: r.metaData.name,
      relation: {
        columns: r.metaData.relation.map((c) => ({
          column_name: c.name,
          column_type: c.type,
          column_desc: c.desc ?? "",
          column_semantic_type: c.semanticType ?? 0,
        })),
      },
    };
  } else if (r.batch || r.encryptedBatch || r.stats) {
    const data: Obj = {};
    if (r.batch) data.batch = rowBatchToObj(r.batch);
    if (r.encryptedBatch) data.encrypted_batch = r.encryptedBatch;
    if (r.stats) {
      data.execution_stats = {
        timing: {
          execution_time_ns: r.stats.executionTimeNs.toString(),
          compilation_time_ns: r.stats.compilationTimeNs.toString(),
        },
        bytes_processed: r.stats.bytesProcessed.toString(),
        records_processed: r.stats.recordsProcessed.toString(),
      };
    }
    obj.data = data;
  }
  return encode(types.executeScriptResponse, obj);
}

/** Serializes an ExecuteScriptRequest. */
export function encodeExecuteScriptRequest(r: ExecuteScriptRequest): Uint8Array {
  const obj: Obj = { query_str: r.queryStr, cluster_id: r.clusterId };
  if (r.queryId) obj.query_id = r.queryId;
  if (r.queryName) obj.query_name = r.queryName;
  if (r.encryption) {
    obj.encryption_options = {
      jwk_key: r.encryption.jwkKey,
      key_alg: r.encryption.keyAlg,
      content_alg: r.encryption.contentAlg,
      compression_alg: r.encryption.compressionAlg,
    };
  }
  return encode(types.executeScriptRequest, obj);
}

/** Decodes an ExecuteScriptRequest. */
export function decodeExecuteScriptRequest(data: Uint8Array): ExecuteScriptRequest {
  const m = decode(types.executeScriptRequest, data);
  const out: ExecuteScriptRequest = { queryStr: str(m.query_str), clusterId: str(m.cluster_id) };
  if (str(m.query_id)) out.queryId = str(m.query_id);
  if (str(m.query_name)) out.queryName = str(m.query_name);
  if (isObj(m.encryption_options)) {
    const e = m.encryption_options;
    out.encryption = {
      jwkKey: str(e.jwk_key),
      keyAlg: str(e.key_alg),
      contentAlg: str(e.content_alg),
      compressionAlg: str(e.compression_alg),
    };
  }
  return out;
}

/** Serializes a HealthCheckRequest. */
export function encodeHealthCheckRequest(clusterId: string): Uint8Array {
  return encode(types.healthCheckRequest, { cluster_id: clusterId });
}

/** Decodes a HealthCheckRequest to its cluster id. */
export function decodeHealthCheckRequest(data: Uint8Array): string {
  return str(decode(types.healthCheckRequest, data).cluster_id);
}

/** Serializes a HealthCheckResponse. */
export function encodeHealthCheckResponse(status: PixieStatus): Uint8Array {
  return encode(types.healthCheckResponse, { status: statusToObj(status) });
}

/** Decodes a HealthCheckResponse to its status (code 0 when absent). */
export function decodeHealthCheckResponse(data: Uint8Array): PixieStatus {
  const m = decode(types.healthCheckResponse, data);
  return isObj(m.status) ? statusFromObj(m.status) : { code: 0, message: "", compilerErrors: [] };
}

/** Formats 64+64 bits as a UUID string (high then low, big-endian). */
export function uuidFromParts(high: bigint, low: bigint): string {
  const hex = ((BigInt.asUintN(64, high) << 64n) | BigInt.asUintN(64, low)).toString(16).padStart(32, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Formats an unsigned 128-bit value as a UUID string. */
export function uuidFromU128(v: bigint): string {
  return uuidFromParts(v >> 64n, v & U64);
}

/** A UUID in its canonical dashed form (any case). */
export const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Parses a dashed UUID string to its 64-bit halves; undefined if it is not one. */
export function uuidToParts(uuid: string): { high: bigint; low: bigint } | undefined {
  if (!UUID_RE.test(uuid)) return undefined;
  const hex = uuid.replaceAll("-", "");
  return { high: BigInt("0x" + hex.slice(0, 16)), low: BigInt("0x" + hex.slice(16)) };
}

/** Serializes a GetClusterInfoRequest; no id lists every cluster the key can see. */
export function encodeGetClusterInfoRequest(id?: string): Uint8Array {
  const parts = id ? uuidToParts(id) : undefined;
  return encode(
    types.getClusterInfoRequest,
    parts ? { id: { high_bits: parts.high.toString(), low_bits: parts.low.toString() } } : {},
  );
}

/** Decodes a GetClusterInfoRequest to its id, if any. */
export function decodeGetClusterInfoRequest(data: Uint8Array): string | undefined {
  const m = decode(types.getClusterInfoRequest, data);
  if (!isObj(m.id)) return undefined;
  return uuidFromParts(longToBigInt(m.id.high_bits, true), longToBigInt(m.id.low_bits, true));
}

/** Serializes a GetClusterInfoResponse. */
export function encodeGetClusterInfoResponse(clusters: ClusterInfo[]): Uint8Array {
  return encode(types.getClusterInfoResponse, {
    clusters: clusters.map((c) => {
      const p = uuidToParts(c.id) ?? { high: 0n, low: 0n };
      return {
        id: { high_bits: p.high.toString(), low_bits: p.low.toString() },
        status: c.status,
        cluster_name: c.clusterName,
        pretty_cluster_name: c.prettyClusterName,
        vizier_version: c.vizierVersion,
      };
    }),
  });
}

/** Decodes a GetClusterInfoResponse. */
export function decodeGetClusterInfoResponse(data: Uint8Array): ClusterInfo[] {
  const m = decode(types.getClusterInfoResponse, data);
  return arr(m.clusters).map((c) => {
    const o = isObj(c) ? c : {};
    const id = isObj(o.id)
      ? uuidFromParts(longToBigInt(o.id.high_bits, true), longToBigInt(o.id.low_bits, true))
      : "";
    return {
      id,
      status: typeof o.status === "number" ? o.status : 0,
      clusterName: str(o.cluster_name),
      prettyClusterName: str(o.pretty_cluster_name),
      vizierVersion: str(o.vizier_version),
    };
  });
}
