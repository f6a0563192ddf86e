/**
 * Run with `--v8-flags=--expose-gc`: the heap one Redis direction holds while a 16 MiB array of empty bulk strings
 * (2.8 million of them, the last one still to come) waits in its buffer, beside what its shared budget charges.
 * The array starts with the bulk string `Deno.args[0]` (a command name, or a reply's first value). Prints
 * `{"heapBytes":…,"chargedBytes":…,"elements":…}`.
 * @module
 */
import { RedisDirection } from "../../packets/redis_proto.ts";
import { ByteBudget } from "../../packets/tcp_reassembly.ts";
import { SkipCounter } from "../../packets/types.ts";

const gc = (globalThis as unknown as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");
const first = Deno.args[0] ?? "DEL";
const elements = Math.floor((16 << 20) / 6) - 16;
const head = new TextEncoder().encode(`*${elements + 1}\r\n$${first.length}\r\n${first}\r\n`);
const el = new TextEncoder().encode("$0\r\n\r\n");
const bytes = new Uint8Array(head.length + el.length * (elements - 1));
bytes.set(head, 0);
for (let i = 0; i < elements - 1; i++) bytes.set(el, head.length + i * el.length);
const budget = new ByteBudget();
const flow = { transport: "tcp" as const, src: "10.0.0.1", srcPort: 40000, dst: "10.0.0.2", dstPort: 6379 };
const dir = new RedisDirection(flow, "s", false, () => {}, new SkipCounter(), { budget });
gc();
const before = Deno.memoryUsage().heapUsed;
for (let o = 0; o < bytes.length; o += 1448) dir.data(bytes.subarray(o, o + 1448), 0n);
gc();
const heapBytes = Deno.memoryUsage().heapUsed - before;
console.log(JSON.stringify({ heapBytes, chargedBytes: budget.used, elements }));
// Kept alive until measured.
dir.close(0n);
