// The embedded LVIS-like set: deterministic, long-tailed by LVIS's own definitions (counted from the
// generated training split), exact masks, near-balanced test split, and its ground truth scores
// AP = 1 in the project's LVIS evaluator. Browser-safe.
import { beforeAll, describe, expect, it } from 'vitest';
import { cocoDatasetToJson, loadDetectionSamples, lvisFrequency, rleArea, rleDecode, rleToBbox, segmentationToRle, syntheticLvis, syntheticLvisCategories, type CocoDataset, type CocoDetection, type InstanceSet } from '../../data/index.js';
import { evaluateLvis, type IouType } from '../../detection/eval/index.js';

/** The set as bytes: its annotation file and an FNV-1a hash of every image's 8-bit pixels. */
async function bytes(set: InstanceSet): Promise<string> {
  let h = 0x811c9dc5;
  for (const im of set.dataset.images) for (const v of await set.pixels(im)) h = Math.imul(h ^ Math.round(v * 255), 16777619);
  return `${JSON.stringify(cocoDatasetToJson(set.dataset))} ${h >>> 0}`;
}

const tally = (d: CocoDataset, key: (a: CocoDataset['annotations'][number]) => number) => {
  const m = new Map<number, number>();
  for (const a of d.annotations) m.set(key(a), (m.get(key(a)) ?? 0) + 1);
  return m;
};

describe('syntheticLvis', () => {
  let train: InstanceSet;
  let test: InstanceSet;
  beforeAll(() => ({ train, test } = syntheticLvis()));

  it('same seed, same bytes; another seed, another set', async () => {
    const a = syntheticLvis({ seed: 3, trainImages: 24, testImages: 8 });
    const b = syntheticLvis({ seed: 3, trainImages: 24, testImages: 8 });
    const c = syntheticLvis({ seed: 4, trainImages: 24, testImages: 8 });
    expect((await bytes(a.train)) === (await bytes(b.train))).toBe(true);
    expect((await bytes(a.test)) === (await bytes(b.test))).toBe(true);
    expect((await bytes(a.train)) === (await bytes(c.train))).toBe(false);
    // the vocabulary does not depend on the seed
    expect(a.train.dataset.categories.map((x) => x.name)).toEqual(c.train.dataset.categories.map((x) => x.name));
  });

  it('30 distinct categories in LVIS v1 proportions, frequency, image_count and instance_count counted from the training split', () => {
    const d = train.dataset;
    expect(d.lvis).toBe(true);
    expect(new Set(syntheticLvisCategories(30).map((c) => c.name)).size).toBe(30);
    expect(['r', 'c', 'f'].map((f) => d.categories.filter((c) => c.frequency === f).length)).toEqual([8, 12, 10]);
    const images = new Map<number, Set<number>>();
    for (const a of d.annotations) images.set(a.categoryId, (images.get(a.categoryId) ?? new Set()).add(a.imageId));
    const instances = tally(d, (a) => a.categoryId);
    for (const c of d.categories) {
      expect(c.imageCount, c.name).toBe(images.get(c.id)?.size ?? 0);
      expect(c.instanceCount, c.name).toBe(instances.get(c.id));
      expect(c.frequency, c.name).toBe(lvisFrequency(c.imageCount!));
      expect(c.imageCount).toBeGreaterThan(0);
    }
    // the test file names the same categories with the training counts
    expect(test.dataset.categories).toEqual(d.categories);
  });

  it('1–5 instances an image, sides 112–144, every test category in ≥ 6 test instances, negatives absent, nothing non-exhaustive', () => {
    for (const d of [train.dataset, test.dataset]) {
      const perImage = tally(d, (a) => a.imageId);
      for (const im of d.images) {
        expect(perImage.get(im.id)).toBeGreaterThanOrEqual(1);
        expect(perImage.get(im.id)).toBeLessThanOrEqual(5);
        expect(Math.min(im.width, im.height)).toBeGreaterThanOrEqual(112);
        expect(Math.max(im.width, im.height)).toBeLessThanOrEqual(144);
        const present = new Set(d.annotations.filter((a) => a.imageId === im.id).map((a) => a.categoryId));
        expect(im.negCategoryIds.some((c) => present.has(c))).toBe(false);
        expect(im.notExhaustiveCategoryIds).toEqual([]);
      }
      expect(d.annotations.every((a) => !a.iscrowd)).toBe(true);
    }
    const testCounts = tally(test.dataset, (a) => a.categoryId);
    for (const c of test.dataset.categories) expect(testCounts.get(c.id), c.name).toBeGreaterThanOrEqual(6);
    expect([...train.dataset.images, ...test.dataset.images].reduce((s, im) => s + im.negCategoryIds.length, 0)).toBeGreaterThan(0);
  });

  it('each mask is the visible object: box = the mask extent, area = its pixels, ≥ 12 px wide objects, polygons and RLEs', () => {
    let polygons = 0;
    for (const d of [train.dataset, test.dataset]) {
      for (const a of d.annotations) {
        const im = d.imageById.get(a.imageId)!;
        const rle = segmentationToRle(a.segmentation!, im.height, im.width);
        expect(rleToBbox(rle)).toEqual(a.bbox);
        expect(rleArea(rle)).toBe(a.area);
        expect(Math.max(a.bbox[2], a.bbox[3])).toBeGreaterThanOrEqual(6); // ≥ 60% of a ≥ 12 px object stays visible
        if (Array.isArray(a.segmentation)) polygons++;
      }
    }
    expect(polygons).toBeGreaterThan(0);
    expect(polygons).toBeLessThan(train.dataset.annotations.length + test.dataset.annotations.length);
  });

  it('the painted pixels follow the masks: every pixel of an instance shares one hue family, unlike the image outside it', async () => {
    const d = train.dataset;
    const im = d.images[0];
    const px = await train.pixels(im);
    expect(px.length).toBe(3 * im.width * im.height);
    expect(px.every((v) => v >= 0 && v <= 1)).toBe(true);
    for (const a of d.annotations.filter((x) => x.imageId === im.id)) {
      const m = rleDecode(segmentationToRle(a.segmentation!, im.height, im.width));
      const plane = im.width * im.height;
      const mean = (on: number) => [0, 1, 2].map((c) => {
        let s = 0;
        let n = 0;
        for (let x = 0; x < im.width; x++) for (let y = 0; y < im.height; y++) if (m[x * im.height + y] === on) (s += px[c * plane + y * im.width + x]), n++;
        return s / n;
      });
      const inside = mean(1);
      const outside = mean(0);
      expect(Math.max(...inside.map((v, c) => Math.abs(v - outside[c])))).toBeGreaterThan(0.1);
    }
  });

  it('its own ground truth as detections scores AP = 1 in the LVIS evaluator (bbox and segm, AP_r / AP_c / AP_f included)', () => {
    for (const { dataset } of [test, train]) {
      const dts: CocoDetection[] = dataset.annotations.map((a) => ({ imageId: a.imageId, categoryId: a.categoryId, bbox: a.bbox, score: 1, segmentation: a.segmentation }));
      for (const iouType of ['bbox', 'segm'] as IouType[]) {
        const r = evaluateLvis(dataset, dts, { iouType });
        for (const k of ['AP', 'AP50', 'AP75', 'APr', 'APc', 'APf', 'AR@300']) expect(r.metrics[k], `${dataset.file} ${iouType} ${k}`).toBeCloseTo(1, 12);
      }
    }
  });

  it('loads into detection samples with nothing skipped or dropped', async () => {
    const small = syntheticLvis({ seed: 1, trainImages: 12, testImages: 4 });
    const lines: string[] = [];
    const r = await loadDetectionSamples(small.train, { labelOf: (c) => c, training: true, log: (l) => lines.push(l) });
    expect([r.samples.length, r.skipped.length, r.droppedAnnotations, lines]).toEqual([12, 0, 0, []]);
    const s = r.samples[0].sample;
    const anns = small.train.dataset.annotations.filter((a) => a.imageId === r.samples[0].imageId);
    expect(s.target.labels.length).toBe(anns.length);
    const plane = s.height * s.width;
    anns.forEach((a, i) => expect(s.target.masks!.subarray(i * plane, (i + 1) * plane).reduce((x, v) => x + v, 0)).toBe(a.area));
  });

  it('rejects bad options in one line', () => {
    expect(() => syntheticLvis({ numCategories: 0 })).toThrow('syntheticLvis: numCategories must be an integer in [1, 252], got 0');
    expect(() => syntheticLvis({ seed: -1 })).toThrow('syntheticLvis: seed must be a non-negative integer, got -1');
    expect(() => syntheticLvis({ size: 16 })).toThrow(/size must be at least 32/);
  });
});
