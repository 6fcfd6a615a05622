// The evaluator and the RLE code against golden values from the official code itself: pycocotools'
// maskApi.c, coco.py and cocoeval.py, and lvis-api's eval.py, run by scripts/make-coco-fixtures.py
// (see there how, without pycocotools installed) on seeded, perturbed detections: jittered and
// rescaled gt polygons and boxes, duplicates, false positives of random categories, scores rounded
// to two digits (many ties), a crowd region, LVIS negatives, unverified categories and
// not-exhaustive ones, and an image over the 300-per-image limit.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseCocoDataset, parseCocoResults } from '../../../data/coco.js';
import { evaluateCoco, evaluateLvis, type IouType } from '../../../detection/eval/index.js';
import { COCO_MINI_VAL, LVIS_SAMPLE, readShared } from '../../data/coco-data.js';

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../../fixtures/coco-eval/${name}`, import.meta.url), 'utf8'));

/** Bit-exact: the matching, the accumulation and numpy's pairwise mean are reproduced in float64. */
const close = (a: number, b: number) => a === b;

function checkCoco(gtJson: unknown, fx: { dt: unknown; bbox: { stats: number[]; text: string; perCategory: { id: number; ap: number }[] }; segm: { stats: number[]; text: string; perCategory: { id: number; ap: number }[] } }) {
  const gt = parseCocoDataset(gtJson, 'gt.json');
  const dts = parseCocoResults(fx.dt, gt, 'dt.json');
  for (const iouType of ['bbox', 'segm'] as IouType[]) {
    const want = fx[iouType];
    const got = evaluateCoco(gt, dts, { iouType });
    got.stats.forEach((v, i) => expect(close(v, want.stats[i]), `${iouType} stats[${i}]: ${v} vs pycocotools ${want.stats[i]}`).toBe(true));
    expect(got.text).toBe(want.text);
    expect(got.perCategory.length).toBe(want.perCategory.length);
    got.perCategory.forEach((c, k) => {
      expect(c.id).toBe(want.perCategory[k].id);
      expect(close(c.ap, want.perCategory[k].ap), `${iouType} category ${c.id}: AP ${c.ap} vs ${want.perCategory[k].ap}`).toBe(true);
    });
  }
}

describe('COCO evaluation = pycocotools COCOeval', () => {
  it('a synthetic set: sizes small to large, a crowd region, a category without gt, RLE results, >100 detections on an image', () => {
    const fx = fixture('coco-synthetic.json');
    checkCoco(fx.gt, fx);
  });

  it('the same results without boxes (loadRes takes areas and boxes from the masks)', () => {
    const fx = fixture('coco-synthetic.json');
    checkCoco(fx.gt, fx.maskOnly);
  });

  it('coco_mini val2017 with perturbed detections (772), bbox and segm', () => {
    checkCoco(JSON.parse(readShared(COCO_MINI_VAL)), fixture('coco-mini.json'));
  });
});

describe('LVIS evaluation = lvis-api LVISEval', () => {
  it('lvis_v0.5_val_100 with perturbed detections, negatives, unverified and not-exhaustive categories, >300 on one image', () => {
    const fx = fixture('lvis-sample.json');
    const gt = parseCocoDataset(readShared(LVIS_SAMPLE), 'lvis_v0.5_val_100.json');
    expect(gt.lvis).toBe(true);
    const dts = parseCocoResults(fx.dt, gt, 'dt.json');
    for (const iouType of ['bbox', 'segm'] as IouType[]) {
      const want = fx[iouType];
      const got = evaluateLvis(gt, dts, { iouType });
      expect(Object.keys(got.metrics)).toEqual(Object.keys(want.results));
      for (const [k, v] of Object.entries(got.metrics)) expect(close(v, want.results[k]), `${iouType} ${k}: ${v} vs lvis-api ${want.results[k]}`).toBe(true);
      expect(got.text).toBe(want.text);
      const ours = got.perCategory.filter((c) => c.ap > -1);
      expect(ours.map((c) => c.id)).toEqual(want.perCategory.map((c: { id: number }) => c.id));
      ours.forEach((c, k) => expect(close(c.ap, want.perCategory[k].ap), `${iouType} category ${c.id}`).toBe(true));
    }
  });
});
