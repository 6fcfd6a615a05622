import { describe, expect, it } from 'vitest';
import { dropoutApply, nextStream, rand, tensor } from '../../kernels/index.js';
import { pair, randomArray, relErr } from '../helpers.js';

describe('dropout kernel', () => {
  for (const n of [1, 3, 5, 8, 1027]) {
    it(`drops the same elements on the GPU and the CPU for one seed (n = ${n})`, async () => {
      const values = randomArray(n, 0.5, 2);
      const [g, c] = pair(values, [n]);
      const rng = nextStream(1234 + n);
      const gy = await dropoutApply(g, 0.4, rng).data(), cy = await dropoutApply(c, 0.4, rng).data();
      expect(Array.from(gy, (v) => v === 0)).toEqual(Array.from(cy, (v) => v === 0));
      expect(relErr(gy, cy)).toBeLessThan(1e-6);
      // kept elements are scaled by 1/(1 − p)
      cy.forEach((v, i) => v !== 0 && expect(v).toBeCloseTo(values[i] / 0.6, 6));
    });
  }

  it('keeps a fraction 1 − p and preserves the mean in expectation', async () => {
    const n = 200_000;
    const [x] = pair(new Float32Array(n).fill(1), [n]);
    for (const p of [0.1, 0.5, 0.9]) {
      const y = await dropoutApply(x, p, nextStream(7)).data();
      const kept = Array.from(y).filter((v) => v !== 0).length / n;
      // 5 standard deviations of a binomial proportion: seeded, so this never flickers
      expect(Math.abs(kept - (1 - p))).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
      expect(Math.abs(Array.from(y).reduce((a, v) => a + v, 0) / n - 1)).toBeLessThan(5 * Math.sqrt(p / (1 - p) / n));
    }
  });

  it('is a pure function of the seed, and a fresh stream of the global generator without one', async () => {
    const [x] = pair(new Float32Array(64).fill(1), [64]);
    const mask = async (rng: ReturnType<typeof nextStream>) => Array.from(await dropoutApply(x, 0.5, rng).data());
    expect(await mask(nextStream(99))).toEqual(await mask(nextStream(99)));
    expect(await mask(nextStream(99))).not.toEqual(await mask(nextStream(100)));
    expect(await mask(nextStream())).not.toEqual(await mask(nextStream()));
  });

  it('does not repeat the numbers of rand() drawn with the same seed', async () => {
    const n = 4096;
    const [x] = pair(new Float32Array(n).fill(1), [n]);
    const kept = await dropoutApply(x, 0.5, nextStream(5)).data();
    const u = await rand([n], { seed: 5 }).data();
    // element 4q takes lane 0 of counter q, as rand's element q does: only the counter domain differs
    let agree = 0;
    for (let q = 0; q < n / 4; q++) agree += Number((kept[4 * q] !== 0) === (u[q] >= 0.5));
    expect(Math.abs(agree / (n / 4) - 0.5)).toBeLessThan(0.1);
  });

  it('drops everything at p = 1 and nothing at p = 0', async () => {
    const [x] = pair([1, -2, 3, 4, 5], [5]);
    expect(Array.from(await dropoutApply(x, 1, nextStream(3)).data())).toEqual([0, 0, 0, 0, 0]);
    expect(Array.from(await dropoutApply(x, 0, nextStream(3)).data())).toEqual([1, -2, 3, 4, 5]);
  });

  it('rejects bad input with the op name and shapes', () => {
    const x = tensor([1, 2], [2]);
    expect(() => dropoutApply(x, 1.5, nextStream(1))).toThrow(/dropout: probability must be in \[0, 1\], got 1.5/);
    expect(() => dropoutApply(tensor([1, 2], [2], { dtype: 'i32' }), 0.5, nextStream(1))).toThrow(/dropout: needs an f32 input, got i32 \[2\]/);
  });
});
