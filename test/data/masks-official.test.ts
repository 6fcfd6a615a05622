// data/masks.ts against pycocotools' own C code (common/maskApi.c, run by
// scripts/make-coco-fixtures.py): polygon rasters (off-grid, outside the image, self-intersecting,
// degenerate, multi-part), boxes, compressed strings, areas, boxes of masks, and IoU with crowd flags.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bboxIou, bboxToRle, rleArea, rleFromString, rleIou, rleToBbox, rleToString, segmentationToRle } from '../../data/masks.js';

const fx = JSON.parse(readFileSync(new URL('../fixtures/coco-eval/masks.json', import.meta.url), 'utf8'));

describe('masks = pycocotools maskApi.c', () => {
  it(`polygons (${fx.polygons.length} cases): frPyObjects + merge, area, toBbox, string`, () => {
    for (const c of fx.polygons) {
      const r = segmentationToRle(c.polygons, c.h, c.w);
      expect(Array.from(r.counts), JSON.stringify(c.polygons)).toEqual(c.counts);
      expect(rleToString(r)).toBe(c.string);
      expect(rleArea(r)).toBe(c.area);
      expect(rleToBbox(r)).toEqual(c.bbox);
    }
  });

  it(`boxes (${fx.boxes.length} cases): frBbox`, () => {
    for (const c of fx.boxes) {
      const r = bboxToRle(c.bbox, c.h, c.w);
      expect(Array.from(r.counts), JSON.stringify(c.bbox)).toEqual(c.counts);
      expect(rleToString(r)).toBe(c.string);
    }
  });

  it(`random masks (${fx.masks.length}) and large counts: strings both ways, area, toBbox`, () => {
    for (const c of fx.masks) {
      const r = { h: c.h, w: c.w, counts: Uint32Array.from(c.counts) };
      expect(rleToString(r)).toBe(c.string);
      expect(Array.from(rleFromString(c.string, c.h, c.w).counts)).toEqual(c.counts);
      expect(rleArea(r)).toBe(c.area);
      expect(rleToBbox(r)).toEqual(c.bbox);
    }
    for (const c of fx.large) {
      expect(rleToString({ h: c.h, w: c.w, counts: Uint32Array.from(c.counts) })).toBe(c.string);
      expect(Array.from(rleFromString(c.string, c.h, c.w).counts)).toEqual(c.counts);
    }
  });

  it(`IoU (${fx.iou.length} cases): masks with crowd flags, and boxes`, () => {
    for (const c of fx.iou) {
      const dt = c.dt.map((s: string) => rleFromString(s, c.h, c.w));
      const gt = c.gt.map((s: string) => rleFromString(s, c.h, c.w));
      const o = rleIou(dt, gt, c.crowd);
      expect(Array.from(o)).toEqual(c.iou.flat());
      expect(Array.from(bboxIou(c.dtBoxes, c.gtBoxes, c.boxCrowd))).toEqual(c.boxIou.flat());
    }
  });
});
