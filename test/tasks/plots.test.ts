// The split summary and the per-class change plots: valid SVG, one distinct colour per method, the
// numbers they draw, a visible zero, and 1,000 classes binned so the plot stays readable.
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { calibrationChangeSvg, METHOD_COLORS, splitAccuracySvg } from '../../tasks/lib/plots-summary.js';

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' });
const rects = (svg: string): { x: string; fill: string; 'data-method': string; 'data-value': string }[] => {
  const out: { x: string; fill: string; 'data-method': string; 'data-value': string }[] = [];
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) n.forEach(walk);
    else if (n && typeof n === 'object') {
      for (const [k, v] of Object.entries(n)) {
        if (k === 'rect') (Array.isArray(v) ? v : [v]).forEach((r) => r.class === 'bar' && out.push(r));
        else walk(v);
      }
    }
  };
  walk(parser.parse(svg));
  return out;
};

describe('plots', () => {
  it('split chart: Average / Many / Medium / Few bars per method, distinct colours, no bar for an empty split', () => {
    const methods = Array.from({ length: 7 }, (_, k) => ({ method: `m${k} <${k}>`, average: 0.1 * k, many: 0.5, medium: 0.3, few: k === 0 ? NaN : 0.05 * k }));
    const svg = splitAccuracySvg(methods);
    expect(XMLValidator.validate(svg)).toBe(true);
    const bars = rects(svg);
    expect(bars).toHaveLength(7 * 4 - 1);
    const colours = new Set(methods.map((m) => bars.find((b) => b['data-method'] === m.method)!.fill));
    expect(colours.size).toBe(7);
    expect(bars.filter((b) => b['data-method'] === 'm3 <3>').map((b) => Number(b['data-value']))).toEqual([0.30000000000000004, 0.5, 0.3, 0.15000000000000002]);
  });

  it('change plot: per-class differences against the baseline, averaged in bins over classes by training count, with a zero line', () => {
    const counts = [5, 500, 50, 20];
    const baseline = [0.2, 0.9, 0.5, NaN];
    const { svg, bins } = calibrationChangeSvg(baseline, [{ method: 'lws', perClass: [0.6, 0.8, 0.5, 0.3] }], counts);
    expect(XMLValidator.validate(svg)).toBe(true);
    // order by count: class 1 (500), 2 (50), 3 (20), 0 (5); class 3 has no baseline: no value
    expect(bins[0].map((v) => (Number.isFinite(v) ? Math.round(v * 1e9) / 1e9 : v))).toEqual([-0.1, 0, NaN, 0.4]);
    expect(svg).toContain('class="zero"');
    // 1,000 classes: 50 bins of 20
    const C = 1000;
    const many = calibrationChangeSvg(new Array(C).fill(0.5), [{ method: 'a', perClass: Array.from({ length: C }, (_, c) => (c % 2 ? 0.6 : 0.5)) }, { method: 'b', perClass: new Array(C).fill(0.4) }], Array.from({ length: C }, (_, c) => C - c));
    expect(many.bins[0]).toHaveLength(50);
    for (const v of many.bins[0]) expect(v).toBeCloseTo(0.05, 12);
    for (const v of many.bins[1]) expect(v).toBeCloseTo(-0.1, 12);
    expect(many.svg).toContain(METHOD_COLORS[1]);
    expect(many.svg).toContain(METHOD_COLORS[2]);
    expect(many.svg).toContain('50 bins of ~20 classes');
  });
});

describe('confusion matrix', () => {
  it('rows normalised per true class, classes by training count; binned past 50 classes', async () => {
    const { confusionMatrixSvg } = await import('../../tasks/lib/plots-summary.js');
    // counts: class 1 most, then 0, then 2
    const { svg, matrix } = confusionMatrixSvg([0, 1, 1, 2, 2, 0], [0, 0, 1, 2, 2, 2], [50, 100, 5], { classNames: ['a', 'b', 'c'] });
    expect(XMLValidator.validate(svg)).toBe(true);
    // order b, a, c: row b = [1, 0, 0]; row a = [1/2 (→b), 1/2 (→a), 0]; row c = [0, 1/3, 2/3]
    expect(matrix.map((r) => r.map((v) => Math.round(v * 1000) / 1000))).toEqual([[1, 0, 0], [0.5, 0.5, 0], [0, 0.333, 0.667]]);
    const C = 200;
    const labels = Array.from({ length: C }, (_, c) => c);
    const big = confusionMatrixSvg(labels, labels, Array.from({ length: C }, (_, c) => C - c));
    expect(big.matrix).toHaveLength(50);
    for (let b = 0; b < 50; b++) expect(big.matrix[b][b]).toBeCloseTo(1, 12);
  });
});
