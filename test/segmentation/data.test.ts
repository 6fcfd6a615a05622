import { mkdirSync, mkdtempSync, copyFileSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encode as encodePng } from 'fast-png';
import {
  ADE20K_PALETTE,
} from '../../data/ade20k-classes.js';
import {
  augmentSegTrain,
  colorize,
  decodeLabelMap,
  encodeLabelPng,
  flipSample,
  labelSet,
  padSample,
  photometricDistortion,
  randomCropBox,
  randomResize,
  reduceZeroLabel,
  rescaleSize,
  resizeLabelNearest,
  type SegSample,
} from '../../data/ade20k.js';
import { DataRng } from '../../data/rng.js';
import { listAde20k, readSegSample } from '../../data/node-ade20k.js';
import { ADE20K_SAMPLE_DIR } from './ade20k-sample.js';

// The README of the shared sample lists the raw label values present in each annotation.
const README_SETS = [
  [0, 1, 2, 3, 5, 7, 10, 18],
  [0, 1, 2, 3, 5, 14, 18],
  [0, 1, 2, 3, 5, 7, 12, 21, 44, 81, 88, 97, 103],
];
const SIZES = [[683, 512], [500, 364], [400, 300]];

describe('ADE20K loader on the real sample', () => {
  it('lists the three pairs and gives the README label sets, reduced as mmseg', async () => {
    const pairs = await listAde20k(ADE20K_SAMPLE_DIR);
    expect(pairs.map((p) => p.name)).toEqual(['ADE_val_00000001', 'ADE_val_00000002', 'ADE_val_00000003']);
    for (let i = 0; i < 3; i++) {
      const raw = await readSegSample(pairs[i], { reduceZeroLabel: false });
      expect([raw.image.width, raw.image.height]).toEqual(SIZES[i]);
      expect(labelSet(raw.label)).toEqual(README_SETS[i]);
      const s = await readSegSample(pairs[i]);
      // 0 → 255 (ignore), v → v − 1
      expect(labelSet(s.label)).toEqual([...README_SETS[i].filter((v) => v > 0).map((v) => v - 1), 255]);
      for (let p = 0; p < s.label.data.length; p += 997) expect(s.label.data[p]).toBe(raw.label.data[p] === 0 ? 255 : raw.label.data[p] - 1);
    }
  });

  function tempCopy(): string {
    const root = mkdtempSync(join(tmpdir(), 'ade-'));
    mkdirSync(join(root, 'images', 'validation'), { recursive: true });
    mkdirSync(join(root, 'annotations', 'validation'), { recursive: true });
    copyFileSync(join(ADE20K_SAMPLE_DIR, 'images', 'ADE_val_00000003.jpg'), join(root, 'images', 'validation', 'ADE_val_00000003.jpg'));
    return root;
  }

  it('a missing annotation file is one error naming it', async () => {
    const root = tempCopy();
    await expect(listAde20k(root, 'validation')).rejects.toThrow(/annotations\/validation\/ADE_val_00000003\.png: missing annotation file for image/);
  });

  it('a label map whose size differs from its image is an error naming the file', async () => {
    const root = tempCopy();
    const ann = join(root, 'annotations', 'validation', 'ADE_val_00000003.png');
    writeFileSync(ann, encodePng({ width: 399, height: 300, data: new Uint8Array(399 * 300).fill(1), channels: 1, depth: 8 }));
    const [pair] = await listAde20k(root, 'validation');
    await expect(readSegSample(pair)).rejects.toThrow(/ADE_val_00000003\.png: label map is 399x300 but its image .*ADE_val_00000003\.jpg is 400x300/);
  });

  it('a label above 150 that is not the ignore value is an error naming the file and pixel', async () => {
    const root = tempCopy();
    const ann = join(root, 'annotations', 'validation', 'ADE_val_00000003.png');
    const data = new Uint8Array(400 * 300).fill(3);
    data[5 * 400 + 7] = 151;
    writeFileSync(ann, encodePng({ width: 400, height: 300, data, channels: 1, depth: 8 }));
    const [pair] = await listAde20k(root, 'validation');
    await expect(readSegSample(pair)).rejects.toThrow(/ADE_val_00000003\.png: label 151 at pixel \(x 7, y 5\) is above 150 and not the ignore value 255/);
    // 255 itself is accepted and stays ignored
    data[5 * 400 + 7] = 255;
    writeFileSync(ann, encodePng({ width: 400, height: 300, data, channels: 1, depth: 8 }));
    expect(labelSet((await readSegSample(pair)).label)).toEqual([2, 255]);
  });

  it('an RGB PNG is not a label map', () => {
    const rgb = encodePng({ width: 2, height: 2, data: new Uint8Array(12), channels: 3, depth: 8 });
    expect(() => decodeLabelMap(rgb, 'x.png')).toThrow(/x\.png: a label map must be 8-bit single-channel/);
  });
});

function synthetic(h: number, w: number): SegSample {
  const img = new Uint8Array(h * w * 3), lab = new Uint8Array(h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const p = y * w + x;
    lab[p] = x < w / 2 ? 1 : y < h / 2 ? 2 : 255;
    img[3 * p] = (x * 7) & 255;
    img[3 * p + 1] = (y * 5) & 255;
    img[3 * p + 2] = lab[p];
  }
  return { image: { width: w, height: h, data: img }, label: { width: w, height: h, data: lab } };
}

describe('mmseg augmentation', () => {
  it('rescaleSize keeps the ratio inside (long, short) as mmcv', () => {
    expect(rescaleSize(512, 683, [2048, 512])).toEqual([512, 683]);
    expect(rescaleSize(300, 400, [2048, 512])).toEqual([512, 683]);
    expect(rescaleSize(100, 1000, [2048, 512])).toEqual([205, 2048]);
  });

  it('random resize stays in the ratio range and resizes labels by nearest (no new values)', () => {
    const s = synthetic(40, 60);
    for (let k = 0; k < 5; k++) {
      const r = randomResize(s, [120, 40], [0.5, 2.0], new DataRng(3, k));
      expect(r.image.height).toBe(r.label.height);
      expect(r.image.height).toBeGreaterThanOrEqual(20);
      expect(r.image.height).toBeLessThanOrEqual(80);
      expect(labelSet(r.label).every((v) => [1, 2, 255].includes(v))).toBe(true);
    }
    expect(Array.from(resizeLabelNearest({ width: 2, height: 1, data: Uint8Array.from([4, 9]) }, 1, 4).data)).toEqual([4, 4, 9, 9]);
  });

  it('random crop redraws while one class covers ≥ cat_max_ratio of the labelled pixels', () => {
    // 100×100, class 0 everywhere except a 10-column band of class 1 at x 90..99
    const lab = new Uint8Array(100 * 100);
    for (let y = 0; y < 100; y++) for (let x = 90; x < 100; x++) lab[y * 100 + x] = 1;
    const label = { width: 100, height: 100, data: lab };
    let accepted = 0, plain = 0;
    for (let k = 0; k < 200; k++) {
      const b = randomCropBox(label, [20, 20], 0.75, new DataRng(7, k));
      expect(b.height).toBe(20);
      // class 0 covers < 75% ⟺ more than 5 of the 20 columns are band ⟺ left ≥ 76 (5 of 81 offsets)
      if (b.left >= 76) accepted++;
      if (randomCropBox(label, [20, 20], 1, new DataRng(7, k)).left >= 76) plain++;
    }
    // without the check about 6% of crops qualify; with up to 10 redraws about 1 − (76/81)^10 ≈ 47%
    expect(plain).toBeLessThan(25);
    expect(accepted).toBeGreaterThan(65);
    // a crop larger than the image is the whole image
    expect(randomCropBox({ width: 5, height: 4, data: new Uint8Array(20) }, [8, 8], 0.75, new DataRng(1))).toEqual({ top: 0, left: 0, height: 4, width: 5 });
  });

  it('flip twice is the identity; pad fills the label with the ignore index', () => {
    const s = synthetic(5, 7);
    const f = flipSample(s);
    expect(f.label.data[0]).toBe(s.label.data[6]);
    expect(flipSample(f)).toEqual(s);
    const p = padSample(s, 8, 9);
    expect([p.image.height, p.image.width]).toEqual([8, 9]);
    expect(p.label.data[8]).toBe(255);
    expect(p.label.data[7 * 9]).toBe(255);
    expect(p.image.data[3 * 8]).toBe(0);
    expect(p.label.data[0]).toBe(s.label.data[0]);
  });

  it('photometric distortion is deterministic per seed, keeps the size and changes colours', () => {
    const s = synthetic(9, 11);
    const a = photometricDistortion(s.image, new DataRng(1, 2)), b = photometricDistortion(s.image, new DataRng(1, 2));
    expect(a).toEqual(b);
    let changed = 0;
    for (let k = 0; k < 8; k++) if (photometricDistortion(s.image, new DataRng(5, k)).data.some((v: number, i: number) => v !== s.image.data[i])) changed++;
    expect(changed).toBeGreaterThan(4);
    // a grey image keeps grey under saturation and hue changes
    const grey = { width: 2, height: 1, data: Uint8Array.from([90, 90, 90, 200, 200, 200]) };
    for (let k = 0; k < 6; k++) {
      const g = photometricDistortion(grey, new DataRng(9, k)).data;
      expect(g[0]).toBe(g[1]);
      expect(g[4]).toBe(g[5]);
    }
  });

  it('the train pipeline gives crop-sized samples', () => {
    const s = synthetic(30, 50);
    const t = augmentSegTrain(s, new DataRng(4), { baseScale: [100, 32], cropSize: [24, 24] });
    expect([t.image.height, t.image.width, t.label.height, t.label.width]).toEqual([24, 24, 24, 24]);
    expect(labelSet(t.label).every((v) => [1, 2, 255].includes(v))).toBe(true);
  });
});

describe('prediction output', () => {
  it('label PNGs round-trip (+1 as the SceneParse150 submission format) and colour with the ADE palette', () => {
    const pred = Int32Array.from([0, 5, 149, 2, 0, 1]);
    const png = encodeLabelPng(pred, 3, 2);
    expect(Array.from(decodeLabelMap(png, 'p.png').data)).toEqual([1, 6, 150, 3, 1, 2]);
    expect(Array.from(reduceZeroLabel(decodeLabelMap(png, 'p.png'), 'p.png').data)).toEqual(Array.from(pred));
    const c = colorize(pred, 3, 2);
    expect(Array.from(c.data.subarray(0, 3))).toEqual([120, 120, 120]);
    expect(Array.from(c.data.subarray(6, 9))).toEqual([...ADE20K_PALETTE[149]]);
    // the packaged palette is the shared one
    expect(JSON.parse(readFileSync(new URL('../../assets/ade20k/palette150.json', import.meta.url), 'utf8'))).toEqual(JSON.parse(readFileSync(join(ADE20K_SAMPLE_DIR, 'palette150.json'), 'utf8')));
  });
});
