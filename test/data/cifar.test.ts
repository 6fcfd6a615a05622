import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataError, parseCifarBinary, selectPixels } from '../../data/index.js';
import { readCifarBinary } from '../../data/node-index.js';

/** A record in the official layout: label byte(s), then R, G and B planes of 32x32. Pixel
 * (y, x) of channel c in record r holds (r·7 + c·50 + y·3 + x) mod 256. */
function record(r: number, labels: number[]): Uint8Array {
  const out = new Uint8Array(labels.length + 3072);
  out.set(labels);
  for (let c = 0; c < 3; c++) for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) out[labels.length + c * 1024 + y * 32 + x] = (r * 7 + c * 50 + y * 3 + x) % 256;
  return out;
}

const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
};

function expectPixels(images: Uint8Array, n: number, r: number): void {
  for (const [y, x] of [[0, 0], [5, 17], [31, 31]]) {
    for (let c = 0; c < 3; c++) expect(images[n * 3072 + (y * 32 + x) * 3 + c]).toBe((r * 7 + c * 50 + y * 3 + x) % 256);
  }
}

describe('CIFAR binary files', () => {
  it('reads CIFAR-10 batches in order, planar to HWC', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cifar10-'));
    const labels = [3, 9, 0, 1, 4, 4, 8, 2, 7, 6];
    // Two records per batch file: records 2b and 2b+1 in data_batch_{b+1}.bin.
    for (let b = 0; b < 5; b++) writeFileSync(join(dir, `data_batch_${b + 1}.bin`), concat([record(2 * b, [labels[2 * b]]), record(2 * b + 1, [labels[2 * b + 1]])]));
    writeFileSync(join(dir, 'test_batch.bin'), record(42, [5]));
    const train = await readCifarBinary(dir, 'cifar10', 'train');
    expect(Array.from(train.labels)).toEqual(labels);
    expect(train.images.length).toBe(10 * 3072);
    expect([train.height, train.width, train.numClasses, train.coarseLabels]).toEqual([32, 32, 10, undefined]);
    for (let r = 0; r < 10; r++) expectPixels(train.images, r, r);
    const test = await readCifarBinary(dir, 'cifar10', 'test');
    expect(Array.from(test.labels)).toEqual([5]);
    expectPixels(test.images, 0, 42);
  });

  it('reads CIFAR-100 coarse and fine labels', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cifar100-'));
    writeFileSync(join(dir, 'train.bin'), concat([record(0, [11, 99]), record(1, [19, 0]), record(2, [0, 57])]));
    const ds = await readCifarBinary(dir, 'cifar100', 'train');
    expect(Array.from(ds.labels)).toEqual([99, 0, 57]);
    expect(Array.from(ds.coarseLabels!)).toEqual([11, 19, 0]);
    expect(ds.numClasses).toBe(100);
    expectPixels(ds.images, 2, 2);
    const sub = selectPixels(ds, [2, 0]);
    expect(Array.from(sub.labels)).toEqual([57, 99]);
    expect(Array.from(sub.coarseLabels!)).toEqual([0, 11]);
    expectPixels(sub.images, 0, 2);
    expectPixels(sub.images, 1, 0);
  });

  it('names the file of a truncated batch, a bad label or a missing file', async () => {
    const truncated = record(0, [1]).subarray(0, 3000);
    expect(() => parseCifarBinary('cifar10', [{ file: 'data_batch_3.bin', bytes: truncated }])).toThrow(
      new DataError('data_batch_3.bin', '3000 bytes is not a whole number of cifar10 records of 3073 bytes'),
    );
    expect(() => parseCifarBinary('cifar10', [{ file: 'test_batch.bin', bytes: concat([record(0, [1]), record(1, [10])]) }])).toThrow('test_batch.bin: record 1: label 10 >= 10');
    expect(() => parseCifarBinary('cifar100', [{ file: 'train.bin', bytes: record(0, [20, 3]) }])).toThrow('train.bin: record 0: coarse label 20 >= 20');
    await expect(readCifarBinary('/nonexistent', 'cifar100', 'test')).rejects.toThrow('/nonexistent/test.bin: cannot read: ENOENT');
  });
});
