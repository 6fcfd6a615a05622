import { describe, expect, it } from 'vitest';
import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { encode as encodePng } from 'fast-png';
import { DataError, decodeImage, sniffFormat } from '../../data/index.js';
import { readImageFile } from '../../data/node-index.js';
import { CIFAR10_DIR } from './shared-data.js';

// Per-channel means and the two corner pixels of the first training images as decoded by Pillow
// 12.3 (libjpeg-turbo), to check jpeg-js against an independent decoder.
const PILLOW = [
  ['train/frog/0000.jpg', [141.562, 105.031, 64.093], [61, 62, 67], [129, 95, 67]],
  ['train/truck/0000.jpg', [130.343, 130.325, 130.274], [169, 169, 179], [132, 127, 121]],
  ['train/truck/0001.jpg', [133.251, 134.851, 131.773], [255, 255, 251], [77, 87, 88]],
  ['train/deer/0000.jpg', [99.889, 83.25, 57.906], [36, 34, 11], [76, 71, 52]],
  ['train/automobile/0000.jpg', [92.188, 102.394, 115.953], [168, 180, 192], [72, 77, 81]],
  ['train/automobile/0001.jpg', [142.323, 70.807, 58.741], [184, 96, 108], [167, 59, 21]],
  ['train/bird/0000.jpg', [120.54, 152.876, 85.215], [150, 195, 102], [125, 162, 48]],
  ['train/horse/0000.jpg', [132.614, 134.561, 98.547], [30, 35, 41], [93, 140, 68]],
] as const;

const pixel = (data: Uint8Array, width: number, y: number, x: number) => Array.from(data.subarray((y * width + x) * 3, (y * width + x) * 3 + 3));

/** A smooth test image (JPEG-friendly): r = 4x, g = 4y, b = 2(x + y). */
function gradient(width: number, height: number): Uint8Array {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set([4 * x, 4 * y, 2 * (x + y)], (y * width + x) * 3);
  return data;
}

describe('image decoding', () => {
  it('decodes the real CIFAR-10 JPEGs like an independent decoder (Pillow)', async () => {
    for (const [path, means, first, last] of PILLOW) {
      const img = await readImageFile(join(CIFAR10_DIR, path));
      expect([img.width, img.height, img.data.length]).toEqual([32, 32, 3072]);
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let p = 0; p < 1024; p++) s += img.data[3 * p + c];
        expect(Math.abs(s / 1024 - means[c])).toBeLessThan(1);
      }
      pixel(img.data, 32, 0, 0).forEach((v, c) => expect(Math.abs(v - first[c])).toBeLessThanOrEqual(4));
      pixel(img.data, 32, 31, 31).forEach((v, c) => expect(Math.abs(v - last[c])).toBeLessThanOrEqual(4));
    }
  });

  it('has plausible statistics over 100 real images', async () => {
    const list = readFileSync(join(CIFAR10_DIR, 'test.txt'), 'utf8').split('\n').filter((l, i) => l && i % 100 === 0);
    expect(list.length).toBe(100);
    let sum = 0, sq = 0, n = 0;
    for (const line of list) {
      const { data } = await readImageFile(join(CIFAR10_DIR, line.split(' ')[0]));
      for (const v of data) (sum += v, (sq += v * v), n++);
    }
    const mean = sum / n / 255, std = Math.sqrt(sq / n - (sum / n) ** 2) / 255;
    // CIFAR-10's pixel statistics are mean ~0.47, std ~0.25.
    expect(mean).toBeGreaterThan(0.4);
    expect(mean).toBeLessThan(0.55);
    expect(std).toBeGreaterThan(0.2);
    expect(std).toBeLessThan(0.3);
  });

  it('round-trips a JPEG encoded at quality 100', () => {
    const data = gradient(40, 24);
    const encoded = jpeg.encode({ width: 40, height: 24, data: rgba(data) }, 100).data;
    const img = decodeImage(new Uint8Array(encoded), 'gradient.jpg');
    expect([img.width, img.height]).toEqual([40, 24]);
    let worst = 0;
    for (let i = 0; i < data.length; i++) worst = Math.max(worst, Math.abs(img.data[i] - data[i]));
    expect(worst).toBeLessThanOrEqual(6);
  });

  it('decodes PNGs of every common colour type to RGB', () => {
    const width = 5, height = 3, n = width * height;
    const rgb = Uint8Array.from({ length: n * 3 }, (_, i) => (i * 17) % 256);
    const check = (png: Uint8Array, expected: Uint8Array) => {
      const img = decodeImage(png, 'x.png');
      expect([img.width, img.height]).toEqual([width, height]);
      expect(Array.from(img.data)).toEqual(Array.from(expected));
    };
    check(encodePng({ width, height, data: rgb, channels: 3, depth: 8 }), rgb);
    check(encodePng({ width, height, data: rgba(rgb), channels: 4, depth: 8 }), rgb);
    const grey = Uint8Array.from({ length: n }, (_, i) => i * 9);
    const greyRgb = Uint8Array.from({ length: n * 3 }, (_, i) => grey[Math.floor(i / 3)]);
    check(encodePng({ width, height, data: grey, channels: 1, depth: 8 }), greyRgb);
    check(encodePng({ width, height, data: Uint8Array.from({ length: 2 * n }, (_, i) => (i % 2 ? 128 : grey[i / 2])), channels: 2, depth: 8 }), greyRgb);
    // 16-bit samples round to 8 bits: v·257 -> v.
    check(encodePng({ width, height, data: Uint16Array.from(rgb, (v) => v * 257), channels: 3, depth: 16 }), rgb);
    const palette = [[255, 0, 0], [0, 128, 255], [7, 8, 9]];
    const indices = Uint8Array.from({ length: n }, (_, i) => i % 3);
    check(encodePng({ width, height, data: indices, channels: 1, depth: 8, palette }), Uint8Array.from({ length: n * 3 }, (_, i) => palette[indices[Math.floor(i / 3)]][i % 3]));
  });

  it('unpacks 1-bit greyscale PNGs', () => {
    // Width 10: rows of 2 bytes, the second padded. Bits of row y: pixel x is 1 when (x + y) is even.
    const width = 10, height = 2;
    const packed = new Uint8Array(4);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) if ((x + y) % 2 === 0) packed[y * 2 + (x >> 3)] |= 0x80 >> (x & 7);
    const img = decodeImage(encodePng({ width, height, data: packed, channels: 1, depth: 1 }), 'bits.png');
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) expect(pixel(img.data, width, y, x)).toEqual(new Array(3).fill((x + y) % 2 === 0 ? 255 : 0));
  });

  it('names the file of a corrupt or unknown image', async () => {
    const bytes = readFileSync(join(CIFAR10_DIR, 'train/frog/0000.jpg'));
    expect(sniffFormat(bytes)).toBe('jpeg');
    const truncated = bytes.subarray(0, Math.floor(bytes.length / 2));
    expect(() => decodeImage(truncated, 'train/frog/0000.jpg')).toThrow(DataError);
    expect(() => decodeImage(truncated, 'train/frog/0000.jpg')).toThrow(/^train\/frog\/0000\.jpg: corrupt JPEG: /);
    const headerOnly = bytes.subarray(0, 20);
    expect(() => decodeImage(headerOnly, 'h.jpg')).toThrow(/^h\.jpg: corrupt JPEG: /);
    expect(() => decodeImage(new Uint8Array([1, 2, 3, 4, 5]), 'notes.txt')).toThrow('notes.txt: not a JPEG or PNG file (5 bytes, starts with 01 02 03 04)');
    const png = encodePng({ width: 4, height: 4, data: new Uint8Array(48), channels: 3, depth: 8 });
    expect(() => decodeImage(png.subarray(0, png.length - 20), 'cut.png')).toThrow(/^cut\.png: corrupt PNG: /);
    // The same from a file on disk: the error names its path.
    const dir = mkdtempSync(join(tmpdir(), 'decode-'));
    writeFileSync(join(dir, 'broken.jpg'), truncated);
    await expect(readImageFile(join(dir, 'broken.jpg'))).rejects.toThrow(`${join(dir, 'broken.jpg')}: corrupt JPEG`);
    await expect(readImageFile(join(dir, 'absent.jpg'))).rejects.toThrow(`${join(dir, 'absent.jpg')}: cannot read: ENOENT`);
  });
});

function rgba(rgb: Uint8Array): Uint8Array {
  const out = new Uint8Array((rgb.length / 3) * 4).fill(255);
  for (let p = 0; p < rgb.length / 3; p++) out.set(rgb.subarray(3 * p, 3 * p + 3), 4 * p);
  return out;
}
