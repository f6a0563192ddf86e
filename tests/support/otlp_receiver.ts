/**
 * An OTLP/HTTP trace receiver for tests: `POST /v1/traces` bodies are decoded with protobufjs from the official
 * OpenTelemetry .proto definitions (vendored under report/otlp/proto), the way a collector would, so a test
 * checks the wire format against the specification rather than against our own encoder.
 * @module
 */
import protobuf from "protobufjs";

const PROTO_ROOT = new URL("../../report/otlp/proto/", import.meta.url).pathname;

/** A decoded span, with ids as hex and times as bigint ns. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, string | number | boolean>;
  resource: Record<string, string | number | boolean>;
  scope: string;
}

/** A running receiver. */
export interface OtlpReceiver {
  /** `http://127.0.0.1:<port>` (the endpoint to configure). */
  readonly endpoint: string;
  readonly spans: ReceivedSpan[];
  /** Requests seen, with their content type and `Authorization` header ("" when none). */
  readonly requests: { path: string; contentType: string; authorization: string }[];
  close(): Promise<void>;
}

function hex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

type AnyValue = { stringValue?: string; intValue?: unknown; doubleValue?: number; boolValue?: boolean };

function value(v: AnyValue): string | number | boolean {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.intValue !== undefined) return Number(String(v.intValue));
  return "";
}

function attrs(
  list: { key: string; value: AnyValue }[] | undefined,
): Record<string, string | number | boolean> {
  return Object.fromEntries((list ?? []).map((a) => [a.key, value(a.value)]));
}

/** Options of {@link startOtlpReceiver}. */
export interface OtlpReceiverOptions {
  /**
   * Refuse every export with this HTTP status and a body that echoes the request's `Authorization` header and
   * URL, as a careless collector or proxy might (tests prove the sender never passes such a body on).
   */
  refuseWith?: number;
}

/** Starts a receiver on a free loopback port. */
export async function startOtlpReceiver(opts: OtlpReceiverOptions = {}): Promise<OtlpReceiver> {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => PROTO_ROOT + target;
  await root.load("opentelemetry/proto/collector/trace/v1/trace_service.proto", { keepCase: false });
  const Request = root.lookupType("opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest");
  const Response_ = root.lookupType("opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse");
  const spans: ReceivedSpan[] = [];
  const requests: { path: string; contentType: string; authorization: string }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    requests.push({
      path: url.pathname,
      contentType: req.headers.get("content-type") ?? "",
      authorization: req.headers.get("authorization") ?? "",
    });
    if (req.method !== "POST" || url.pathname !== "/v1/traces") return new Response("", { status: 404 });
    if (opts.refuseWith !== undefined) {
      await req.body?.cancel();
      const auth = req.headers.get("authorization") ?? "(none)";
      return new Response(`refused: Authorization: ${auth} for ${req.url}`, { status: opts.refuseWith });
    }
    const body = new Uint8Array(await req.arrayBuffer());
    // deno-lint-ignore no-explicit-any
    const msg = Request.toObject(Request.decode(body), { longs: String, bytes: Array }) as any;
    for (const rs of msg.resourceSpans ?? []) {
      const resource = attrs(rs.resource?.attributes);
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          spans.push({
            traceId: hex(Uint8Array.from(s.traceId)),
            spanId: hex(Uint8Array.from(s.spanId)),
            parentSpanId: s.parentSpanId ? hex(Uint8Array.from(s.parentSpanId)) : "",
            name: s.name,
            kind: s.kind ?? 0,
            startNs: BigInt(s.startTimeUnixNano),
            endNs: BigInt(s.endTimeUnixNano),
            attributes: attrs(s.attributes),
            resource,
            scope: ss.scope?.name ?? "",
          });
        }
      }
    }
    const out = Response_.encode(Response_.create({})).finish();
    return new Response(out as Uint8Array<ArrayBuffer>, {
      headers: { "content-type": "application/x-protobuf" },
    });
  });
  const addr = server.addr as Deno.NetAddr;
  return {
    endpoint: `http://127.0.0.1:${addr.port}`,
    spans,
    requests,
    close: () => server.shutdown(),
  };
}
