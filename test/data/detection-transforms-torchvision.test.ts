// data/detection-transforms.ts against torchvision 0.14's GeneralizedRCNNTransform itself (fixture from
// scripts/make-detection-transform-fixtures.py): normalise + resize (bilinear image, nearest masks,
// boxes) + padding to a multiple of 32, with upsampling, downsampling and the max-size cap.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { detectionBatch, type DetectionSample } from '../../data/detection-transforms.js';

interface Case {
  minSize: number;
  maxSize: number;
  inputs: { image: number[]; height: number; width: number; boxes: number[]; masks: number[] }[];
  tensorShape: number[];
  tensor: number[];
  imageSizes: [number, number][];
  boxes: number[][];
  masks: number[][];
}
const fx: { cases: Case[] } = JSON.parse(readFileSync(new URL('../fixtures/detection-transforms/rcnn-transform.json', import.meta.url), 'utf8'));

describe('detection transforms = torchvision GeneralizedRCNNTransform (eval)', () => {
  fx.cases.forEach((c, i) => {
    it(`case ${i}: min ${c.minSize}, max ${c.maxSize}, images ${c.inputs.map((x) => `${x.height}×${x.width}`).join(', ')}`, () => {
      const samples: DetectionSample[] = c.inputs.map((x) => ({
        image: Float32Array.from(x.image),
        channels: 3,
        height: x.height,
        width: x.width,
        originalSize: [x.height, x.width],
        target: { boxes: Float32Array.from(x.boxes), labels: Int32Array.of(0, 1, 2), masks: Uint8Array.from(x.masks) },
      }));
      const list = detectionBatch(samples, { minSize: [c.minSize], maxSize: c.maxSize });
      expect([list.batch, list.channels, list.height, list.width]).toEqual(c.tensorShape);
      expect(list.imageSizes).toEqual(c.imageSizes);
      expect(list.originalSizes).toEqual(c.inputs.map((x) => [x.height, x.width]));
      let err = 0;
      let ref = 0;
      c.tensor.forEach((v, j) => {
        err += (list.tensor[j] - Math.fround(v)) ** 2;
        ref += v * v;
      });
      expect(Math.sqrt(err / ref)).toBeLessThan(1e-6);
      list.targets.forEach((t, k) => {
        expect(Array.from(t.boxes)).toEqual(c.boxes[k].map(Math.fround));
        expect(Array.from(t.masks!)).toEqual(c.masks[k]);
      });
    });
  });
});
