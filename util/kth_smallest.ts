/**
 * The k-th smallest value of a typed array in linear expected time (Hoare's selection), for percentiles where a
 * full sort was the cost: sorting 4,000 doubles takes about as long as the rest of a fine alignment.
 * @module
 */

/**
 * The value a full ascending sort of `a` would put at index `k` (0-based), for arrays without NaN. Reorders `a`
 * (pass a scratch copy). Deterministic: the pivot is the median of the first, middle and last value.
 */
export function kthSmallest(a: Float64Array, k: number): number {
  if (!(k >= 0 && k < a.length) || !Number.isInteger(k)) {
    throw new RangeError(`kthSmallest: index ${k} outside 0..${a.length - 1}`);
  }
  let lo = 0, hi = a.length - 1;
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    // Median of three into a[mid], then partition around it.
    if (a[mid]! < a[lo]!) swap(a, mid, lo);
    if (a[hi]! < a[lo]!) swap(a, hi, lo);
    if (a[hi]! < a[mid]!) swap(a, hi, mid);
    const pivot = a[mid]!;
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        swap(a, i, j);
        i++;
        j--;
      }
    }
    // Now a[lo..j] ≤ pivot ≤ a[i..hi], and values strictly between j and i equal the pivot.
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k]!;
  }
  return a[k]!;
}

function swap(a: Float64Array, i: number, j: number): void {
  const t = a[i]!;
  a[i] = a[j]!;
  a[j] = t;
}
