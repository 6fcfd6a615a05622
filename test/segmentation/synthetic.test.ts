import { describe, expect, it } from 'vitest';
import { syntheticClasses, syntheticSample } from '../../segmentation/synthetic.js';
import { frequencySplits } from '../../segmentation/metrics.js';
import { pixelCounts } from '../../segmentation/losses.js';

describe('embedded long-tailed segmentation set', () => {
  it('is a pure function of (seed, index)', () => {
    expect(syntheticSample(3, 7)).toEqual(syntheticSample(3, 7));
    expect(syntheticSample(3, 7).label).not.toEqual(syntheticSample(3, 8).label);
    const s = syntheticSample(1, 0, { size: 40 });
    expect([s.width, s.height, s.image.length, s.label.length]).toEqual([40, 40, 40 * 40 * 3, 40 * 40]);
  });

  it('is long-tailed by pixels: stuff covers most, the rarest things a tiny share', () => {
    const classes = syntheticClasses();
    expect(classes.length).toBe(16);
    const counts = pixelCounts(Array.from({ length: 200 }, (_, i) => syntheticSample(5, i).label), classes.length);
    const total = counts.reduce((a, b) => a + b, 0);
    const stuff = counts.slice(0, 4).reduce((a, b) => a + b, 0) / total;
    expect(stuff).toBeGreaterThan(0.85);
    const things = Array.from(counts.slice(4));
    expect(things[0] / total).toBeGreaterThan(0.015);
    expect(things[11] / total).toBeLessThan(0.004);
    expect(things[11]).toBeGreaterThan(0);
    // thing frequency decreases overall (first third vs last third)
    expect(things.slice(0, 4).reduce((a, b) => a + b)).toBeGreaterThan(5 * things.slice(8).reduce((a, b) => a + b));
    const split = frequencySplits(counts, 0.25, 0.5);
    expect(split.slice(0, 4)).toEqual(['head', 'head', 'head', 'head']);
    expect(split.filter((s) => s === 'tail').length).toBe(8);
  });
});
