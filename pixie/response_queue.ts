/**
 * The responses of one Pixie stream that arrived but were not taken yet, bounded in count and in bytes: the
 * client pauses the stream when either bound is reached (HTTP/2 flow control then holds the server back) and
 * resumes it once both are low again. A live reader waits for room in its mailbox (actors/pixie_reader.ts), so
 * responses can queue here while pipelines catch up; one of audio rows can be ~0.9 MB (Carnot's result
 * batches), and a count alone would let 64 of them (~58 MB) pile up.
 * @module
 */

/** Bounds of a {@link ResponseQueue}: pause at `high` (either one), resume at `low` (both). */
export interface ResponseQueueBounds {
  highCount: number;
  lowCount: number;
  highBytes: number;
  lowBytes: number;
}

/** The client's bounds: 64 responses or 8 MiB pause the stream, 16 and 2 MiB resume it. */
export const RESPONSE_QUEUE_BOUNDS: ResponseQueueBounds = {
  highCount: 64,
  lowCount: 16,
  highBytes: 8 * 1024 * 1024,
  lowBytes: 2 * 1024 * 1024,
};

/** Responses in arrival order with their encoded sizes. */
export class ResponseQueue<T> {
  // Plain arrays: the stream pauses at a few dozen entries, so shift's copying stays small.
  readonly #items: T[] = [];
  readonly #sizes: number[] = [];
  #bytes = 0;
  readonly #bounds: ResponseQueueBounds;

  constructor(bounds: ResponseQueueBounds = RESPONSE_QUEUE_BOUNDS) {
    this.#bounds = bounds;
  }

  /** Responses queued. */
  get length(): number {
    return this.#items.length;
  }

  /** Their encoded bytes. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Queues a response of `bytes` encoded bytes; true when the stream should now be paused. */
  push(item: T, bytes: number): boolean {
    this.#items.push(item);
    this.#sizes.push(bytes);
    this.#bytes += bytes;
    return this.#items.length >= this.#bounds.highCount || this.#bytes >= this.#bounds.highBytes;
  }

  /** The oldest response (the caller checks `length` first). */
  shift(): T {
    this.#bytes -= this.#sizes.shift() ?? 0;
    return this.#items.shift() as T;
  }

  /** Whether a paused stream may resume: both count and bytes at or below their low marks. */
  get low(): boolean {
    return this.#items.length <= this.#bounds.lowCount && this.#bytes <= this.#bounds.lowBytes;
  }
}
