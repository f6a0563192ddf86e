/**
 * The `--id` / `--interval` record filters of `analyze` and `replay`, in a module of their own so that `analyze`
 * does not load `replay`'s NATS client.
 * @module
 */
import { optString, type ParsedArgs, UsageError } from "./command.ts";
import type { RecordSelection } from "../report/summary.ts";

/** The `--id` / `--interval` filters of `analyze` and `replay`. */
export function recordSelection(args: ParsedArgs): RecordSelection {
  const sel: RecordSelection = {};
  const id = optString(args, "id");
  const interval = optString(args, "interval");
  if (id !== undefined) {
    if (id.trim() === "") {
      throw new UsageError("--id expects an id, a TYPE=VALUE pair, a signature id or a stream");
    }
    sel.id = id;
  }
  if (interval !== undefined) {
    if (interval.trim() === "") throw new UsageError("--interval expects an interval id");
    sel.interval = interval;
  }
  return sel;
}
