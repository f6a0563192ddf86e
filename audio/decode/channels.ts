/**
 * Interleaved multi-channel audio to the mono signal that is analysed: one channel, or the average of all.
 * @module
 */

import { allocSamples } from "./codecs.ts";

/** Which channel to analyse (0-based) or `"mix"`, as in the `audio.channel` config key. */
export type ChannelSelect = number | "mix";

/**
 * Deinterleaves `interleaved` (frames of `channels` samples) to mono: channel `channel`, or the mean of all
 * channels for `"mix"`. Mono input is returned as it is (no copy). A trailing partial frame is ignored; the codec
 * layer already rejects payloads that are not whole frames. Throws RangeError on a channel outside the layout,
 * which config validation rules out. The result is a new array from {@link allocSamples}.
 */
export function selectChannel(
  interleaved: Float32Array,
  channels: number,
  channel: ChannelSelect,
): Float32Array {
  if (!Number.isInteger(channels) || channels < 1) {
    throw new RangeError(`channels must be >= 1, got ${channels}`);
  }
  if (channel !== "mix" && (!Number.isInteger(channel) || channel < 0 || channel >= channels)) {
    throw new RangeError(`channel ${channel} is outside 0..${channels - 1}`);
  }
  if (channels === 1) return interleaved;
  const frames = Math.floor(interleaved.length / channels);
  const out = allocSamples(frames);
  if (channel === "mix") {
    const inv = 1 / channels;
    for (let f = 0, i = 0; f < frames; f++) {
      let s = 0;
      for (let c = 0; c < channels; c++, i++) s += interleaved[i]!;
      out[f] = s * inv;
    }
  } else {
    for (let f = 0, i = channel; f < frames; f++, i += channels) out[f] = interleaved[i]!;
  }
  return out;
}

/** Interleaves equal-length mono channels into frames (for fixtures and benches). */
export function interleave(channels: readonly Float32Array[]): Float32Array {
  const n = channels.length;
  const frames = n === 0 ? 0 : Math.min(...channels.map((c) => c.length));
  const out = new Float32Array(frames * n);
  for (let c = 0; c < n; c++) {
    const ch = channels[c]!;
    for (let f = 0; f < frames; f++) out[f * n + c] = ch[f]!;
  }
  return out;
}
