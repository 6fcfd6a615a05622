// Node file access for the data pipeline: list files, COCO-style JSON, CIFAR binaries, image files.

import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { DataError } from './errors.js';
import { formatList, joinPath, LIST_BENCHMARKS, parseCocoClassification, parseList, type ListBenchmark, type ListDataset } from './lists.js';
import { CIFAR_FILES, parseCifarBinary, type CifarDataset, type CifarVariant } from './cifar.js';
import { decodeImage, type RgbImage } from './decode.js';
import type { ReadBytes } from './loader.js';

export interface ReadListOptions {
  /** Directory the paths are relative to; default: the list file's directory. */
  root?: string;
  numClasses?: number;
  /** Check that every image exists (default true); a missing one throws unless skipMissing. */
  checkFiles?: boolean;
  skipMissing?: boolean;
  log?: (message: string) => void;
}

/** Reads a `path label` list file (ImageNet-LT format). */
export async function readListFile(listFile: string, options: ReadListOptions = {}): Promise<ListDataset> {
  const root = resolve(options.root ?? dirname(listFile));
  const text = await readText(listFile);
  return parseList(text, listOptions(listFile, root, options));
}

/** Reads a COCO-style classification file (iNaturalist-2018 train2018.json / val2018.json). */
export async function readCocoClassification(jsonFile: string, options: ReadListOptions = {}): Promise<ListDataset> {
  const root = resolve(options.root ?? dirname(jsonFile));
  let json: unknown;
  try {
    json = JSON.parse(await readText(jsonFile));
  } catch (e) {
    throw e instanceof DataError ? e : new DataError(jsonFile, `invalid JSON: ${(e as Error).message}`);
  }
  return parseCocoClassification(json, listOptions(jsonFile, root, options));
}

/** One split of a standard benchmark: `listDir` holds its list files, `root` its images. */
export function readBenchmarkList(benchmark: ListBenchmark, split: string, listDir: string, options: ReadListOptions = {}): Promise<ListDataset> {
  const { numClasses, lists } = LIST_BENCHMARKS[benchmark];
  const file = (lists as Record<string, string>)[split];
  if (!file) throw new RangeError(`${benchmark} has no split "${split}" (it has ${Object.keys(lists).join(', ')})`);
  return readListFile(join(listDir, file), { numClasses, ...options });
}

/** Writes a list file atomically (a temporary name, then rename). */
export async function writeListFile(file: string, dataset: Pick<ListDataset, 'paths' | 'labels'>): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, formatList(dataset));
  await rename(tmp, file);
}

/** Reads CIFAR-10/100 binaries from `dir` (data_batch_1..5.bin / test_batch.bin, train.bin / test.bin). */
export async function readCifarBinary(dir: string, variant: CifarVariant, split: 'train' | 'test'): Promise<CifarDataset> {
  const parts = await Promise.all(CIFAR_FILES[variant][split].map(async (name) => ({ file: join(dir, name), bytes: await readBytesOf(join(dir, name)) })));
  return parseCifarBinary(variant, parts);
}

/** Node's ReadBytes: the file's contents; a missing file is a DataError naming it. */
export const readFileBytes: ReadBytes = (path) => readBytesOf(path);

export async function readImageFile(path: string): Promise<RgbImage> {
  return decodeImage(await readBytesOf(path), path);
}

async function readBytesOf(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new DataError(path, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

async function readText(path: string): Promise<string> {
  return new TextDecoder().decode(await readBytesOf(path));
}

function listOptions(file: string, root: string, options: ReadListOptions) {
  return {
    file,
    root,
    numClasses: options.numClasses,
    exists: options.checkFiles === false ? undefined : (path: string) => existsSync(joinPath(root, path)),
    skipMissing: options.skipMissing,
    log: options.log,
  };
}
