/**
 * The signal handler `run` installs for a live sensor (cli/run_cmd.ts), on a node in process: the first signal
 * finishes the node within the deadline (sources stopped first), then the drain. Exits and phases are recorded.
 * @module
 */
import { finishNodes, type SensorNode } from "../../actors/node.ts";
import { createSignalHandler } from "../../actors/shutdown.ts";
import type { Bus } from "../../bus/bus.ts";

/** `run`'s live stop for `node` on `bus`: the handler, the exit codes it asked for, the finish's phases. */
export function stopHandler(node: SensorNode, bus: Bus, deadlineMs: number, flushMs: number) {
  const codes: number[] = [];
  const phases: string[] = [];
  const h = createSignalHandler(node.system, {
    deadlineMs,
    flushMs,
    exit: (code) => void codes.push(code),
    finish: (ms, phase) =>
      finishNodes([node], bus, {
        stopSources: true,
        deadlineMs: ms,
        onPhase: (p) => {
          phases.push(p);
          phase(p);
        },
      }),
  });
  return { h, codes, phases };
}
