/**
 * One WebSocket connection fed segment by segment into a TcpSource, for the permessage-deflate tests: the handshake
 * with the extensions given, then each direction's frames one segment each, 20 ms apart, any of them left out of
 * the capture on request.
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
}

/** Opens a connection whose 101 carries `extensions` (e.g. `permessage-deflate`), on a TcpSource with `opts`. */
export function wsConnection(
  extensions: string,
  opts: Omit<Partial<TcpSourceOptions>, "emit" | "protocolFor"> = {},
): WsConnection {
  const out: AppMessage[] = [];
  const src = new TcpSource({ protocolFor: () => "websocket", emit: (m) => out.push(m), ...opts });
  const c = new Conn();
  const enc = new TextEncoder();
  src.push(c.syn(0, 0n));
  src.push(c.back(0, "", 0n, TcpFlag.SYN | TcpFlag.ACK));
  const req = enc.encode(upgradeRequest());
  const res = enc.encode(upgradeResponse(extensions));
  src.push(c.seg(1, req, 1n));
  src.push(c.back(1, res, 2n));
  let cseq = 1 + req.length, sseq = 1 + res.length, t = 10n * MS;
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
  };
}
