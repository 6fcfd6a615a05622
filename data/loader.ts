// Batching: a dataset plus an index order (from a sampler) becomes batches of normalised CHW
// float32 images, one contiguous Float32Array per batch so it uploads as one buffer. Sample k of
// an epoch is augmented with DataRng(seed, epoch, k) — keyed by its position in the order, not by
// who builds it or when, so any number of workers gives the same bytes; and an index repeated by
// an over-sampler gets a fresh augmentation at each position. This file is browser-safe: the
// in-thread loader reads files through an injected `readBytes` (fetch by default); Node's worker
// loader lives in node-loader.ts.

import { DataRng, shuffleInPlace } from './rng.js';
import { decodeImage, type RgbImage } from './decode.js';
import { applyTransforms, normalizeInto, transformedSize, type TransformStep } from './augment.js';
import { joinPath, type ListDataset } from './lists.js';
import type { PixelDataset } from './cifar.js';
import { DataError } from './errors.js';

/** What a loader reads from: image files under a root, or pixels in memory. Structured-cloneable. */
export type DatasetSpec = ListDataset | PixelDataset;

export interface PipelineOptions {
  transforms: readonly TransformStep[];
  mean: readonly number[];
  std: readonly number[];
  /** Seeds every augmentation draw. */
  seed: number;
  /** Output [height, width]; by default what the transforms (and a pixel dataset's size) fix. */
  size?: readonly [number, number];
}

export interface LoaderOptions extends PipelineOptions {
  batchSize: number;
  /** Drop a last batch smaller than batchSize. */
  dropLast?: boolean;
}

/** The pipeline with its output size settled; what a worker receives. */
export interface ResolvedPipeline {
  transforms: readonly TransformStep[];
  mean: readonly number[];
  std: readonly number[];
  seed: number;
  height: number;
  width: number;
}

export interface Batch {
  /** B·3·H·W values, each sample CHW. */
  images: Float32Array<ArrayBuffer>;
  labels: Int32Array<ArrayBuffer>;
  /** The dataset indices of the samples. */
  indices: Int32Array<ArrayBuffer>;
  shape: [number, number, number, number];
  epoch: number;
  /** Position of this batch in the epoch. */
  batch: number;
}

/** One batch to build: samples order[start .. start + indices.length). */
export interface BatchJob {
  epoch: number;
  batch: number;
  start: number;
  indices: Int32Array;
}

export type ReadBytes = (path: string) => Promise<Uint8Array>;

export interface BatchLoader {
  /** [3, H, W] of every sample. */
  readonly sampleShape: [number, number, number];
  epoch(order: ArrayLike<number>, epoch: number): AsyncGenerator<Batch>;
  close(): Promise<void>;
}

/** Reads a URL with fetch (the browser's readBytes). */
export const fetchBytes: ReadBytes = async (url) => {
  const response = await fetch(url);
  if (!response.ok) throw new DataError(url, `HTTP ${response.status} ${response.statusText}`);
  return new Uint8Array(await response.arrayBuffer());
};

/** 0, 1, ..., n−1. */
export function sequentialOrder(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

/** A permutation of 0..n−1 drawn from DataRng(seed, epoch): the same for the same (seed, epoch). */
export function shuffledOrder(n: number, seed: number, epoch: number): Int32Array {
  return shuffleInPlace(sequentialOrder(n), new DataRng(seed, epoch));
}

/** Settles the output size and checks the options against the dataset. */
export function resolvePipeline(spec: DatasetSpec, options: PipelineOptions): ResolvedPipeline {
  const count = spec.kind === 'files' ? spec.paths.length : spec.images.length / (spec.height * spec.width * 3);
  if (spec.labels.length !== count) throw new RangeError(`loader: ${count} images but ${spec.labels.length} labels`);
  if (options.mean.length !== 3 || options.std.length !== 3) throw new RangeError('loader: mean and std need 3 values (RGB)');
  const size = options.size ?? transformedSize(options.transforms, spec.kind === 'pixels' ? [spec.height, spec.width] : undefined);
  if (!size) throw new RangeError('loader: the transforms do not fix the output size; end them with a crop or a [h, w] resize, or pass `size`');
  return { transforms: options.transforms, mean: options.mean, std: options.std, seed: options.seed, height: size[0], width: size[1] };
}

/** Splits an order into batch jobs. */
export function planBatches(order: ArrayLike<number>, batchSize: number, epoch: number, dropLast = false): BatchJob[] {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`loader: batch size ${batchSize} is not a positive integer`);
  const jobs: BatchJob[] = [];
  for (let start = 0; start < order.length; start += batchSize) {
    const end = Math.min(order.length, start + batchSize);
    if (dropLast && end - start < batchSize) break;
    jobs.push({ epoch, batch: jobs.length, start, indices: Int32Array.from({ length: end - start }, (_, k) => order[start + k]) });
  }
  return jobs;
}

/** Opens the images of a dataset spec. */
export class SampleReader {
  constructor(readonly spec: DatasetSpec, private readonly readBytes: ReadBytes = fetchBytes) {}

  get length(): number {
    return this.spec.labels.length;
  }

  name(index: number): string {
    return this.spec.kind === 'files' ? joinPath(this.spec.root, this.spec.paths[index]) : `image ${index}`;
  }

  async image(index: number): Promise<RgbImage> {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) throw new RangeError(`loader: index ${index} is outside the ${this.length} images`);
    const spec = this.spec;
    if (spec.kind === 'pixels') {
      const size = spec.height * spec.width * 3;
      return { width: spec.width, height: spec.height, data: spec.images.subarray(index * size, (index + 1) * size) };
    }
    const name = this.name(index);
    let bytes: Uint8Array;
    try {
      bytes = await this.readBytes(name);
    } catch (e) {
      throw e instanceof DataError ? e : new DataError(name, `cannot read: ${(e as Error).message}`);
    }
    return decodeImage(bytes, name);
  }
}

/** Decodes every image of a list dataset into memory (all must have one size): for small datasets
 * like CIFAR, so later epochs only augment. */
export async function decodeToPixels(dataset: ListDataset, readBytes: ReadBytes = fetchBytes): Promise<PixelDataset> {
  const reader = new SampleReader(dataset, readBytes);
  const first = await reader.image(0);
  const size = first.height * first.width * 3;
  const images = new Uint8Array(dataset.paths.length * size);
  images.set(first.data);
  for (let i = 1; i < dataset.paths.length; i++) {
    const img = await reader.image(i);
    if (img.height !== first.height || img.width !== first.width) {
      throw new DataError(reader.name(i), `is ${img.height}x${img.width}, the first image ${first.height}x${first.width}`);
    }
    images.set(img.data, i * size);
  }
  return { kind: 'pixels', images, labels: Int32Array.from(dataset.labels), height: first.height, width: first.width, numClasses: dataset.numClasses };
}

/** Builds one batch: reads the images (concurrently), augments sample k with DataRng(seed, epoch,
 * start + k) and writes it normalised into the batch's one Float32Array. */
export async function buildBatch(reader: SampleReader, job: BatchJob, pipeline: ResolvedPipeline): Promise<Batch> {
  const { height, width } = pipeline;
  const n = job.indices.length, sampleSize = 3 * height * width;
  const images = new Float32Array(n * sampleSize);
  const labels = new Int32Array(n);
  const decoded = await Promise.all(Array.from(job.indices, (i) => reader.image(i)));
  for (let k = 0; k < n; k++) {
    const index = job.indices[k];
    const out = applyTransforms(decoded[k], pipeline.transforms, new DataRng(pipeline.seed, job.epoch, job.start + k));
    if (out.height !== height || out.width !== width) {
      throw new DataError(reader.name(index), `transformed to ${out.height}x${out.width}, the batch needs ${height}x${width}`);
    }
    normalizeInto(out, pipeline.mean, pipeline.std, images, k * sampleSize);
    labels[k] = reader.spec.labels[index];
  }
  return { images, labels, indices: Int32Array.from(job.indices), shape: [n, 3, height, width], epoch: job.epoch, batch: job.batch };
}

/** Builds batches on the calling thread (the browser's loader, and Node's with 0 workers); the
 * next batch is started before the current one is handed out, so reads overlap training. */
export class InThreadLoader implements BatchLoader {
  readonly sampleShape: [number, number, number];
  private readonly reader: SampleReader;
  private readonly pipeline: ResolvedPipeline;

  constructor(spec: DatasetSpec, private readonly options: LoaderOptions, readBytes: ReadBytes = fetchBytes) {
    this.pipeline = resolvePipeline(spec, options);
    this.reader = new SampleReader(spec, readBytes);
    this.sampleShape = [3, this.pipeline.height, this.pipeline.width];
  }

  async *epoch(order: ArrayLike<number>, epoch: number): AsyncGenerator<Batch> {
    const jobs = planBatches(order, this.options.batchSize, epoch, this.options.dropLast);
    let next = jobs.length > 0 ? this.build(jobs[0]) : undefined;
    for (let b = 0; b < jobs.length; b++) {
      const current = next!;
      next = b + 1 < jobs.length ? this.build(jobs[b + 1]) : undefined;
      yield await current;
    }
  }

  async close(): Promise<void> {}

  private build(job: BatchJob): Promise<Batch> {
    const p = buildBatch(this.reader, job, this.pipeline);
    // The prefetched batch may be abandoned (the consumer stopped early): don't report it unhandled.
    p.catch(() => {});
    return p;
  }
}
