// The surprising-tokens heat map's rules, without VS Code (unit-tested): which words are marked at which
// level, and how a document is cut into requests.

/**
 * The heat map's levels: a word is marked when it is among the document's most surprising (the top 20%,
 * 10%, 5%, 2% of its words) and also surprising in itself (at least 4, 7, 10, 12 bits: p < 1/16 … 1/4096).
 * Relative, so that a young model, surprised by most words, still points at the worst ones; absolute, so
 * that a document the model reads well is left clean.
 */
export const LEVELS = [
  { share: 0.2, bits: 4 },
  { share: 0.1, bits: 7 },
  { share: 0.05, bits: 10 },
  { share: 0.02, bits: 12 },
] as const;

/** Each level's lower bound (bits) for these words. */
export function thresholds(bits: number[]): number[] {
  const sorted = [...bits].sort((a, b) => a - b);
  const quantile = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : Infinity);
  return LEVELS.map((l) => Math.max(l.bits, quantile(1 - l.share)));
}

/** The heat level of a word (−1: not marked). */
export function level(bits: number, bounds: number[]): number {
  let l = -1;
  bounds.forEach((b, i) => (bits >= b ? (l = i) : undefined));
  return l;
}

/** Characters per request: a chunk of whole lines, a few of the model's windows. */
const CHUNK_CHARS = 2000;

/** The document in chunks of whole lines of at most about CHUNK_CHARS characters: [start offset, text]. */
export function chunks(text: string, size = CHUNK_CHARS): [number, string][] {
  const out: [number, string][] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(text.length, start + size);
    if (end < text.length) {
      const nl = text.lastIndexOf("\n", end);
      end = nl > start ? nl + 1 : end;
    }
    out.push([start, text.slice(start, end)]);
    start = end;
  }
  return out;
}
