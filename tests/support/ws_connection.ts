/**
 * One WebSocket connection fed segment by segment into a TcpSource, for the permessage-deflate tests: the handshake
 * with the extensions given, then each direction's frames one segment each, 20 ms apart, any of them left out of
 * the capture on request, and quiet spells while another flow's packets keep the capture clock moving.
 * @module
 */
import { TcpSource, type TcpSourceOptions } from "../../packets/tcp_source.ts";
import type { AppMessage } from "../../packets/types.ts";
import { TcpFlag } from "../../packets/types.ts";
import { Conn, MS } from "./tcp_segments.ts";
import { upgradeRequest, upgradeResponse } from "./ws_frames.ts";

/** The source, the messages it handed on, and senders of the client's and the server's next frame. */
export interface WsConnection {
  src: TcpSource;
  out: AppMessage[];
  /** Sends the client's next frame (masked by the caller); `lost` leaves it out of the capture. */
  client(frame: Uint8Array, lost?: boolean): void;
  /** Sends the server's next frame; `lost` leaves it out of the capture. */
  server(frame: Uint8Array, lost?: boolean): void;
  /**
   * `ns` of capture time with no packet of this connection, while another TCP flow (one the source ignores) sends
   * a byte every second: the reassembler's sweeps run as on a busy capture, not as in a file quiet everywhere.
   */
  quiet(ns: bigint): void;
  /** The capture time the connection's next packet will carry. */
  now(): bigint;
}

/** The port of the flow that keeps the clock moving during {@link WsConnection.quiet}; not a WebSocket tap. */
export const FILLER_PORT = 9999;

/** Opens a connection whose 101 carries `extensions` (e.g. `permessage-deflate`), on a TcpSource with `opts`. */
export function wsConnection(
  extensions: string,
  opts: Omit<Partial<TcpSourceOptions>, "emit" | "protocolFor"> = {},
): WsConnection {
  const out: AppMessage[] = [];
  const src = new TcpSource({
    protocolFor: (f) => f.srcPort === FILLER_PORT || f.dstPort === FILLER_PORT ? undefined : "websocket",
    emit: (m) => out.push(m),
    ...opts,
  });
  const c = new Conn();
  const enc = new TextEncoder();
  src.push(c.syn(0, 0n));
  src.push(c.back(0, "", 0n, TcpFlag.SYN | TcpFlag.ACK));
  const req = enc.encode(upgradeRequest());
  const res = enc.encode(upgradeResponse(extensions));
  src.push(c.seg(1, req, 1n));
  src.push(c.back(1, res, 2n));
  let cseq = 1 + req.length, sseq = 1 + res.length, t = 10n * MS;
  const filler = new Conn("10.0.0.9", 40009, "10.0.0.8", FILLER_PORT);
  let fseq = 1;
  return {
    src,
    out,
    client(f, lost = false) {
      if (!lost) src.push(c.seg(cseq, f, t));
      cseq += f.length;
      t += 20n * MS;
    },
    server(f, lost = false) {
      if (!lost) src.push(c.back(sseq, f, t));
      sseq += f.length;
      t += 20n * MS;
    },
    quiet(ns) {
      const end = t + ns;
      for (let at = t + 1000n * MS; at < end; at += 1000n * MS) src.push(filler.seg(fseq++, ".", at));
      t = end;
    },
    now: () => t,
  };
}
