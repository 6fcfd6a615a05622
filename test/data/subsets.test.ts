import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countLabels, longTailCounts, longTailSubset, selectEntries, shotGroups } from '../../data/index.js';
import { readListFile, writeListFile } from '../../data/node-index.js';
import { CIFAR10_DIR } from './shared-data.js';

const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);

describe('long-tailed subsets (Cao et al. 2019)', () => {
  it('matches the published per-class counts', () => {
    expect(longTailCounts(10, 5000, 100)).toEqual([5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]);
    // Totals of CIFAR-10-LT and CIFAR-100-LT in the LDAM-DRW / decoupling literature.
    expect(sum(longTailCounts(10, 5000, 50))).toBe(13996);
    expect(sum(longTailCounts(10, 5000, 10))).toBe(20431);
    expect(sum(longTailCounts(100, 500, 100))).toBe(10847);
    expect(sum(longTailCounts(100, 500, 50))).toBe(12608);
    expect(sum(longTailCounts(100, 500, 10))).toBe(19573);
    expect(longTailCounts(10, 5000, 100, 'step')).toEqual([5000, 5000, 5000, 5000, 5000, 50, 50, 50, 50, 50]);
    expect(longTailCounts(5, 100, 10, 'step')).toEqual([100, 100, 10, 10, 10]);
    expect(longTailCounts(4, 7, 1)).toEqual([7, 7, 7, 7]);
    expect(() => longTailCounts(10, 5000, 0.5)).toThrow(RangeError);
  });

  it('builds CIFAR-10-LT from the real train list: 12,406 images at IF 100', async () => {
    const train = await readListFile(join(CIFAR10_DIR, 'train.txt'), { numClasses: 10, checkFiles: false });
    for (const [factor, total] of [[100, 12406], [50, 13996], [10, 20431]]) {
      const idx = longTailSubset(train.labels, 10, { imbalanceFactor: factor });
      expect(idx.length).toBe(total);
      expect(new Set(idx).size).toBe(total);
      const counts = countLabels(Array.from(idx, (i) => train.labels[i]), 10);
      expect(counts).toEqual(longTailCounts(10, 5000, factor));
      expect(counts[0]).toBe(5000);
      expect(counts[9]).toBe(Math.trunc(5000 / factor));
    }
    const idx = longTailSubset(train.labels, 10, { imbalanceFactor: 100 });
    // Grouped by class, and seeded: the same seed gives the same subset, another seed another one.
    expect(Array.from(idx.subarray(0, 5000), (i) => train.labels[i]).every((l) => l === 0)).toBe(true);
    expect(Array.from(longTailSubset(train.labels, 10, { imbalanceFactor: 100 }))).toEqual(Array.from(idx));
    const other = longTailSubset(train.labels, 10, { imbalanceFactor: 100, seed: 1 });
    expect(Array.from(other)).not.toEqual(Array.from(idx));
    // The tail class keeps 50 of its 5000 images, spread over the file (a shuffle, not a prefix).
    const tail = Array.from(idx.subarray(12406 - 50));
    expect(Math.max(...tail) - Math.min(...tail)).toBeGreaterThan(20000);

    const dir = mkdtempSync(join(tmpdir(), 'subset-'));
    await writeListFile(join(dir, 'cifar10_lt_if100.txt'), selectEntries(train, idx));
    const back = await readListFile(join(dir, 'cifar10_lt_if100.txt'), { root: CIFAR10_DIR, numClasses: 10 });
    expect(back.paths.length).toBe(12406);
    expect(countLabels(back.labels, 10)).toEqual([5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]);
    expect(back.paths[0]).toBe(train.paths[idx[0]]);
  });

  it('refuses a class with too few images', () => {
    expect(() => longTailSubset([0, 0, 0, 1], 2, { imbalanceFactor: 1, nMax: 3 })).toThrow('class 1 has 1 images, fewer than the 3 to keep');
  });

  it('splits classes into many (>100), medium (20..100) and few (<20) shots', () => {
    expect(shotGroups([500, 101, 100, 20, 19, 0])).toEqual({ many: [0, 1], medium: [2, 3], few: [4, 5] });
    const groups = shotGroups(longTailCounts(10, 5000, 100));
    expect(groups).toEqual({ many: [0, 1, 2, 3, 4, 5, 6, 7], medium: [8, 9], few: [] });
  });
});
