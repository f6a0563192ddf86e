/**
 * Files this process holds open, for tests of code that must close them. Deno's resource sanitizer does not see
 * files left open, and counting every descriptor is not exact: the runtime opens and closes its own meanwhile.
 * @module
 */

/** How many of this process's descriptors are open on one of `paths`, from /proc/self/fd. */
export function openFilesTo(paths: readonly string[]): number {
  // The links name the real paths.
  const want = new Set(paths.map((p) => Deno.realPathSync(p)));
  let n = 0;
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (want.has(Deno.readLinkSync(`/proc/self/fd/${e.name}`))) n++;
    } catch { /* closed while listed (the directory's own descriptor, among others) */ }
  }
  return n;
}
