/**
 * Pixie's Vizier and cloud API as protobuf definitions, written from the public field numbers and loaded at run
 * time with protobufjs. The text lives in this module (not a .proto file) so no read permission is needed.
 *
 * Deliberate departures from upstream's .proto: `StringColumn.data` is `bytes` (same wire type as `string`, but
 * bodies may be binary and must survive as bytes), and semantic types are plain `int32` (same wire encoding as an
 * enum; unknown values are kept).
 * @module
 */

import protobuf from "protobufjs";

const UUIDPB = `
syntax = "proto3";
package px.uuidpb;
message UUID {
  uint64 high_bits = 2;
  uint64 low_bits = 3;
}
`;

const VIZIERPB = `
syntax = "proto3";
package px.api.vizierpb;

enum DataType {
  DATA_TYPE_UNKNOWN = 0;
  BOOLEAN = 1;
  INT64 = 2;
  UINT128 = 3;
  FLOAT64 = 4;
  STRING = 5;
  TIME64NS = 6;
}

message UInt128 { uint64 low = 1; uint64 high = 2; }
message BooleanColumn { repeated bool data = 1; }
message Int64Column { repeated int64 data = 1; }
message UInt128Column { repeated UInt128 data = 1; }
message Float64Column { repeated double data = 1; }
message Time64NSColumn { repeated int64 data = 1; }
message StringColumn { repeated bytes data = 1; }

message Column {
  oneof col_data {
    BooleanColumn boolean_data = 1;
    Int64Column int64_data = 2;
    UInt128Column uint128_data = 3;
    Time64NSColumn time64ns_data = 4;
    Float64Column float64_data = 5;
    StringColumn string_data = 6;
  }
}

message RowBatchData {
  string table_id = 5;
  repeated Column cols = 1;
  int64 num_rows = 2;
  bool eow = 3;
  bool eos = 4;
}

message Relation {
  message ColumnInfo {
    string column_name = 1;
    DataType column_type = 2;
    string column_desc = 3;
    int32 column_semantic_type = 4;
  }
  repeated ColumnInfo columns = 1;
}

message CompilerError {
  uint64 line = 1;
  uint64 column = 2;
  string message = 3;
}

message ErrorDetails {
  oneof error {
    CompilerError compiler_error = 1;
  }
}

message Status {
  int32 code = 1;
  string message = 2;
  repeated ErrorDetails error_details = 4;
}

message ExecuteScriptRequest {
  string query_str = 1;
  string cluster_id = 3;
  message FuncToExecute {
    string func_name = 1;
    message ArgValue {
      string name = 1;
      string value = 2;
    }
    repeated ArgValue arg_values = 2;
    string output_table_prefix = 3;
  }
  repeated FuncToExecute exec_funcs = 4;
  bool mutation = 5;
  message EncryptionOptions {
    string jwk_key = 1;
    string key_alg = 2;
    string content_alg = 3;
    string compression_alg = 4;
  }
  EncryptionOptions encryption_options = 6;
  string query_id = 7;
  string query_name = 10;
}

message QueryTimingInfo {
  int64 execution_time_ns = 1;
  int64 compilation_time_ns = 2;
}

message QueryExecutionStats {
  QueryTimingInfo timing = 1;
  int64 bytes_processed = 2;
  int64 records_processed = 3;
}

message QueryMetadata {
  Relation relation = 1;
  string name = 2;
  string id = 3;
}

message QueryData {
  RowBatchData batch = 1;
  bytes encrypted_batch = 3;
  QueryExecutionStats execution_stats = 2;
}

message MutationInfo {
  Status status = 1;
}

message ExecuteScriptResponse {
  Status status = 1;
  string query_id = 2;
  oneof result {
    QueryData data = 3;
    QueryMetadata meta_data = 4;
  }
  MutationInfo mutation_info = 5;
}

message HealthCheckRequest { string cluster_id = 1; }
message HealthCheckResponse { Status status = 1; }

service VizierService {
  rpc ExecuteScript(ExecuteScriptRequest) returns (stream ExecuteScriptResponse);
  rpc HealthCheck(HealthCheckRequest) returns (stream HealthCheckResponse);
}
`;

const CLOUDAPI = `
syntax = "proto3";
package px.cloudapi;

message GetClusterInfoRequest {
  .px.uuidpb.UUID id = 1;
}

message ClusterInfo {
  .px.uuidpb.UUID id = 1;
  int32 status = 2;
  string cluster_name = 6;
  string vizier_version = 8;
  string pretty_cluster_name = 9;
}

message GetClusterInfoResponse {
  repeated ClusterInfo clusters = 1;
}

service VizierClusterInfo {
  rpc GetClusterInfo(GetClusterInfoRequest) returns (GetClusterInfoResponse);
}
`;

/** Full gRPC method paths. */
export const METHODS = {
  executeScript: "/px.api.vizierpb.VizierService/ExecuteScript",
  healthCheck: "/px.api.vizierpb.VizierService/HealthCheck",
  getClusterInfo: "/px.cloudapi.VizierClusterInfo/GetClusterInfo",
} as const;

/** `ClusterInfo.status` value of a healthy cluster (CS_HEALTHY). */
export const CLUSTER_STATUS_HEALTHY = 1;

function load(): protobuf.Root {
  const root = new protobuf.Root();
  for (const text of [UUIDPB, VIZIERPB, CLOUDAPI]) protobuf.parse(text, root, { keepCase: true });
  root.resolveAll();
  return root;
}

const root = load();

/** The message types fsm-px encodes or decodes, resolved once at module load. */
export const types = {
  uuid: root.lookupType("px.uuidpb.UUID"),
  rowBatchData: root.lookupType("px.api.vizierpb.RowBatchData"),
  executeScriptRequest: root.lookupType("px.api.vizierpb.ExecuteScriptRequest"),
  executeScriptResponse: root.lookupType("px.api.vizierpb.ExecuteScriptResponse"),
  healthCheckRequest: root.lookupType("px.api.vizierpb.HealthCheckRequest"),
  healthCheckResponse: root.lookupType("px.api.vizierpb.HealthCheckResponse"),
  getClusterInfoRequest: root.lookupType("px.cloudapi.GetClusterInfoRequest"),
  getClusterInfoResponse: root.lookupType("px.cloudapi.GetClusterInfoResponse"),
} as const;
