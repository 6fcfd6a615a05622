// The ground truth fed back as detections scores AP = 1.0 (bbox and segm) on the real files. Crowd
// regions are left out of the detections (they are ignored gts, not objects to find). Recall at 1
// and 10 detections stays below 1 where an image holds more instances of a category.
import { describe, expect, it } from 'vitest';
import { parseCocoDataset, type CocoDataset, type CocoDetection } from '../../../data/coco.js';
import { evaluateCoco, evaluateLvis, type IouType } from '../../../detection/eval/index.js';
import { COCO_MINI_TRAIN, COCO_MINI_VAL, LVIS_SAMPLE, readShared } from '../../data/coco-data.js';

const asDetections = (gt: CocoDataset): CocoDetection[] => gt.annotations.filter((a) => !a.iscrowd).map((a) => ({ imageId: a.imageId, categoryId: a.categoryId, bbox: a.bbox, score: 1, segmentation: a.segmentation }));

describe('ground truth as detections', () => {
  for (const [name, file] of [['coco_mini val2017', COCO_MINI_VAL], ['coco_mini train2017', COCO_MINI_TRAIN]]) {
    it(`${name}: every AP is 1 (bbox and segm)`, () => {
      const gt = parseCocoDataset(readShared(file), name);
      for (const iouType of ['bbox', 'segm'] as IouType[]) {
        const r = evaluateCoco(gt, asDetections(gt), { iouType });
        expect(r.stats.slice(0, 6), iouType).toEqual([1, 1, 1, 1, 1, 1]);
        expect(r.stats.slice(8), iouType).toEqual([1, 1, 1, 1]);
        // per category, precision tp / (tp + fp + eps) = 1 / (1 + 2^-52): 1 to 15 digits
        for (const c of r.perCategory.filter((x) => x.numGt > 0)) expect(c.ap).toBeCloseTo(1, 14);
        expect(r.perCategory.filter((c) => c.numGt === 0).every((c) => c.ap === -1)).toBe(true);
      }
    });
  }

  it('the LVIS v0.5 sample: AP, AP_r, AP_c, AP_f and AR@300 are 1 (bbox and segm)', () => {
    const gt = parseCocoDataset(readShared(LVIS_SAMPLE), 'lvis_v0.5_val_100.json');
    for (const iouType of ['bbox', 'segm'] as IouType[]) {
      const r = evaluateLvis(gt, asDetections(gt), { iouType });
      for (const [k, v] of Object.entries(r.metrics)) expect(v, `${iouType} ${k}`).toBeCloseTo(1, 14);
      expect(r.perCategory.filter((c) => c.ap > -1).length).toBe(190);
    }
  });
});
