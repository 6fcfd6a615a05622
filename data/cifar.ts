// CIFAR-10/100 in the official binary layout (Krizhevsky 2009): each record is the label byte(s)
// then 3072 bytes of pixels, channel-planar (1024 R, 1024 G, 1024 B, rows top to bottom).
// CIFAR-10: data_batch_1..5.bin / test_batch.bin, 1 label byte. CIFAR-100: train.bin / test.bin,
// coarse then fine label byte. Images come out HWC like decoded files.

import { DataError } from './errors.js';

export type CifarVariant = 'cifar10' | 'cifar100';

/** Images held in memory: `images` is N*H*W*3 bytes, HWC per image. */
export interface PixelDataset {
  kind: 'pixels';
  images: Uint8Array;
  labels: Int32Array;
  height: number;
  width: number;
  numClasses: number;
}

export interface CifarDataset extends PixelDataset {
  /** CIFAR-100's 20 superclasses (only there). */
  coarseLabels?: Int32Array;
}

export const CIFAR_FILES = {
  cifar10: { train: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'], test: ['test_batch.bin'] },
  cifar100: { train: ['train.bin'], test: ['test.bin'] },
} as const;

const PIXELS = 32 * 32;
const IMAGE_BYTES = 3 * PIXELS;

/** Parses the concatenation of one variant's binary files, given as (name, bytes) parts. */
export function parseCifarBinary(variant: CifarVariant, parts: { file: string; bytes: Uint8Array }[]): CifarDataset {
  const labelBytes = variant === 'cifar10' ? 1 : 2;
  const record = labelBytes + IMAGE_BYTES;
  let count = 0;
  for (const { file, bytes } of parts) {
    if (bytes.length === 0 || bytes.length % record !== 0) {
      throw new DataError(file, `${bytes.length} bytes is not a whole number of ${variant} records of ${record} bytes`);
    }
    count += bytes.length / record;
  }
  const images = new Uint8Array(count * IMAGE_BYTES);
  const labels = new Int32Array(count);
  const coarseLabels = variant === 'cifar100' ? new Int32Array(count) : undefined;
  const numClasses = variant === 'cifar10' ? 10 : 100;
  let n = 0;
  for (const { file, bytes } of parts) {
    for (let r = 0; r < bytes.length; r += record, n++) {
      const fine = bytes[r + labelBytes - 1];
      if (fine >= numClasses) throw new DataError(file, `record ${r / record}: label ${fine} >= ${numClasses}`);
      if (coarseLabels) {
        if (bytes[r] >= 20) throw new DataError(file, `record ${r / record}: coarse label ${bytes[r]} >= 20`);
        coarseLabels[n] = bytes[r];
      }
      labels[n] = fine;
      // Planar CHW -> interleaved HWC.
      const src = r + labelBytes, dst = n * IMAGE_BYTES;
      for (let p = 0; p < PIXELS; p++) {
        images[dst + 3 * p] = bytes[src + p];
        images[dst + 3 * p + 1] = bytes[src + PIXELS + p];
        images[dst + 3 * p + 2] = bytes[src + 2 * PIXELS + p];
      }
    }
  }
  return { kind: 'pixels', images, labels, coarseLabels, height: 32, width: 32, numClasses };
}

/** The entries at `indices`, in that order (e.g. a long-tailed subset). */
export function selectPixels<T extends PixelDataset>(dataset: T, indices: ArrayLike<number>): T {
  const size = dataset.height * dataset.width * 3;
  const total = dataset.labels.length;
  const images = new Uint8Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= total) throw new RangeError(`selectPixels: index ${i} is outside the ${total} images`);
    images.set(dataset.images.subarray(i * size, (i + 1) * size), k * size);
    labels[k] = dataset.labels[i];
  }
  const selected: T = { ...dataset, images, labels };
  if ('coarseLabels' in dataset && dataset.coarseLabels instanceof Int32Array) {
    const coarse = dataset.coarseLabels;
    (selected as CifarDataset).coarseLabels = Int32Array.from(indices, (i) => coarse[i]);
  }
  return selected;
}
