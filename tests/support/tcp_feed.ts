/**
 * Feeds a byte stream through a TcpSource as segments of one direction (client to server), for parser tests.
 * @module
 */

import { TcpSource } from "../../packets/tcp_source.ts";
import type { AppMessage, AppProtocol } from "../../packets/types.ts";
import { Conn, MS } from "./tcp_segments.ts";

/** Result of one run. */
export interface FeedResult {
  msgs: AppMessage[];
  skips: Record<string, number>;
}

/**
 * Sends `bytes` from 10.0.0.1:40000 to 10.0.0.2:8080 after a SYN, cut into segments of `step` bytes (1 ms apart);
 * `lose` is a [from, to) byte range never sent (a capture gap); `back` sends server-to-client instead.
 */
export function feed(
  protocol: AppProtocol,
  bytes: Uint8Array | string,
  opts: { step?: number; lose?: [number, number]; back?: boolean; httpResponses?: boolean; max?: number } =
    {},
): FeedResult {
  const b = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  const msgs: AppMessage[] = [];
  const src = new TcpSource({
    protocolFor: () => protocol,
    emit: (m) => msgs.push(m),
    httpResponses: opts.httpResponses,
    maxMessageBytes: opts.max,
  });
  const c = new Conn();
  const send = opts.back ? c.back.bind(c) : c.seg.bind(c);
  const step = opts.step ?? b.length;
  src.push(send(100, "", 0n, 0x02));
  let t = MS;
  for (let o = 0; o < b.length; o += step) {
    const e = Math.min(b.length, o + step);
    let s = o;
    if (opts.lose) {
      const [lf, lt] = opts.lose;
      if (s < lt && e > lf) {
        // Send the parts of this segment outside the lost range.
        if (s < lf) src.push(send(101 + s, b.subarray(s, lf), t));
        s = Math.max(s, lt);
        if (s >= e) continue;
      }
    }
    src.push(send(101 + s, b.subarray(s, e), t));
    t += MS;
  }
  src.finish();
  return { msgs, skips: src.skips.toJSON() };
}

/** Payloads as text. */
export function texts(r: FeedResult): string[] {
  return r.msgs.map((m) => new TextDecoder().decode(m.payload));
}
