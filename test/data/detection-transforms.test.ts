// Detection transforms keep the image, boxes, masks and polygons consistent. Browser-safe (no
// files); test/data/detection-transforms-torchvision.test.ts compares with torchvision itself.
import { describe, expect, it } from 'vitest';
import { parseCocoDataset } from '../../data/coco.js';
import { batchImages, detectionBatch, horizontalFlipSample, randomHorizontalFlipSample, resizeBoxes, resizeSample, resizeScale, targetFromCoco, type DetectionSample } from '../../data/detection-transforms.js';
import { maskToRowMajor, rleDecode, segmentationToRle } from '../../data/masks.js';
import { DataRng } from '../../data/rng.js';

/** A 2-instance COCO image (H 12, W 20) with polygon masks on integer corners, and a ramp image. */
function sample(): DetectionSample {
  const gt = parseCocoDataset(
    {
      images: [{ id: 1, width: 20, height: 12 }],
      categories: [{ id: 3, name: 'a' }, { id: 5, name: 'b' }],
      annotations: [
        { id: 1, image_id: 1, category_id: 3, bbox: [2, 1, 5, 4], area: 20, iscrowd: 0, segmentation: [[2, 1, 7, 1, 7, 5, 2, 5]] },
        { id: 2, image_id: 1, category_id: 5, bbox: [10, 4, 8, 8], area: 32, iscrowd: 0, segmentation: [[10, 4, 18, 4, 14, 12]] },
      ],
    },
    't.json',
  );
  const image = Float32Array.from({ length: 3 * 12 * 20 }, (_, i) => (i % 20) + 100 * Math.floor(i / 240));
  return { image, channels: 3, height: 12, width: 20, originalSize: [12, 20], target: targetFromCoco(gt.annotations, gt.images[0]) };
}

const rasterOf = (polygons: number[][], H: number, W: number) => Array.from(maskToRowMajor(rleDecode(segmentationToRle(polygons, H, W)), H, W));

describe('detection transforms', () => {
  it('targetFromCoco: xyxy boxes, labels, row-major masks, polygons', () => {
    const s = sample();
    expect(Array.from(s.target.boxes)).toEqual([2, 1, 7, 5, 10, 4, 18, 12]);
    expect(Array.from(s.target.labels)).toEqual([3, 5]);
    const m0 = s.target.masks!.subarray(0, 240);
    // the box polygon (2,1)-(7,5) covers pixels x 2..6, y 1..4
    for (let y = 0; y < 12; y++) for (let x = 0; x < 20; x++) expect(m0[y * 20 + x]).toBe(x >= 2 && x < 7 && y >= 1 && y < 5 ? 1 : 0);
  });

  it('horizontal flip: x1\' = W − x2, masks and polygons flipped alike, image columns reversed', () => {
    const s = sample();
    const f = horizontalFlipSample(s);
    expect(Array.from(f.target.boxes)).toEqual([13, 1, 18, 5, 2, 4, 10, 12]);
    expect(f.target.polygons![0][0]).toEqual([18, 1, 13, 1, 13, 5, 18, 5]);
    // the flipped mask of the box instance is the raster of the flipped polygon
    expect(Array.from(f.target.masks!.subarray(0, 240))).toEqual(rasterOf(f.target.polygons![0], 12, 20));
    expect(f.image[0]).toBe(19);
    expect(f.image[19]).toBe(0);
    expect(f.image[240 + 5]).toBe(100 + 14);
    // twice is the identity
    const ff = horizontalFlipSample(f);
    expect(Array.from(ff.image)).toEqual(Array.from(s.image));
    expect(Array.from(ff.target.boxes)).toEqual(Array.from(s.target.boxes));
    expect(Array.from(ff.target.masks!)).toEqual(Array.from(s.target.masks!));
  });

  it('random flips are reproducible from the seed', () => {
    const flips = (seed: number) => Array.from({ length: 16 }, (_, i) => randomHorizontalFlipSample(sample(), new DataRng(seed, i)).target.boxes[0]);
    expect(flips(1)).toEqual(flips(1));
    expect(new Set(flips(1)).size).toBe(2); // both outcomes occur
    expect(flips(1)).not.toEqual(flips(2));
  });

  it('resize: torchvision scale, float32 arithmetic included', () => {
    expect(resizeScale(480, 640, 800, 1333).size).toEqual([800, 1066]);
    expect(resizeScale(100, 1000, 800, 1333).size).toEqual([133, 1333]); // the max size caps
    // 9 / 7 as torch computes it (9 · fround(1/7)) is just above 9/7: 7 · scale floors to 9, not 8
    expect(resizeScale(40, 7, 9, 100).size).toEqual([51, 9]);
  });

  it('resize ×2 keeps boxes, masks and polygons consistent', () => {
    const r = resizeSample(sample(), 24, 1000);
    expect([r.height, r.width]).toEqual([24, 40]);
    expect(Array.from(r.target.boxes)).toEqual([4, 2, 14, 10, 20, 8, 36, 24]);
    expect(r.target.polygons![0][0]).toEqual([4, 2, 14, 2, 14, 10, 4, 10]);
    // nearest ×2 of the box mask = the raster of the doubled box polygon
    expect(Array.from(r.target.masks!.subarray(0, 24 * 40))).toEqual(rasterOf(r.target.polygons![0], 24, 40));
    // postprocess: boxes back to the original image
    expect(Array.from(resizeBoxes(r.target.boxes, [24, 40], [12, 20]))).toEqual(Array.from(sample().target.boxes));
  });

  it('batching pads to multiples of 32 with zeros and records both sizes', () => {
    const a = sample();
    const b = resizeSample(sample(), 24, 1000);
    const list = batchImages([a, b]);
    expect([list.batch, list.channels, list.height, list.width]).toEqual([2, 3, 32, 64]);
    expect(list.imageSizes).toEqual([
      [12, 20],
      [24, 40],
    ]);
    expect(list.originalSizes).toEqual([
      [12, 20],
      [12, 20],
    ]);
    const at = (n: number, c: number, y: number, x: number) => list.tensor[((n * 3 + c) * 32 + y) * 64 + x];
    expect(at(0, 1, 3, 7)).toBe(a.image[240 + 3 * 20 + 7]);
    expect(at(0, 1, 3, 20)).toBe(0);
    expect(at(0, 2, 12, 0)).toBe(0);
    expect(at(1, 2, 23, 39)).toBe(b.image[2 * 960 + 23 * 40 + 39]);
    expect(at(1, 0, 24, 0)).toBe(0);
    expect(() => batchImages([])).toThrow(/no images/);
  });

  it('the training pipeline (flip, normalise, random min size, batch) is deterministic per seed', () => {
    const run = (seed: number) => detectionBatch([sample(), sample()], { minSize: [16, 24, 32], maxSize: 64, mean: [0, 0, 0], std: [1, 1, 1] }, new DataRng(seed));
    const x = run(3);
    const y = run(3);
    expect(x.imageSizes).toEqual(y.imageSizes);
    expect(Array.from(x.tensor)).toEqual(Array.from(y.tensor));
    for (const [h] of x.imageSizes) expect([16, 24, 32]).toContain(h); // shorter side = the drawn min size
    // evaluation: no flip, the last min size
    const e = detectionBatch([sample()], { minSize: [16, 24], maxSize: 64 });
    expect(e.imageSizes).toEqual([[24, 40]]);
  });
});
