// Probabilities from logits on the CPU (after an inference run): softmax and the top-k indices, one
// implementation for fill-mask and the task heads' predictions.

/** softmax(row), computed from the largest logit so that exp never overflows. */
export function softmax(row: ArrayLike<number>): number[] {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i]);
  const e = Array.from(row, (x) => Math.exp(x - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

/** The indices of the k largest values, largest first (one pass, a sorted list of k). */
export function topIndices(row: ArrayLike<number>, k: number): number[] {
  const top: number[] = [];
  for (let i = 0; i < row.length; i++) {
    if (top.length < k || row[i] > row[top[top.length - 1]]) {
      top.push(i);
      top.sort((a, b) => row[b] - row[a]);
      if (top.length > k) top.pop();
    }
  }
  return top;
}
