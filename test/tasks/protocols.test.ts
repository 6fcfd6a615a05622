// The official protocols the pipeline follows (issue 17, item 1), pinned by hand computations.
import { describe, expect, it } from 'vitest';
import { tensor } from '../../index.node.js';
import { CosineHead } from '../../longtail/heads.js';
import { labelTensor, lossByName } from '../../longtail/runner.js';
import { ldamMargins } from '../../longtail/weights.js';
import { resolveHead } from '../../tasks/lib/pipeline.js';
import { randomArray } from '../helpers.js';

describe('LDAM runs on LDAM-DRW\u2019s NormedLinear with s = 30', () => {
  it('--loss ldam picks the normed head and refuses the others with a clear message', () => {
    expect(resolveHead('ldam', undefined)).toBe('normed');
    expect(resolveHead('ldam', 'normed')).toBe('normed');
    expect(() => resolveHead('ldam', 'linear')).toThrow("--loss ldam runs on LDAM-DRW's NormedLinear head (raw cosines, scaled by s = 30 in the loss); --head linear would give unnormalised logits ×30 (losses of 100 and more). Leave --head out or pass --head normed");
    expect(() => resolveHead('ldam', 'cosine')).toThrow(/--head cosine would give cosines already ×16, so logits ×480/);
    expect(resolveHead('ce', undefined)).toBe('linear');
    expect(resolveHead('ce', 'cosine')).toBe('cosine');
  });

  it('the loss is CE(30·(cos − Δ_y), y) on the raw cosines of the normed head, Δ_j = 0.5·(n_min/n_j)^(1/4)', async () => {
    const N = 5, D = 7, C = 4;
    const counts = [500, 100, 20, 3];
    const head = new CosineHead(D, C, { scale: 1, layout: 'columns', device: 'cpu' });
    const x = randomArray(N * D, -1, 1);
    const y = Int32Array.from([0, 3, 2, 1, 3]);
    const cos = await head.forward(tensor(x, [N, D], { device: 'cpu' })).data();
    for (const v of cos) expect(Math.abs(v)).toBeLessThanOrEqual(1 + 1e-6);
    const loss = await lossByName('ldam', { classCounts: counts })(head.forward(tensor(x, [N, D], { device: 'cpu' })), labelTensor(y, 'cpu'), 0).item();
    const delta = ldamMargins(counts, 0.5);
    expect(delta[3]).toBeCloseTo(0.5, 12);
    expect(delta[0]).toBeCloseTo(0.5 * (3 / 500) ** 0.25, 12);
    let total = 0;
    for (let i = 0; i < N; i++) {
      const z = Array.from({ length: C }, (_, j) => 30 * (cos[i * C + j] - (j === y[i] ? delta[j] : 0)));
      const m = Math.max(...z);
      total += m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0)) - z[y[i]];
    }
    expect(loss).toBeCloseTo(total / N, 4);
    // bounded by the scale: at most 30·(2 + 0.5) + log C, never the 100–200 of s·(unnormalised logits)
    expect(loss).toBeLessThan(30 * 2.5 + Math.log(C));
  });
});
