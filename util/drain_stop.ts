/**
 * "Drain on stop": the reason a producer's `AbortSignal` aborts with when whoever stops it wants what the producer
 * still holds handed on before it returns, as a clean end of its input would (a live packet source's RTP reorder
 * windows, TCP bytes behind a hole, messages in progress; see packets/live_source.ts). A live sensor's stop that
 * finishes its streams in progress stops its sources this way (actors/node.ts StoppableSource), so the Detectors
 * and the Matcher finish with those rows too.
 *
 * Any other abort reason still means "stop now, hand on nothing more" (a reader restarting, the actor system's
 * shutdown), and a producer that holds nothing treats both alike. The reason passes through `AbortSignal.any`
 * (its reason is that of the first signal to abort), so a signal composed of a drained stop and others still
 * says so. Kept outside the actors and the protocol layers: both use it, neither depends on the other.
 * @module
 */

/** The abort reason of a stop that asks for a drain (see the module doc). */
export class DrainStop extends Error {
  /** Creates the reason. */
  constructor(message = "stopped: hand on what is held, then return") {
    super(message);
    this.name = "DrainStop";
  }
}

/** Whether `signal` has been aborted by a stop that asks the producer to hand on what it holds first. */
export function drainRequested(signal: AbortSignal): boolean {
  return signal.aborted && signal.reason instanceof DrainStop;
}
