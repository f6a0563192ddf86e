/**
 * Whether an RTP stream is SRTP (RFC 3711): encrypted payloads, each followed by an authentication tag. Its
 * header is plain, so it parses as RTP and its payloads "decode" as noise: nothing says why no signature is ever
 * found in it. A codec whose payload size follows from its duration tells: each SRTP payload is its audio plus
 * the tag, a constant 4 (HMAC-SHA1-32), 10 (HMAC-SHA1-80) or 16 (AEAD-GCM) bytes more than the RTP timestamp's
 * step carries. Its keys are exchanged in SIP/SDP over TLS or by DTLS, so a passive capture cannot decrypt it.
 * @module
 */

/** Authentication tag lengths of the SRTP profiles in use (RFC 3711, RFC 7714). */
const TAG_BYTES = [4, 10, 16] as const;

/** Consecutive packet pairs needed before a stream is called SRTP. */
const MIN_STEPS = 10;

/** Share of the steps that must show the same tag. */
const MIN_SHARE = 0.8;

/**
 * Payload bytes per RTP timestamp tick of a codec named as in a row's `rtp_codec` (`PCMU/8000`, `L16/16000/2`),
 * or undefined for codecs whose size does not follow from their duration (Opus, events).
 */
export function bytesPerTick(codecName: string): number | undefined {
  const [name, , ch] = codecName.split("/");
  switch (name?.toUpperCase()) {
    case "PCMU":
    case "PCMA":
    case "G722": // 8 bits per 2 samples at 16 kHz: one byte per tick of its 8 kHz clock
      return 1;
    case "L16":
      return 2 * (ch === undefined ? 1 : Number(ch) || 1);
    default:
      return undefined;
  }
}

/**
 * The tag length of an SRTP stream, from `(dts, bytes)` of consecutive packets (the timestamp step to a packet
 * and its payload length; with regular packetization either neighbour's step serves), or undefined when the
 * payloads are the size their duration says (plain RTP) or there are too few steps to tell.
 */
export function srtpTagBytes(
  steps: readonly { dts: number; bytes: number }[],
  perTick: number,
): number | undefined {
  const counts = new Map<number, number>();
  let n = 0;
  for (const s of steps) {
    // Steps across a loss or a silence (several packets' worth) say nothing of one packet's size.
    if (s.dts <= 0 || s.dts * perTick > s.bytes + 64 || s.dts * perTick < s.bytes - 64) continue;
    n++;
    const extra = s.bytes - s.dts * perTick;
    counts.set(extra, (counts.get(extra) ?? 0) + 1);
  }
  if (n < MIN_STEPS) return undefined;
  for (const tag of TAG_BYTES) if ((counts.get(tag) ?? 0) >= MIN_SHARE * n) return tag;
  return undefined;
}

/**
 * What to say of a stream of the codec named `codecName` whose consecutive packets gave `steps`, when it is SRTP
 * ({@link srtpTagBytes}); undefined when it is not, or when its codec's size says nothing ({@link bytesPerTick}).
 */
export function sizedSrtpAdvice(
  codecName: string,
  steps: readonly { dts: number; bytes: number }[],
): string | undefined {
  const perTick = bytesPerTick(codecName);
  const tag = perTick === undefined ? undefined : srtpTagBytes(steps, perTick);
  return tag === undefined ? undefined : srtpAdvice(tag);
}

/** What to say of an SRTP stream (the same words in `discover` and in the diagnosis). */
export function srtpAdvice(tag: number): string {
  return `SRTP (encrypted): each payload is its audio plus a ${tag}-byte authentication tag, and a capture ` +
    `cannot decrypt it (its keys travel in SIP/SDP over TLS, or DTLS); tap this audio where it is plain RTP ` +
    `(an SBC's or media server's unencrypted leg) or where a service carries it in plaintext`;
}

/**
 * Below this share of valid Opus framing, an Opus stream is taken for encrypted (SRTP: WebRTC's media always is);
 * Opus itself is always valid framing, random bytes are about half the time.
 */
export const ENCRYPTED_OPUS_FRAMING = 0.9;

/** What to say of an Opus stream whose payloads are mostly not Opus (`invalid`: that share). */
export function srtpOpusAdvice(invalid: number): string {
  return `SRTP likely (encrypted, as all WebRTC media is): ${
    Math.round(100 * invalid)
  }% of its payloads are not ` +
    `valid Opus framing, and a capture cannot decrypt it; tap this audio where it is plain`;
}
