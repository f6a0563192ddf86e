/**
 * A demo capture with every row played again later on new streams: the same recording in later calls, as a load
 * test replaying one file gives (tests of the repeat guard, audio/match/repeats.ts).
 * @module
 */

/** `text` (a capture file) with each row copied `shiftNs` later, with new stream ids, sessions and ports. */
export function replayedLater(text: string, shiftNs: bigint): string {
  const [header, ...lines] = text.trim().split("\n");
  const rows = lines.map((l) => JSON.parse(l) as { query: string; row: Record<string, unknown> });
  const copies = rows.map((r) => {
    const row: Record<string, unknown> = {
      ...r.row,
      time_: String(BigInt(r.row["time_"] as string) + shiftNs),
    };
    if (typeof row["req_body"] === "string") {
      row["req_body"] = (row["req_body"] as string).replace('"streamSid":"MZ', '"streamSid":"MY')
        .replace('"session":"asr-', '"session":"asx-');
    }
    if (typeof row["remote_port"] === "number") row["remote_port"] = (row["remote_port"] as number) + 1000;
    return { ...r, row };
  });
  const all = [...rows, ...copies].sort((a, b) => {
    const d = BigInt(a.row["time_"] as string) - BigInt(b.row["time_"] as string);
    return d < 0n ? -1 : d > 0n ? 1 : 0;
  });
  return [header, ...all.map((r) => JSON.stringify(r))].join("\n") + "\n";
}

/** Whether a record's stream is one of the copies' (its new stream id, port or session). */
export function isCopyStream(stream: string): boolean {
  return stream.includes("|MY") || /\|4[1-9]\d{3}$/.test(stream) || stream.includes("asx-");
}
