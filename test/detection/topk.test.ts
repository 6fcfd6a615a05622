import { describe, expect, it } from 'vitest';
import { topkPerLevel } from '../../detection/index.js';
import { tensor } from '../../index.node.js';
import { pair, randomInts } from '../helpers.js';

/** torchvision's _get_top_n_idx on plain arrays: per level, the k largest (ties by lower index). */
function reference(x: ArrayLike<number>, B: number, per: number[], topN: number): number[][] {
  const A = per.reduce((a, b) => a + b, 0);
  return Array.from({ length: B }, (_, b) => {
    const row: number[] = [];
    let off = 0;
    for (const n of per) {
      const ids = Array.from({ length: n }, (_, i) => off + i).sort((i, j) => x[b * A + j] - x[b * A + i] || i - j);
      row.push(...ids.slice(0, Math.min(topN, n)));
      off += n;
    }
    return row;
  });
}

describe('top-k per level', () => {
  for (const [B, per, topN] of [[1, [7], 3], [2, [300, 75, 19, 5, 1], 50], [3, [1000, 250, 63], 1000], [1, [40, 0, 9], 10]] as [number, number[], number][]) {
    it(`B ${B}, levels [${per}], top ${topN}: equals the reference on both backends, with many ties`, async () => {
      const A = per.reduce((a, b) => a + b, 0);
      const x = Float32Array.from(randomInts(B * A, 0, 20), (v) => v / 4);
      const want = reference(x, B, per, topN);
      for (const t of pair(x, [B, A])) {
        const r = topkPerLevel(t, per, topN);
        const cols = per.reduce((a, n) => a + Math.min(n, topN), 0);
        expect(r.indices.shape).toEqual([B, cols]);
        const got = Array.from(await r.indices.data());
        expect(Array.from({ length: B }, (_, b) => got.slice(b * cols, (b + 1) * cols))).toEqual(want);
        expect(Array.from(await r.levels.data())).toEqual(per.flatMap((n, l) => new Array(Math.min(n, topN)).fill(l)));
      }
    });
  }

  it('rejects bad input with the op name and shapes', () => {
    expect(() => topkPerLevel(tensor(new Float32Array(10), [2, 5]), [3, 3], 2)).toThrow(/topkPerLevel: anchors per level \[3, 3\] must sum to the 5 columns of \[2, 5\]/);
  });
});
