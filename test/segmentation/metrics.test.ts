import { describe, expect, it } from 'vitest';
import { ADE20K_CLASSES, ADE20K_PALETTE, ADE20K_PIXEL_RATIO } from '../../segmentation/ade20k-split.js';
import { ConfusionMatrix, ade20kSplits, argmaxChannels, frequencySplits, nanmean, segResultsMarkdown, segmentationMetrics } from '../../segmentation/metrics.js';

// 5 classes, ignore index 255. Counted pixels (gt → pred):
//   class 0: 0→0, 0→0, 0→1, 0→0            I0 = 3, L0 = 4
//   class 1: 1→1, 1→2, 1→1                 I1 = 2, L1 = 3
//   class 2: 2→2, 2→4                      I2 = 1, L2 = 2
//   class 3: never in gt; predicted only on an ignored pixel → 0/0 → NaN, left out of every mean
//   class 4: never in gt, predicted once  → IoU 0 (counts), Acc NaN (left out)
// P0 = 3 (+1 on an ignored pixel, not counted), P1 = 3, P2 = 2, P4 = 1.
const GT = [0, 0, 0, 1, 1, 2, 255, 255, 0, 1, 2];
const PRED = [0, 0, 1, 1, 2, 2, 3, 0, 0, 1, 4];

describe('segmentation metrics (mmseg total_area_to_metrics)', () => {
  it('match a hand-computed confusion matrix with an ignored label and an absent class', () => {
    const cm = new ConfusionMatrix(5).update(PRED.slice(0, 6), GT.slice(0, 6)).update(PRED.slice(6), GT.slice(6));
    // row = gt, column = prediction
    expect(Array.from(cm.counts)).toEqual([
      3, 1, 0, 0, 0, //
      0, 2, 1, 0, 0, //
      0, 0, 1, 0, 1, //
      0, 0, 0, 0, 0, //
      0, 0, 0, 0, 0,
    ]);
    const m = segmentationMetrics(cm, ['head', 'body', 'body', 'tail', 'tail']);
    expect(m.aAcc).toBeCloseTo(6 / 9, 12);
    const iou = [3 / 4, 2 / 4, 1 / 3, NaN, 0];
    const acc = [3 / 4, 2 / 3, 1 / 2, NaN, NaN];
    iou.forEach((v, c) => (Number.isNaN(v) ? expect(m.iou[c]).toBeNaN() : expect(m.iou[c]).toBeCloseTo(v, 12)));
    acc.forEach((v, c) => (Number.isNaN(v) ? expect(m.acc[c]).toBeNaN() : expect(m.acc[c]).toBeCloseTo(v, 12)));
    expect(m.mIoU).toBeCloseTo((3 / 4 + 2 / 4 + 1 / 3 + 0) / 4, 12);
    expect(m.mAcc).toBeCloseTo((3 / 4 + 2 / 3 + 1 / 2) / 3, 12);
    expect(m.head.mIoU).toBeCloseTo(0.75, 12);
    expect(m.body.mIoU).toBeCloseTo((0.5 + 1 / 3) / 2, 12);
    expect(m.tail.mIoU).toBe(0); // class 3 NaN left out, class 4 = 0
    expect(m.tail.mAcc).toBeNaN();
    expect(m.body.classes).toBe(2);
    expect(Array.from(m.areaPred)).toEqual([3, 3, 2, 0, 1]);
    const table = segResultsMarkdown([{ method: 'x', m }]);
    expect(table).toContain('| x | 66.67 | 39.58 | 63.89 | 75.00 | 41.67 | 0.00 | 75.00 | 58.33 | - |');
  });

  it('merges matrices and rejects labels outside the classes that are not the ignore index', () => {
    const a = new ConfusionMatrix(5).update(PRED, GT);
    const b = new ConfusionMatrix(5).update(PRED.slice(0, 6), GT.slice(0, 6)).merge(new ConfusionMatrix(5).update(PRED.slice(6), GT.slice(6)));
    expect(Array.from(b.counts)).toEqual(Array.from(a.counts));
    expect(() => new ConfusionMatrix(5).update([0, 1], [0, 7], 'ADE_val_1.png')).toThrow(/ADE_val_1\.png: label 7 at pixel 1 .*ignore index 255/);
    expect(() => new ConfusionMatrix(5).update([0, 9], [0, 1])).toThrow(/prediction 9/);
    expect(() => new ConfusionMatrix(5).update([0], [0, 1])).toThrow(/1 predicted pixels for 2/);
    // a different ignore index
    const c = new ConfusionMatrix(3, 0).update([1, 2, 2], [0, 2, 1]);
    expect(Array.from(c.counts)).toEqual([0, 0, 0, 0, 0, 1, 0, 0, 1]);
  });

  it('nanmean skips NaN, and is NaN over nothing', () => {
    expect(nanmean([1, NaN, 3])).toBe(2);
    expect(nanmean([NaN])).toBeNaN();
    expect(nanmean([])).toBeNaN();
  });

  it('ADE20K: DisAlign split is 20 / 55 / 75 classes on the frequency-sorted order', () => {
    const s = ade20kSplits();
    expect(s.length).toBe(150);
    expect(s.filter((x) => x === 'head').length).toBe(20);
    expect(s.filter((x) => x === 'body').length).toBe(55);
    expect(s.filter((x) => x === 'tail').length).toBe(75);
    expect([s[0], s[19], s[20], s[74], s[75], s[149]]).toEqual(['head', 'head', 'body', 'body', 'tail', 'tail']);
    expect(ADE20K_CLASSES[0]).toBe('wall');
    expect(ADE20K_CLASSES[149]).toBe('flag');
    expect(ADE20K_PIXEL_RATIO[0]).toBe(0.1576);
    expect(ADE20K_PALETTE[0]).toEqual([120, 120, 120]);
    expect(ADE20K_PALETTE[149]).toEqual([92, 0, 255]);
    // the ratios are sorted, so frequencySplits on them gives the same split
    expect(frequencySplits(ADE20K_PIXEL_RATIO.map((r, i) => r * 1e6 - i * 1e-6))).toEqual(s);
    // 150 classes default to this split
    const cm = new ConfusionMatrix(150).update([0, 100], [0, 100]);
    const m = segmentationMetrics(cm);
    expect(m.head.mIoU).toBe(1);
    expect(m.tail.mIoU).toBe(1);
    expect(m.body.mIoU).toBeNaN();
  });

  it('frequencySplits sorts by pixel count', () => {
    expect(frequencySplits([5, 100, 1, 50], 0.25, 0.5)).toEqual(['tail', 'head', 'tail', 'body']);
  });

  it('argmaxChannels takes the first maximum per pixel over C', () => {
    // N=2, C=3, H=1, W=2
    const s = [0, 5, 1, 5, 2, 0, /* */ 1, 1, 1, 1, 1, 2];
    expect(Array.from(argmaxChannels(s, [2, 3, 1, 2]))).toEqual([2, 0, 0, 2]); // pixel (0,0): 0,1,2 → 2; (0,1): 5,5,0 → 0 (first max); (1,0): ties → 0
  });
});
