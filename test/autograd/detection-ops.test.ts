import { describe, expect, it } from 'vitest';
import { OP_GROUPS } from '../../autograd/table.js';
import { multiScaleRoiAlign, roiAlign } from '../../autograd/detection-ops.js';
import { gradcheck, inp, ints } from './gradcheck.js';

// every entry detection-ops.ts registers (group 'detection') must have a case below
const covered = new Set<string>();
const gc = (entry: string, name: string, f: Parameters<typeof gradcheck>[0], inputs: Parameters<typeof gradcheck>[1]) => {
  covered.add(entry);
  it(`${name}: backward matches finite differences and the GPU matches the CPU`, async () => {
    await gradcheck(f, inputs);
  });
};
const rois = (values: number[]) => ({ values, shape: [values.length / 5, 5], grad: false });

describe('detection ops', () => {
  const r = [0, 0.7, 1.3, 5.2, 4.9, 1, -1.5, 2.25, 3.5, 7.75, 0, 2, 2, 2, 2, 1, 4.5, 0.5, 9.5, 6.5, 1, 3, 3, 1, 1];
  gc('roiAlign', 'roiAlign adaptive sampling, not aligned', ([x, q]) => roiAlign(x, q, { outputSize: [2, 3] }), [inp([2, 2, 6, 7]), rois(r)]);
  gc('roiAlign', 'roiAlign aligned, sampling ratio 2, scale 0.5', ([x, q]) => roiAlign(x, q, { outputSize: 2, aligned: true, samplingRatio: 2, spatialScale: 0.5 }), [inp([2, 1, 5, 6]), rois(r)]);
  gc('roiAlign', 'roiAlign one image, one channel, 1x1 output', ([x, q]) => roiAlign(x, q, { outputSize: 1 }), [inp([1, 1, 4, 5]), rois([0, 0.5, 0.5, 3.5, 2.5, 0, -2, -2, 1, 1])]);
  gc('multiScaleRoiAlign', 'multiScaleRoiAlign over 3 levels', ([f0, f1, f2, q, lv]) => multiScaleRoiAlign([f0, f1, f2], q, lv, { outputSize: [2, 2], scales: [0.5, 0.25, 0.125], samplingRatio: 2 }),
    [inp([2, 2, 8, 9]), inp([2, 2, 4, 5]), inp([2, 2, 2, 3]), rois([0, 1, 1, 9, 11, 1, 4, 2, 30, 28, 0, -4, 0, 17, 15, 1, 0, 0, 70, 60, 0, 3, 3, 3, 3]), ints([0, 1, 0, 2, 1], [5])]);

  it('every detection entry of the op table has a gradient check', () => {
    expect(OP_GROUPS.get('roiAlign')).toBe('detection');
    expect([...OP_GROUPS].filter(([k, g]) => g === 'detection' && !covered.has(k)).map(([k]) => k)).toEqual([]);
  });
});
