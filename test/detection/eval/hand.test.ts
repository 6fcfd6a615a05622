// The evaluator on cases small enough that every AP and AR is derived by hand (in the comments).
// Browser-safe: no files. Conventions (pycocotools): 10 IoU thresholds t = 0.50, 0.55, …, 0.95; a
// detection matches when IoU ≥ t; 101 recall thresholds r = 0, 0.01, …, 1; at each r the precision
// is the envelope (max precision at recall ≥ r), 0 past the last recall reached; AP = mean over r
// and t; AR = mean over t of the final recall; −1 = no non-ignored gt, left out of the means.
import { describe, expect, it } from 'vitest';
import { parseCocoDataset, parseCocoResults } from '../../../data/coco.js';
import { evaluateCoco, evaluateLvis, limitDetsPerImage, linspace, numpyMean, formatFixed3, IOU_THRESHOLDS, RECALL_THRESHOLDS, summaryLine } from '../../../detection/eval/index.js';

const box = (x: number, y: number, w: number, h: number) => [x, y, w, h];
const ann = (id: number, imageId: number, categoryId: number, b: number[], extra: Record<string, unknown> = {}) => ({ id, image_id: imageId, category_id: categoryId, bbox: b, area: b[2] * b[3], iscrowd: 0, ...extra });
const det = (imageId: number, categoryId: number, b: number[], score: number) => ({ image_id: imageId, category_id: categoryId, bbox: b, score });
const EPS = 2 ** -52;

describe('COCO, by hand', () => {
  // One 100×100 image, one category. gts: g1 [0,0,10,10] (area 100, small), g2 [50,50,40,40]
  // (area 1600, medium). Detections by score: d1 0.9 [20,20,10,10] touches nothing (a false
  // positive ranked first); d2 0.8 = g2 (IoU 1); d3 0.7 [0,0,10,5] inside g1 (IoU 50/100 = 0.5).
  const gt = parseCocoDataset(
    { images: [{ id: 1, width: 100, height: 100 }], categories: [{ id: 1, name: 'a' }], annotations: [ann(1, 1, 1, box(0, 0, 10, 10)), ann(2, 1, 1, box(50, 50, 40, 40))] },
    'hand.json',
  );
  const dts = parseCocoResults([det(1, 1, box(20, 20, 10, 10), 0.9), det(1, 1, box(50, 50, 40, 40), 0.8), det(1, 1, box(0, 0, 10, 5), 0.7)], gt, 'dt.json');
  const r = evaluateCoco(gt, dts, { iouType: 'bbox' });

  it('AP with a false positive ranked first', () => {
    // t = 0.50: FP, TP, TP → recall 0, ½, 1; precision 0, ½, ⅔ → envelope ⅔, ⅔, ⅔ → AP50 = ⅔.
    const ap50 = 2 / (3 + EPS);
    // t ≥ 0.55 (9 thresholds): d3 is a FP → recall 0, ½, ½; precision 0, ½, ⅓ → envelope ½, ½, ⅓;
    // r = 0 … 0.50 (51 thresholds) read ½, r > 0.50 lies past the last recall → 0: AP = 51·½/101.
    const apHigh = (51 * 0.5) / 101;
    expect(r.metrics.AP50).toBeCloseTo(ap50, 14);
    expect(r.metrics.AP75).toBeCloseTo(apHigh, 14);
    expect(r.metrics.AP).toBeCloseTo((ap50 + 9 * apHigh) / 10, 14); // 0.29389…
    // small: g2 (1600) is ignored and d2, matched to it, too. t = 0.50: d1 FP, d3 TP → envelope ½ →
    // AP ½; t ≥ 0.55: d3 unmatched (area 50, inside 'small') is a FP, no TP → 0. APs = 0.5 / 10.
    expect(r.metrics.APs).toBeCloseTo(0.05, 14);
    // medium: g1 ignored; d1 (area 100, outside) and d3 (matched to the ignored g1 at 0.5, unmatched
    // and outside later) are ignored; d2 is a TP at every t → 1.
    expect(r.metrics.APm).toBeCloseTo(1, 14);
    // large: no gt in range → −1.
    expect(r.metrics.APl).toBe(-1);
    // AR@1: only d1, a FP → 0. AR@10 = AR@100: recall 1 at t = 0.50, ½ above → (1 + 9·½)/10.
    expect(r.metrics.AR1).toBe(0);
    expect(r.metrics.AR10).toBeCloseTo(0.55, 14);
    expect(r.metrics.AR100).toBeCloseTo(0.55, 14);
    // ARs: 1 at t = 0.50, 0 above → 0.1; ARm: 1; ARl: −1.
    expect(r.metrics.ARs).toBeCloseTo(0.1, 14);
    expect(r.metrics.ARm).toBe(1);
    expect(r.metrics.ARl).toBe(-1);
    expect(r.perCategory.map((c) => [c.id, c.name, c.numGt])).toEqual([[1, 'a', 2]]);
    expect(r.perCategory[0].ap).toBeCloseTo(r.metrics.AP, 14);
  });

  it('prints summarize() lines as pycocotools', () => {
    expect(r.text.split('\n')[0]).toBe(' Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.294');
    expect(r.text.split('\n')[5]).toBe(' Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000');
    expect(r.text.split('\n')[6]).toBe(' Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 0.000');
    expect(summaryLine(true, 0.75, 'medium', 100, 0.0625)).toBe(' Average Precision  (AP) @[ IoU=0.75      | area=medium | maxDets=100 ] = 0.062');
  });

  it('a crowd region: detections inside it are ignored, with IoU over the detection area', () => {
    // One 100×100 image: g1 [0,0,20,20] (area 400), crowd c [50,0,50,50]. Detections by score:
    // d1 0.9 [55,5,10,10] inside c: crowd IoU = 100/100 = 1 (plain IoU would be 0.04) → ignored;
    // d2 0.8 [95,10,10,10] half inside c: crowd IoU 50/100 = 0.5 → ignored at t = 0.50, a FP above;
    // d4 0.75 [30,30,10,10] a FP; d3 0.7 = g1, a TP. The crowd is not a gt to find: npig = 1.
    const g = parseCocoDataset(
      { images: [{ id: 1, width: 100, height: 100 }], categories: [{ id: 1, name: 'a' }], annotations: [ann(1, 1, 1, box(0, 0, 20, 20)), ann(2, 1, 1, box(50, 0, 50, 50), { iscrowd: 1 })] },
      'crowd.json',
    );
    const d = parseCocoResults([det(1, 1, box(55, 5, 10, 10), 0.9), det(1, 1, box(95, 10, 10, 10), 0.8), det(1, 1, box(30, 30, 10, 10), 0.75), det(1, 1, box(0, 0, 20, 20), 0.7)], g, 'dt.json');
    const c = evaluateCoco(g, d, { iouType: 'bbox' });
    // t = 0.50: ign, ign, FP, TP → recall 0,0,0,1; precision 0,0,0,½ → envelope ½ → AP ½.
    // t ≥ 0.55: ign, FP, FP, TP → precision at the TP 1/3 → AP ⅓.  AP = (½ + 9·⅓)/10 = 0.35.
    expect(c.metrics.AP50).toBeCloseTo(0.5, 14);
    expect(c.metrics.AP75).toBeCloseTo(1 / 3, 14);
    expect(c.metrics.AP).toBeCloseTo(0.35, 14);
    // every detection and g1 are small; the crowd (2500, medium) is ignored anyway → medium has no gt
    expect(c.metrics.APs).toBeCloseTo(0.35, 14);
    expect(c.metrics.APm).toBe(-1);
    // AR@1: the top detection is d1, ignored → recall 0. AR@10 = 1.
    expect(c.metrics.AR1).toBe(0);
    expect(c.metrics.AR10).toBe(1);
    expect(c.perCategory[0].numGt).toBe(1);
  });

  it('segm: the same crowd case on masks (box polygons rasterised on integer corners are exact)', () => {
    const g = parseCocoDataset(
      {
        images: [{ id: 1, width: 100, height: 100 }],
        categories: [{ id: 1, name: 'a' }],
        annotations: [
          { ...ann(1, 1, 1, box(0, 0, 20, 20)), segmentation: [[0, 0, 20, 0, 20, 20, 0, 20]] },
          // the crowd as an uncompressed RLE: columns 50..99, rows 0..49
          { ...ann(2, 1, 1, box(50, 0, 50, 50), { iscrowd: 1 }), segmentation: { size: [100, 100], counts: [5000, ...Array<number>(100).fill(50)] } },
        ],
      },
      'crowd-segm.json',
    );
    const d = parseCocoResults([det(1, 1, box(55, 5, 10, 10), 0.9), det(1, 1, box(95, 10, 10, 10), 0.8), det(1, 1, box(30, 30, 10, 10), 0.75), det(1, 1, box(0, 0, 20, 20), 0.7)], g, 'dt.json');
    const c = evaluateCoco(g, d, { iouType: 'segm' });
    // d2's box polygon is clipped at the image border: 5×10 pixels, all inside the crowd → crowd IoU 1,
    // so d2 is ignored at every t: ign, ign, FP, TP → AP ½ at every threshold.
    expect(c.metrics.AP).toBeCloseTo(0.5, 14);
    expect(c.metrics.AP75).toBeCloseTo(0.5, 14);
  });
});

describe('LVIS, by hand', () => {
  // Categories 1 (f), 2 (c), 3 (r), 4 (f). Image A (id 1): gts cat 1 [0,0,20,20], cat 3 [50,50,20,20];
  // neg_category_ids [2]; not_exhaustive_category_ids [3]. Image B (id 2): gts cat 1 [10,10,30,30],
  // cat 2 [60,60,20,20]; no negatives.
  const gt = parseCocoDataset(
    {
      images: [
        { id: 1, width: 100, height: 100, neg_category_ids: [2], not_exhaustive_category_ids: [3] },
        { id: 2, width: 100, height: 100, neg_category_ids: [], not_exhaustive_category_ids: [] },
      ],
      categories: [
        { id: 1, name: 'one', frequency: 'f' },
        { id: 2, name: 'two', frequency: 'c' },
        { id: 3, name: 'three', frequency: 'r' },
        { id: 4, name: 'four', frequency: 'f' },
      ],
      annotations: [ann(1, 1, 1, box(0, 0, 20, 20)), ann(2, 1, 3, box(50, 50, 20, 20)), ann(3, 2, 1, box(10, 10, 30, 30)), ann(4, 2, 2, box(60, 60, 20, 20))],
    },
    'lvis-hand.json',
  );
  const dts = parseCocoResults(
    [
      det(1, 1, box(0, 0, 20, 20), 0.9), // cat 1 TP
      det(2, 1, box(10, 10, 30, 15), 0.6), // cat 1, IoU 450/900 = 0.5: TP at t = 0.50 only
      det(1, 2, box(30, 30, 10, 10), 0.95), // cat 2 in A's negatives: kept, a FP ranked first
      det(2, 2, box(60, 60, 20, 20), 0.5), // cat 2 TP
      det(1, 3, box(80, 0, 10, 10), 0.8), // cat 3 not exhaustive in A: unmatched → ignored
      det(1, 3, box(50, 50, 20, 20), 0.7), // cat 3 TP
      det(2, 3, box(0, 0, 10, 10), 0.99), // cat 3 in B: neither gt nor negative → dropped
      det(1, 4, box(0, 0, 5, 5), 0.99), // cat 4: no gt anywhere, not a negative → dropped
    ],
    gt,
    'dt.json',
  );
  const r = evaluateLvis(gt, dts, { iouType: 'bbox' });

  it('federated negatives, not-exhaustive categories and r/c/f', () => {
    // cat 1: t = 0.50: TP, TP → AP 1. t ≥ 0.55: TP, FP → recall ½, ½; precision 1, ½ → r ≤ 0.50
    // (51 thresholds) read 1, the rest 0 → 51/101. AP1 = (1 + 9·51/101)/10 = 0.55446.
    const ap1 = (1 + (9 * 51) / 101) / 10;
    // cat 2: FP (A, a negative) then TP → precision ½ at recall 1 → AP ½ at every t.
    const ap2 = 1 / (2 + EPS);
    // cat 3: the unmatched detection in A is ignored (not exhaustive), B's is dropped → AP 1.
    const ap3 = 1 / (1 + EPS); // precision tp / (tp + fp + eps)
    expect(r.perCategory.map((c) => c.id)).toEqual([1, 2, 3, 4]);
    expect(r.perCategory[0].ap).toBeCloseTo(ap1, 14);
    expect(r.perCategory[1].ap).toBeCloseTo(ap2, 14);
    expect(r.perCategory[2].ap).toBeCloseTo(ap3, 14);
    expect(r.perCategory[3].ap).toBe(-1); // no gt: left out of every mean
    // every category contributes T·R precision values, so AP is the mean of the three
    expect(r.metrics.AP).toBeCloseTo((ap1 + ap2 + ap3) / 3, 14);
    expect(r.metrics.APr).toBeCloseTo(1, 14);
    expect(r.metrics.APc).toBeCloseTo(ap2, 14);
    expect(r.metrics.APf).toBeCloseTo(ap1, 14); // cat 4 (f) has no gt
    // AR@300: cat 1 recall 1 at 0.50 and ½ above → 0.55; cats 2 and 3 → 1. Mean 0.85.
    expect(r.metrics['AR@300']).toBeCloseTo((0.55 + 1 + 1) / 3, 14);
    // all gts are small (400 and 900 px²): no medium or large gt
    expect(r.metrics.APs).toBeCloseTo(r.metrics.AP, 14);
    expect(r.metrics.APm).toBe(-1);
    expect(r.metrics['ARl@300']).toBe(-1);
    expect(r.text.split('\n')[6]).toBe(' Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=300 catIds=  r] = 1.000');
  });

  it('without the federated rules the same detections score lower', () => {
    // if the negatives list did not hold cat 2, its FP in A would be dropped → cat 2 AP 1
    const noNeg = parseCocoDataset(
      {
        images: [{ id: 1, width: 100, height: 100, not_exhaustive_category_ids: [3] }, { id: 2, width: 100, height: 100 }],
        categories: gt.categories.map((c) => ({ id: c.id, name: c.name, frequency: c.frequency })),
        annotations: [ann(1, 1, 1, box(0, 0, 20, 20)), ann(2, 1, 3, box(50, 50, 20, 20)), ann(3, 2, 1, box(10, 10, 30, 30)), ann(4, 2, 2, box(60, 60, 20, 20))],
      },
      'x.json',
    );
    const d2 = parseCocoResults([det(1, 2, box(30, 30, 10, 10), 0.95), det(2, 2, box(60, 60, 20, 20), 0.5), det(1, 3, box(80, 0, 10, 10), 0.8), det(1, 3, box(50, 50, 20, 20), 0.7)], noNeg, 'dt.json');
    const a = evaluateLvis(noNeg, d2, { iouType: 'bbox' });
    expect(a.perCategory[1].ap).toBeCloseTo(1, 14);
    // and if cat 3 were exhaustive in A, its unmatched detection (0.8, ranked first) would be a FP → ½
    const exhaustive = parseCocoDataset({ images: [{ id: 1, width: 100, height: 100 }, { id: 2, width: 100, height: 100 }], categories: [{ id: 3, name: 'three', frequency: 'r' }], annotations: [ann(2, 1, 3, box(50, 50, 20, 20))] }, 'y.json');
    const b = evaluateLvis(exhaustive, parseCocoResults([det(1, 3, box(80, 0, 10, 10), 0.8), det(1, 3, box(50, 50, 20, 20), 0.7)], exhaustive, 'dt.json'), { iouType: 'bbox' });
    expect(b.perCategory[0].ap).toBeCloseTo(0.5, 14);
  });

  it('keeps the top 300 detections of an image by score, stably, grouped by image', () => {
    const many = Array.from({ length: 305 }, (_, i) => ({ imageId: 1 + (i % 2), score: i === 4 ? 0.5 : (i % 7) / 10, i }));
    const kept = limitDetsPerImage(many, 150);
    expect(kept.length).toBe(300);
    expect(kept.slice(0, 150).every((d) => d.imageId === 1)).toBe(true); // image 1 appeared first
    const img1 = many.filter((d) => d.imageId === 1).sort((a, b) => b.score - a.score);
    expect(kept.slice(0, 150).map((d) => d.i)).toEqual(img1.slice(0, 150).map((d) => d.i));
    expect(limitDetsPerImage(many, -1).map((d) => d.i)).toEqual([...many.filter((d) => d.imageId === 1), ...many.filter((d) => d.imageId === 2)].map((d) => d.i));
  });
});

describe('numerics as numpy', () => {
  it('thresholds are numpy.linspace values', () => {
    expect(IOU_THRESHOLDS.length).toBe(10);
    expect(RECALL_THRESHOLDS.length).toBe(101);
    expect(IOU_THRESHOLDS[0]).toBe(0.5);
    expect(IOU_THRESHOLDS[5]).toBe(0.75);
    expect(IOU_THRESHOLDS[9]).toBe(0.95);
    // i·0.01, not i/100: 57·0.01 = 0.5700000000000001 (numpy's value; recall 57/100 falls below it)
    expect(RECALL_THRESHOLDS[57]).toBe(0.5700000000000001);
    expect(RECALL_THRESHOLDS[3]).toBe(0.03);
    expect(RECALL_THRESHOLDS[100]).toBe(1);
    expect(linspace(0, 1, 3)).toEqual([0, 0.5, 1]);
  });

  it("mean by numpy's pairwise summation, and Python's round-half-even formatting", () => {
    // numpy.mean([0.1] * 10) is 0.1 (pairwise), the running sum gives 0.09999999999999999;
    // numpy.mean of these 1000 values is 0.5995, the running sum 0.5995000000000009
    expect(numpyMean(Array<number>(10).fill(0.1))).toBe(0.1);
    expect(numpyMean(Array.from({ length: 1000 }, (_, i) => 0.1 * ((i * 7919) % 13)))).toBe(0.5995);
    // past 8192 elements numpy sums buffer-sized chunks pairwise, one after another (values from numpy 1.24)
    const big = (n: number) => Array.from({ length: n }, (_, i) => 0.1 * ((i * 7919) % 13) + 1e-3 * (i % 17));
    expect(numpyMean(big(20000))).toBe(0.6079682000000001);
    expect(numpyMean(big(80800))).toBe(0.6079875247524752);
    expect(numpyMean([1, 2, 3])).toBe(2);
    expect(formatFixed3(0.0625)).toBe('0.062'); // '{:0.3f}'.format(0.0625) in Python
    expect(formatFixed3(0.1875)).toBe('0.188');
    expect(formatFixed3(0.8125)).toBe('0.812');
    expect(formatFixed3(-1)).toBe('-1.000');
    expect(formatFixed3(2 / 3)).toBe('0.667');
  });
});
