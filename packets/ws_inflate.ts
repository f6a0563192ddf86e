/**
 * One WebSocket direction's permessage-deflate decompressor kept across messages (RFC 7692): the LZ77 history
 * context takeover needs stays in the inflater's own 32 KiB window, so a message costs its own bytes. Inflating
 * each message afresh with its 32 KiB history put in front (what `node:zlib`'s one-shot API allows: Deno's raw
 * inflate ignores a `dictionary`) went through the whole history twice a message, in and out, and cost ~3.5x more
 * on Twilio-sized messages (`deno run -A bench/packets_ws_speed.ts --deflate`).
 *
 * pako's zlib port is used at its low level: its streaming class allocates an output chunk per call and copies
 * each message once more. The output goes to a scratch buffer shared by all directions (inflating is synchronous),
 * grown only as far as a message needs, up to {@link SCRATCH_KEEP}.
 * @module
 */

import {
  Z_BUF_ERROR,
  Z_OK,
  Z_STREAM_END,
  Z_SYNC_FLUSH,
  zlibInflate,
  zlibInflateEnd,
  zlibInflateInit2,
  zlibInflateReset,
  zlibInflateResetKeep,
  zlibInflateSetDictionary,
  ZStream,
} from "pako";

/** The LZ77 window permessage-deflate allows (15 bits). */
export const INFLATE_WINDOW = 32 * 1024;

/**
 * Bytes one inflater holds, to charge to the parsers' budget: its window and its decoding tables (pako's state:
 * code lengths, work area and the dynamic length/distance tables, ~7 KB).
 */
export const INFLATER_BYTES = INFLATE_WINDOW + 8 * 1024;

/** The sync-flush tail a sender removes from each message (RFC 7692 7.2.2), given back before inflating. */
const SYNC_TAIL = new Uint8Array([0, 0, 0xff, 0xff]);

/**
 * The most either shared scratch buffer keeps between messages. A larger message gets buffers of its own, dropped
 * after it, as the per-message path's were: the shared ones are outside the parsers' budget and live as long as
 * the process, so one 16 MiB message (a 16 KiB decompression bomb) would otherwise hold 16 MiB of output and up
 * to twice its input from then on.
 */
export const SCRATCH_KEEP = 1 << 20;

/** Output scratch shared by every inflater; a message's bytes are copied out of it. */
let scratch = new Uint8Array(64 * 1024);
/** Input scratch: a message and its tail. */
let input = new Uint8Array(16 * 1024);
/** What a stream points at between messages: an idle inflater holds no message's buffers. */
const NONE = new Uint8Array(0);

/** Bytes the shared scratch buffers hold between messages. */
export function scratchBytes(): number {
  return scratch.length + input.length;
}

/** What {@link StreamInflater.inflate} gives: the message, or why there is none. */
export type InflateResult = Uint8Array | "error" | "too_large";

/** A raw-deflate stream decoder kept from message to message of one direction. */
export class StreamInflater {
  readonly #strm = new ZStream();

  /**
   * @param history the output the sender's compressor has seen so far (its last 32 KiB are used), to continue a
   * stream whose earlier messages were inflated elsewhere; none for a new stream
   */
  constructor(history?: Uint8Array) {
    if (zlibInflateInit2(this.#strm, -15) !== Z_OK) throw new Error("pako: inflateInit2 failed");
    if (history !== undefined && history.length > 0) {
      const h = history.length > INFLATE_WINDOW ? history.subarray(history.length - INFLATE_WINDOW) : history;
      if (zlibInflateSetDictionary(this.#strm, h) !== Z_OK) {
        throw new Error("pako: inflateSetDictionary failed");
      }
    }
  }

  /**
   * Inflates one message (its sync-flush tail removed), continuing the stream; with `fresh` the history is
   * forgotten first (a sender without context takeover). "too_large" once it passes `max` bytes, "error" for
   * data that is not deflate: either way the stream's state is unknown after it and the inflater must be dropped.
   */
  inflate(data: Uint8Array, max: number, fresh = false): InflateResult {
    const r = this.#inflate(data, max, fresh);
    // The buffers it used (a large message's own ones included) are not kept alive by this stream until its next
    // message, which may never come.
    this.#strm.input = NONE;
    this.#strm.output = NONE;
    return r;
  }

  #inflate(data: Uint8Array, max: number, fresh: boolean): InflateResult {
    const strm = this.#strm;
    if (fresh) zlibInflateReset(strm);
    const n = data.length + SYNC_TAIL.length;
    let inp = input;
    if (inp.length < n) {
      inp = new Uint8Array(n > SCRATCH_KEEP ? n : Math.min(SCRATCH_KEEP, Math.max(n, input.length * 2)));
      if (n <= SCRATCH_KEEP) input = inp;
    }
    inp.set(data);
    inp.set(SYNC_TAIL, data.length);
    strm.input = inp;
    strm.next_in = 0;
    strm.avail_in = n;
    // One byte over the bound tells a message over it from one that fills it exactly.
    const cap = max + 1;
    let out = scratch.length >= cap ? scratch.subarray(0, cap) : scratch;
    strm.output = out;
    strm.next_out = 0;
    strm.avail_out = out.length;
    let ended = false;
    for (;;) {
      const st = zlibInflate(strm, Z_SYNC_FLUSH);
      if (st === Z_STREAM_END) {
        ended = true;
        // A final block (RFC 7692 allows one): the next message starts a new deflate stream over the same
        // window, as the sender's compressor keeps it.
        zlibInflateResetKeep(strm);
        break;
      }
      // No progress with all input taken: nothing is pending (the check below says whether the message ended).
      if (st === Z_BUF_ERROR && strm.avail_in === 0) break;
      if (st !== Z_OK) return "error";
      // All input taken with room left, or with the output full but between blocks (the message done: nothing is
      // pending there). Calling again then would start the next block's header and leave the block boundary the
      // check below looks for: a message filling the output to its last byte was taken for one cut short.
      if (strm.avail_in === 0 && (strm.avail_out > 0 || (strm.data_type & 128) !== 0)) break;
      // Output full with input left: more room, up to the bound.
      if (strm.next_out >= cap) return "too_large";
      const grown = new Uint8Array(Math.min(cap, Math.max(out.length * 2, 64 * 1024)));
      grown.set(out.subarray(0, strm.next_out));
      if (grown.length > scratch.length && grown.length <= SCRATCH_KEEP) scratch = grown;
      out = grown;
      strm.output = out;
      strm.avail_out = out.length - strm.next_out;
    }
    if (strm.next_out > max) return "too_large";
    // A whole message ends at a block boundary (its sync flush's empty stored block, or a final block): a message
    // cut short or with bytes of another in it ends inside a block, and its output so far is not the message.
    if ((strm.data_type & 128) === 0 && !ended) return "error";
    return out.slice(0, strm.next_out);
  }

  /** Frees the stream (pako keeps nothing outside it; this drops its window and tables at once). */
  end(): void {
    zlibInflateEnd(this.#strm);
  }
}

let shared: StreamInflater | undefined;

/**
 * The decompressor every direction whose sender resets its compressor each message (`*_no_context_takeover`)
 * shares: such a message needs no history, so none is kept per direction; it is reset before each message, so a
 * corrupt message of one direction leaves nothing behind for the next.
 */
export function freshInflater(): StreamInflater {
  return shared ??= new StreamInflater();
}
