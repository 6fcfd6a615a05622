import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import {
  applyTransforms, CIFAR_MEAN, CIFAR_STD, cifarTrainTransforms, DataError, DataRng, decodeToPixels, imagenetTrainTransforms, InThreadLoader,
  normalizeInto, parseList, selectEntries, sequentialOrder, shuffledOrder, type Batch, type BatchLoader, type DatasetSpec, type ListDataset, type LoaderOptions, type PixelDataset,
} from '../../data/index.js';
import { createLoader, readFileBytes, readImageFile, readListFile, WorkerLoader } from '../../data/node-index.js';
import { CIFAR10_DIR } from './shared-data.js';
import { checksum } from './fixtures/checksum.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
let work: string;
let workerUrl: URL;
let cifar: ListDataset;

// Build the worker and a task-like script as scripts/build.mjs does (bundled ESM, packages
// external), into <tmp>/dist and <tmp>/tasks beside a link to node_modules.
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'loader-'));
  symlinkSync(join(repo, 'node_modules'), join(work, 'node_modules'), 'dir');
  const common = { bundle: true, format: 'esm', target: 'es2022', platform: 'node', packages: 'external', logLevel: 'warning', absWorkingDir: repo } as const;
  await build({ ...common, entryPoints: ['data/node-worker.ts'], outfile: join(work, 'dist/data-worker.js') });
  await build({
    ...common,
    entryPoints: ['test/data/fixtures/loader-task.ts'],
    outfile: join(work, 'tasks/loader-task.js'),
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  });
  workerUrl = pathToFileURL(join(work, 'dist/data-worker.js'));
  const train = await readListFile(join(CIFAR10_DIR, 'train.txt'), { numClasses: 10, checkFiles: false });
  cifar = selectEntries(train, sequentialOrder(40));
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

async function collect(loader: BatchLoader, order: ArrayLike<number>, epoch: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader.epoch(order, epoch)) out.push(b);
  return out;
}

function expectSameBatches(a: Batch[], b: Batch[]): void {
  expect(b.length).toBe(a.length);
  for (let i = 0; i < a.length; i++) {
    expect(b[i].shape).toEqual(a[i].shape);
    expect(Array.from(b[i].indices)).toEqual(Array.from(a[i].indices));
    expect(Array.from(b[i].labels)).toEqual(Array.from(a[i].labels));
    expect(Buffer.from(b[i].images.buffer).equals(Buffer.from(a[i].images.buffer))).toBe(true);
  }
}

const inThread = (spec: DatasetSpec, options: LoaderOptions) => new InThreadLoader(spec, options, readFileBytes);

describe('batch loader', () => {
  const options: LoaderOptions = { batchSize: 16, transforms: imagenetTrainTransforms(24), mean: CIFAR_MEAN, std: CIFAR_STD, seed: 5 };
  // A shuffled order in which an over-sampler repeated index 3 three times.
  const order = Int32Array.from([...shuffledOrder(40, 1, 0), 3, 3, 3]);

  it('yields contiguous CHW batches with their labels and indices', async () => {
    const batches = await collect(inThread(cifar, options), order, 0);
    expect(batches.map((b) => b.shape)).toEqual([[16, 3, 24, 24], [16, 3, 24, 24], [11, 3, 24, 24]]);
    expect(batches.map((b) => b.batch)).toEqual([0, 1, 2]);
    expect(batches.flatMap((b) => Array.from(b.indices))).toEqual(Array.from(order));
    for (const b of batches) {
      expect(b.images.length).toBe(b.shape[0] * 3 * 24 * 24);
      expect(Array.from(b.labels)).toEqual(Array.from(b.indices, (i) => cifar.labels[i]));
    }
    // Sample k of the epoch is augmented with DataRng(seed, epoch, k).
    const position = 20, img = await readImageFile(join(cifar.root, cifar.paths[order[position]]));
    const expected = new Float32Array(3 * 24 * 24);
    normalizeInto(applyTransforms(img, options.transforms, new DataRng(5, 0, position)), CIFAR_MEAN, CIFAR_STD, expected);
    expect(Array.from(batches[1].images.subarray(4 * 3 * 24 * 24, 5 * 3 * 24 * 24))).toEqual(Array.from(expected));
    // The repeated index gets a fresh augmentation at each position.
    const last = batches[2], size = 3 * 24 * 24;
    const sample = (k: number) => checksum(last.images.subarray(k * size, (k + 1) * size));
    expect(new Set([sample(8), sample(9), sample(10)]).size).toBe(3);
    // Same epoch, same bytes; another epoch, other bytes.
    expectSameBatches(batches, await collect(inThread(cifar, options), order, 0));
    const next = await collect(inThread(cifar, options), order, 1);
    expect(checksum(next[0].images)).not.toBe(checksum(batches[0].images));
    expect((await collect(inThread(cifar, { ...options, dropLast: true }), order, 0)).length).toBe(2);
  });

  it('builds the same batches in worker threads as in-thread, for any number of workers', async () => {
    const reference = await collect(inThread(cifar, options), order, 2);
    for (const [workers, prefetch] of [[1, 1], [3, 4]]) {
      const loader = new WorkerLoader(cifar, { ...options, workers, prefetch, workerUrl });
      expectSameBatches(reference, await collect(loader, order, 2));
      // A second epoch through the same workers.
      expectSameBatches(await collect(inThread(cifar, options), order, 3), await collect(loader, order, 3));
      await loader.close();
    }
  });

  it('loads pixels held in memory (decoded once) like the files they came from', async () => {
    const pixels: PixelDataset = await decodeToPixels(cifar, readFileBytes);
    expect([pixels.height, pixels.width, pixels.images.length]).toEqual([32, 32, 40 * 3072]);
    const cifarOptions: LoaderOptions = { batchSize: 8, transforms: cifarTrainTransforms(), mean: CIFAR_MEAN, std: CIFAR_STD, seed: 9 };
    const reference = await collect(inThread(cifar, cifarOptions), order, 0);
    expectSameBatches(reference, await collect(inThread(pixels, cifarOptions), order, 0));
    const loader = new WorkerLoader(pixels, { ...cifarOptions, workers: 2, workerUrl });
    expectSameBatches(reference, await collect(loader, order, 0));
    await loader.close();
    // Without transforms the output keeps the pixel dataset's size.
    const plain = await collect(inThread(pixels, { ...cifarOptions, transforms: [] }), sequentialOrder(8), 0);
    expect(plain[0].shape).toEqual([8, 3, 32, 32]);
  });

  it('names the corrupt file, from a worker too, and keeps working', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corrupt-'));
    const good = readFileSync(join(CIFAR10_DIR, cifar.paths[0]));
    writeFileSync(join(dir, 'good.jpg'), good);
    writeFileSync(join(dir, 'bad.jpg'), good.subarray(0, 300));
    const ds = parseList('good.jpg 0\nbad.jpg 1\ngood.jpg 0\n', { file: 'corrupt.txt', root: dir });
    const loader = new WorkerLoader(ds, { ...options, batchSize: 1, workers: 2, workerUrl });
    const error = await collect(loader, sequentialOrder(3), 0).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataError);
    expect((error as DataError).message.startsWith(`${join(dir, 'bad.jpg')}: corrupt JPEG`)).toBe(true);
    expect((await collect(loader, [0, 2], 0)).length).toBe(2);
    // A consumer that stops early leaves nothing behind.
    for await (const b of loader.epoch([0, 2, 0, 2, 0], 1)) if (b.batch === 0) break;
    await loader.close();
    await expect(collect(inThread(ds, options), sequentialOrder(3), 0)).rejects.toThrow(`${join(dir, 'bad.jpg')}: corrupt JPEG`);
  });

  it('rejects options that cannot make batches', () => {
    expect(() => inThread(cifar, { ...options, transforms: [{ op: 'horizontalFlip' }] })).toThrow('the transforms do not fix the output size');
    expect(() => inThread(cifar, { ...options, mean: [0.5] })).toThrow('mean and std need 3 values');
    expect(() => createLoader(cifar, { ...options, workers: 0 })).not.toThrow();
    expect(() => new WorkerLoader(cifar, { ...options, workers: 0, workerUrl })).toThrow(RangeError);
  });

  it('finds its worker file after bundling into a task script', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [join(work, 'tasks/loader-task.js'), join(CIFAR10_DIR, 'train.txt'), CIFAR10_DIR, '40'], { timeout: 60_000 });
    const expected = await collect(inThread(cifar, { batchSize: 16, transforms: cifarTrainTransforms(), mean: CIFAR_MEAN, std: CIFAR_STD, seed: 3 }), sequentialOrder(40), 1);
    expect(JSON.parse(stdout)).toEqual(expected.map((b) => checksum(b.images)));
  });
});
