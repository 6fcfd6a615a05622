import { describe, expect, it } from 'vitest';
import {
  adjustColor, applyTransforms, centerCrop, colorJitterParams, cifarTrainTransforms, crop, DataRng, horizontalFlip, imagenetEvalTransforms, imagenetTrainTransforms,
  normalizeInto, randomCrop, randomResizedCropWindow, resizeBilinear, resizedSize, roundHalfEven, shuffledOrder, transformedSize, type RgbImage,
} from '../../data/index.js';

/** Pixel (y, x) = [(37x + 11y), (5x² + 3y), (13xy + 7)] mod 256: the image the Pillow references used. */
function pattern(height: number, width: number): RgbImage {
  const data = new Uint8Array(height * width * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set([(x * 37 + y * 11) % 256, (x * x * 5 + y * 3) % 256, (x * y * 13 + 7) % 256], (y * width + x) * 3);
  return { width, height, data };
}

// Pillow 12.3 Image.resize((w, h), BILINEAR) of pattern(7, 9) to 3x4, pattern(3, 4) to 7x5 and pattern(20, 17) to 5x6.
const PIL_DOWN = [40, 9, 16, 115, 48, 39, 181, 140, 64, 70, 168, 87, 64, 15, 39, 139, 54, 113, 185, 140, 140, 79, 142, 121, 88, 21, 63, 163, 60, 147, 160, 133, 107, 66, 70, 117];
const PIL_UP = [
  0, 0, 7, 26, 4, 7, 56, 13, 7, 85, 27, 7, 111, 45, 7, 2, 0, 7, 28, 4, 8, 58, 13, 10, 87, 27, 11, 113, 45, 13, 6, 2, 7, 32, 6, 12, 62, 15, 18, 91, 29, 24, 117, 47, 29, 11, 3, 7,
  37, 7, 16, 67, 16, 27, 96, 30, 37, 122, 48, 46, 16, 4, 7, 42, 8, 20, 72, 17, 35, 101, 31, 50, 127, 49, 63, 20, 6, 7, 46, 10, 24, 76, 19, 43, 105, 33, 63, 131, 51, 79, 22, 6,
  7, 48, 10, 25, 78, 19, 46, 107, 33, 67, 133, 51, 85,
];
const PIL_DOWN2 = [
  65, 18, 36, 158, 84, 87, 119, 161, 107, 113, 152, 104, 158, 156, 100, 75, 105, 114, 105, 29, 84, 170, 95, 127, 94, 114, 125, 150, 100, 118, 131, 154, 128, 97, 116, 122, 149,
  41, 96, 136, 107, 119, 98, 117, 124, 167, 102, 107, 91, 164, 129, 141, 128, 131, 177, 53, 107, 102, 119, 115, 136, 129, 130, 138, 113, 130, 94, 155, 144, 176, 122, 142,
  163, 63, 155, 86, 129, 152, 167, 139, 132, 108, 117, 132, 128, 81, 146, 166, 90, 144,
];

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
const pixel = (img: RgbImage, y: number, x: number) => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

describe('seeded random numbers', () => {
  it('depends only on the key', () => {
    const draw = (...key: number[]) => Array.from({ length: 8 }, ((r) => () => r.nextU32())(new DataRng(...key)));
    expect(draw(7, 0, 3)).toEqual(draw(7, 0, 3));
    expect(draw(7, 0, 3)).not.toEqual(draw(7, 0, 4));
    expect(draw(7, 0, 3)).not.toEqual(draw(7, 1, 3));
    expect(draw(7, 0)).not.toEqual(draw(7, 0, 0));
    expect(draw(2 ** 40)).not.toEqual(draw(0));
    expect(() => new DataRng(-1)).toThrow(RangeError);
  });

  it('draws uniform values and unbiased integers', () => {
    const rng = new DataRng(1);
    const bins = new Array(6).fill(0);
    let sum = 0, lo = 1, hi = 0;
    for (let i = 0; i < 60000; i++) {
      const u = rng.random();
      (sum += u), (lo = Math.min(lo, u)), (hi = Math.max(hi, u));
      bins[rng.below(6)]++;
    }
    expect(lo >= 0 && hi < 1).toBe(true);
    expect(Math.abs(sum / 60000 - 0.5)).toBeLessThan(0.01);
    // Chi-square with 5 degrees of freedom: 20.5 is its 99.9% quantile.
    expect(bins.reduce((c, b) => c + (b - 10000) ** 2 / 10000, 0)).toBeLessThan(20.5);
    const order = shuffledOrder(1000, 3, 0);
    expect(Array.from(order).sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(Array.from(order)).toEqual(Array.from(shuffledOrder(1000, 3, 0)));
    expect(Array.from(order)).not.toEqual(Array.from(shuffledOrder(1000, 3, 1)));
  });
});

describe('augmentation', () => {
  it('resizes like Pillow bilinear (antialiased when shrinking)', () => {
    expect(maxDiff(resizeBilinear(pattern(7, 9), 3, 4).data, PIL_DOWN)).toBeLessThanOrEqual(1);
    expect(maxDiff(resizeBilinear(pattern(3, 4), 7, 5).data, PIL_UP)).toBeLessThanOrEqual(1);
    expect(maxDiff(resizeBilinear(pattern(20, 17), 5, 6).data, PIL_DOWN2)).toBeLessThanOrEqual(1);
    const img = pattern(6, 5);
    expect(Array.from(resizeBilinear(img, 6, 5).data)).toEqual(Array.from(img.data));
    // Resizing a crop window equals cropping then resizing.
    const win = { top: 3, left: 2, height: 9, width: 7 };
    expect(Array.from(resizeBilinear(pattern(20, 17), 4, 5, win).data)).toEqual(Array.from(resizeBilinear(crop(pattern(20, 17), win), 4, 5).data));
    expect(() => resizeBilinear(img, 2, 2, { top: 4, left: 0, height: 3, width: 5 })).toThrow(RangeError);
  });

  it('sizes and crops like torchvision Resize / CenterCrop', () => {
    expect(resizedSize(375, 500, 256)).toEqual([256, 341]);
    expect(resizedSize(500, 375, 256)).toEqual([341, 256]);
    expect(resizedSize(10, 10, [3, 4])).toEqual([3, 4]);
    expect([roundHalfEven(58.5), roundHalfEven(59.5), roundHalfEven(-0.5), roundHalfEven(2.4)]).toEqual([58, 60, -0, 2]);
    const img = pattern(8, 11);
    const c = centerCrop(img, [4, 4]);
    // top = round(2) = 2, left = round(3.5) = 4.
    expect(pixel(c, 0, 0)).toEqual(pixel(img, 2, 4));
    expect(pixel(c, 3, 3)).toEqual(pixel(img, 5, 7));
    // Larger than the image: zero padding around it.
    const padded = centerCrop(pattern(2, 2), 4);
    expect(pixel(padded, 0, 0)).toEqual([0, 0, 0]);
    expect(pixel(padded, 1, 1)).toEqual(pixel(pattern(2, 2), 0, 0));
    expect(transformedSize(imagenetEvalTransforms(), [375, 500])).toEqual([224, 224]);
    expect(transformedSize([{ op: 'resize', size: 256 }])).toBeUndefined();
    expect(transformedSize([{ op: 'resize', size: 256 }], [375, 500])).toEqual([256, 341]);
    expect(transformedSize([], [32, 32])).toEqual([32, 32]);
    expect(transformedSize(imagenetTrainTransforms(112))).toEqual([112, 112]);
  });

  it('flips horizontally', () => {
    const img = pattern(3, 5);
    const f = horizontalFlip(img);
    expect(pixel(f, 1, 0)).toEqual(pixel(img, 1, 4));
    expect(pixel(f, 2, 3)).toEqual(pixel(img, 2, 1));
    expect(Array.from(horizontalFlip(f).data)).toEqual(Array.from(img.data));
  });

  it('random-resized-crop windows follow torchvision: in bounds, scale and ratio in range, center-crop fallback', () => {
    let smallest = 1, largest = 0;
    for (let i = 0; i < 500; i++) {
      const b = randomResizedCropWindow(300, 400, new DataRng(5, 0, i));
      expect(b.top >= 0 && b.left >= 0 && b.top + b.height <= 300 && b.left + b.width <= 400).toBe(true);
      const area = (b.height * b.width) / (300 * 400);
      smallest = Math.min(smallest, area);
      largest = Math.max(largest, area);
      // Rounding w and h moves the ratio a little off the range on small windows.
      const ratio = b.width / b.height;
      expect(ratio).toBeGreaterThan((3 / 4) * 0.9);
      expect(ratio).toBeLessThan((4 / 3) * 1.1);
    }
    expect(smallest).toBeGreaterThan(0.07);
    expect(smallest).toBeLessThan(0.15);
    expect(largest).toBeGreaterThan(0.8);
    // A 1x100 strip never fits a ratio in [3/4, 4/3] with area >= 8: center crop of ratio 4/3 -> 1x1.
    expect(randomResizedCropWindow(1, 100, new DataRng(0))).toEqual({ top: 0, left: 49, height: 1, width: 1 });
    // A 100x10 strip: ratio clamped to 3/4 -> w = 10, h = round(10 / 0.75) = 13.
    expect(randomResizedCropWindow(100, 10, new DataRng(0), [0.99, 1])).toEqual({ top: 43, left: 0, height: 13, width: 10 });
  });

  it('random crop with padding shifts by -4..4 with zero fill', () => {
    // Pixel (y, x) = [x + 1, y + 1, 9]: the output's pixel (4, 4) tells the shift.
    const img: RgbImage = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3) };
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) img.data.set([x + 1, y + 1, 9], (y * 32 + x) * 3);
    const shifts = new Set<string>();
    for (let i = 0; i < 400; i++) {
      const out = randomCrop(img, 32, 4, new DataRng(1, 0, i));
      const [x1, y1] = pixel(out, 4, 4);
      const dx = x1 - 5, dy = y1 - 5;
      expect(Math.abs(dx) <= 4 && Math.abs(dy) <= 4).toBe(true);
      shifts.add(`${dx},${dy}`);
      // Rows/columns shifted in from outside the image are zero.
      if (dy < 0) expect(pixel(out, 0, 10)).toEqual([0, 0, 0]);
      if (dx > 0) expect(pixel(out, 10, 31)).toEqual([0, 0, 0]);
    }
    expect(shifts.size).toBeGreaterThan(70); // of the 81 possible shifts
  });

  it('is reproducible: the same key gives the same bytes, another key other bytes', () => {
    const img = pattern(45, 60);
    const run = (steps: Parameters<typeof applyTransforms>[1], ...key: number[]) => Array.from(applyTransforms(img, steps, new DataRng(...key)).data);
    for (const steps of [imagenetTrainTransforms(24), cifarTrainTransforms(32, 4)]) {
      const a = run(steps, 11, 2, 7);
      expect(run(steps, 11, 2, 7)).toEqual(a);
      expect(run(steps, 12, 2, 7)).not.toEqual(a);
      expect(run(steps, 11, 3, 7)).not.toEqual(a);
      expect(run(steps, 11, 2, 8)).not.toEqual(a);
    }
    expect(applyTransforms(img, imagenetTrainTransforms(24), new DataRng(0)).width).toBe(24);
    // Deterministic transforms ignore the generator.
    expect(run(imagenetEvalTransforms(24, 32), 1)).toEqual(run(imagenetEvalTransforms(24, 32), 2));
  });

  it('color jitter follows torchvision: factors in [max(0, 1 - v), 1 + v], a random order, blends and clamps (hand-computed)', () => {
    // [255, 0, 0] and [0, 0, 255]; contrast 0.5 first: mean gray = (0.2989 + 0.114)/2 = 0.20645, so
    // x -> 0.5x + 0.103225; brightness 1.2 -> [0.72387, 0.12387, 0.12387 | 0.12387, 0.12387, 0.72387];
    // saturation 0 -> the gray of each pixel: 0.30319761·255 = 77.3, 0.19225761·255 = 49.0.
    const img: RgbImage = { width: 2, height: 1, data: new Uint8Array([255, 0, 0, 0, 0, 255]) };
    const p = { brightness: 1.2, contrast: 0.5, saturation: 0 };
    expect(Array.from(adjustColor(img, { ...p, order: [1, 0, 2, 3] }).data)).toEqual([77, 77, 77, 49, 49, 49]);
    // Brightness first clamps 1.2 to 1, then contrast gives 0.603225 / 0.103225, then gray:
    // 0.25266468·255 = 64.4 and 0.16021468·255 = 40.9.
    expect(Array.from(adjustColor(img, { ...p, order: [3, 0, 1, 2] }).data)).toEqual([64, 64, 64, 41, 41, 41]);
    // Saturation 2 pushes away from gray and clamps at 0 and 1: 2·1 − 0.2989 > 1, 2·0 − 0.2989 < 0.
    expect(Array.from(adjustColor(img, { order: [2, 0, 1, 3], brightness: 1, contrast: 1, saturation: 2 }).data)).toEqual([255, 0, 0, 0, 0, 255]);
    // Factors of 1 leave the bytes as they are.
    const pat = pattern(5, 7);
    expect(Array.from(adjustColor(pat, { order: [0, 1, 2, 3], brightness: 1, contrast: 1, saturation: 1 }).data)).toEqual(Array.from(pat.data));

    const orders = new Set<string>();
    let lo = 2, hi = 0;
    for (let i = 0; i < 600; i++) {
      const q = colorJitterParams(new DataRng(3, 0, i), 0.4, 0.4, 0.4);
      expect([...q.order].sort()).toEqual([0, 1, 2, 3]);
      orders.add(q.order.join(''));
      for (const f of [q.brightness, q.contrast, q.saturation]) (lo = Math.min(lo, f)), (hi = Math.max(hi, f));
    }
    expect(orders.size).toBe(24);
    expect(lo).toBeGreaterThanOrEqual(0.6);
    expect(lo).toBeLessThan(0.61);
    expect(hi).toBeLessThan(1.4);
    expect(hi).toBeGreaterThan(1.39);
    // max(0, 1 − v): a jitter of 1.5 draws from [0, 2.5]; a jitter of 0 draws nothing and gives 1.
    expect(colorJitterParams(new DataRng(1), 0, 0, 0)).toMatchObject({ brightness: 1, contrast: 1, saturation: 1 });
    expect(colorJitterParams(new DataRng(1), 1.5, 0, 0).brightness).toBeLessThan(2.5);
    expect(() => colorJitterParams(new DataRng(1), -0.1, 0, 0)).toThrow(/brightness/);
    // Deterministic per key, and part of the ImageNet-style (not the CIFAR) training transforms.
    const run = (...key: number[]) => Array.from(applyTransforms(pat, [{ op: 'colorJitter', brightness: 0.4, contrast: 0.4, saturation: 0.4 }], new DataRng(...key)).data);
    expect(run(4, 1)).toEqual(run(4, 1));
    expect(run(4, 1)).not.toEqual(run(4, 2));
    expect(imagenetTrainTransforms(24)[2]).toEqual({ op: 'colorJitter', brightness: 0.4, contrast: 0.4, saturation: 0.4 });
    expect(cifarTrainTransforms().some((t) => t.op === 'colorJitter')).toBe(false);
    expect(transformedSize(imagenetTrainTransforms(24))).toEqual([24, 24]);
  });

  it('flips about half of the time', () => {
    const img = pattern(2, 3);
    let flipped = 0;
    for (let i = 0; i < 1000; i++) flipped += applyTransforms(img, [{ op: 'horizontalFlip' }], new DataRng(9, 0, i)).data[0] === img.data[6] ? 1 : 0;
    expect(flipped).toBeGreaterThan(440);
    expect(flipped).toBeLessThan(560);
    expect(applyTransforms(img, [{ op: 'horizontalFlip', p: 1 }], new DataRng(0)).data[0]).toBe(img.data[6]);
    expect(applyTransforms(img, [{ op: 'horizontalFlip', p: 0 }], new DataRng(0)).data[0]).toBe(img.data[0]);
  });

  it('normalises to CHW float32: (x/255 − mean)/std', () => {
    const img: RgbImage = { width: 2, height: 1, data: Uint8Array.from([0, 128, 255, 51, 102, 153]) };
    const out = new Float32Array(8).fill(-99);
    normalizeInto(img, [0.5, 0.25, 0], [0.5, 0.25, 2], out, 2);
    const expected = [-99, -99, (0 / 255 - 0.5) / 0.5, (51 / 255 - 0.5) / 0.5, (128 / 255 - 0.25) / 0.25, (102 / 255 - 0.25) / 0.25, 255 / 255 / 2, 153 / 255 / 2];
    expect(maxDiff(out, expected)).toBeLessThan(1e-6);
    expect(() => normalizeInto(img, [0, 0, 0], [1, 1, 1], out, 3)).toThrow(RangeError);
  });
});
