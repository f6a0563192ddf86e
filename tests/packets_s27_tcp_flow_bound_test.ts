/**
 * At the flow bound the reassembler makes room by ending a direction that has been quiet the longest, not the one
 * created first: a long call on a busy node is the oldest direction there is, and it was ended (reopened mid-stream
 * at its next packet, its parser's state lost: a permessage-deflate WebSocket silent from then on) in favour of
 * directions that had carried one packet and nothing since.
 * Real parts: TcpReassembler with recording sinks.
 */
import assert from "node:assert/strict";
import { TcpReassembler } from "../packets/tcp_reassembly.ts";
import { SkipCounter } from "../packets/types.ts";
import { Conn, MS, RecordingSink } from "./support/tcp_segments.ts";

function recorder(maxFlows: number) {
  const sinks: RecordingSink[] = [];
  const skips = new SkipCounter();
  const r = new TcpReassembler(
    (info) => {
      const s = new RecordingSink(info);
      sinks.push(s);
      return s;
    },
    skips,
    { maxFlows },
  );
  return { r, sinks, skips };
}

const closed = (s: RecordingSink) => s.events.some((e) => e.kind === "close");

Deno.test("TCP flow bound: the busy call created first outlives quiet directions created after it", () => {
  const { r, sinks, skips } = recorder(4);
  const call = new Conn("10.0.0.1", 40000);
  let seq = 1;
  let t = 0n;
  const media = () => {
    r.push(call.seg(seq, "m;", t));
    seq += 2;
  };
  media();
  // Three one-packet directions (a probe, a health check, a scanner), the call going on between them.
  for (let i = 1; i <= 3; i++) {
    t += 20n * MS;
    r.push(new Conn(`10.0.1.${i}`, 50000).seg(1, "x", t));
    t += 20n * MS;
    media();
  }
  // A fourth: one direction has to go.
  t += 20n * MS;
  r.push(new Conn("10.0.1.4", 50000).seg(1, "x", t));
  t += 20n * MS;
  media();
  assert.equal(skips.counts.get("tcp_flow_evicted"), 1);
  assert.equal(sinks.length, 5, "the call was not reopened");
  assert.ok(!closed(sinks[0]!), "the call is still open");
  assert.equal(sinks[0]!.text(), "m;".repeat(5));
  assert.ok(closed(sinks[1]!), "the direction quiet the longest was ended");
  assert.ok(!closed(sinks[2]!) && !closed(sinks[3]!) && !closed(sinks[4]!));
});

Deno.test("TCP flow bound: with every direction active, the least recently active goes; a flood of new ones passes the calls by", () => {
  const { r, sinks } = recorder(100);
  const calls = Array.from({ length: 10 }, (_, i) => new Conn(`10.0.0.${i + 1}`, 40000));
  const seqs = calls.map(() => 1);
  let t = 0n;
  let flood = 0;
  // 10 calls sending every 20 ms; between their packets, 50 new one-packet directions (the bound is 100).
  for (let round = 0; round < 50; round++) {
    for (const [i, c] of calls.entries()) {
      r.push(c.seg(seqs[i]!, "m;", t));
      seqs[i]! += 2;
    }
    for (let k = 0; k < 50; k++, flood++) {
      r.push(new Conn(`10.1.${flood >> 8}.${flood & 255}`, 50000).seg(1, "x", t + BigInt(k) * 100_000n));
    }
    t += 20n * MS;
  }
  assert.equal(r.flowCount, 100);
  for (let i = 0; i < calls.length; i++) {
    assert.ok(!closed(sinks[i]!), `call ${i} kept`);
    assert.equal(sinks[i]!.text(), "m;".repeat(50));
  }
});
