// VG150, Node part: reads VG-SGG-with-attri.h5 with h5wasm (HDF5 compiled to WebAssembly, no native
// build), VG-SGG-dicts-with-attri.json and image_data.json from a data root, and builds a split with
// data/vg150.ts. A missing file or dataset is an error naming the file and the entry.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import h5wasm from 'h5wasm/node';
import { DataError } from './errors.js';
import {
  VG150_DICTS_FILE, VG150_H5_DATASETS, VG150_H5_FILE, VG150_IMAGE_DATA_FILE, VG150_BOX_SCALE,
  buildVg150Split, parseVg150Dicts, parseVg150ImageData, type Vg150Options, type Vg150Roidb, type Vg150Split,
} from './vg150.js';

export interface Vg150Files {
  h5?: string;
  dicts?: string;
  imageData?: string;
}

function toNumbers(v: unknown, file: string, name: string): ArrayLike<number> {
  if (v instanceof BigInt64Array || v instanceof BigUint64Array) return Float64Array.from(v, (x) => Number(x));
  if (ArrayBuffer.isView(v) && 'length' in v) return v as unknown as ArrayLike<number>;
  throw new DataError(file, `dataset '${name}' is not numeric`);
}

/** Reads the arrays of VG-SGG-with-attri.h5 that the loader needs. */
export async function readVg150Roidb(path: string, boxScale = VG150_BOX_SCALE): Promise<Vg150Roidb> {
  if (!existsSync(path)) throw new DataError(path, 'file not found');
  await h5wasm.ready;
  const f = new h5wasm.File(path, 'r');
  try {
    const names = new Set(f.keys());
    const read = (name: string): { data: ArrayLike<number>; integer: boolean } => {
      if (!names.has(name)) throw new DataError(path, `missing dataset '${name}' (have: ${[...names].sort().join(', ')})`);
      const ds = f.get(name) as { value: unknown; dtype: unknown } | null;
      if (!ds || !('value' in ds)) throw new DataError(path, `'${name}' is not a dataset`);
      const dtype = String(ds.dtype);
      return { data: toNumbers(ds.value, path, name), integer: /[iu]/i.test(dtype) && !/f/i.test(dtype) };
    };
    const arrays: Record<string, ArrayLike<number>> = {};
    for (const name of VG150_H5_DATASETS) arrays[name] = read(name).data;
    const boxes = read(`boxes_${boxScale}`);
    return {
      split: arrays.split,
      img_to_first_box: arrays.img_to_first_box,
      img_to_last_box: arrays.img_to_last_box,
      img_to_first_rel: arrays.img_to_first_rel,
      img_to_last_rel: arrays.img_to_last_rel,
      labels: arrays.labels,
      relationships: arrays.relationships,
      predicates: arrays.predicates,
      boxes: boxes.data,
      boxesInteger: boxes.integer,
    };
  } finally {
    f.close();
  }
}

function readJson(path: string): unknown {
  if (!existsSync(path)) throw new DataError(path, 'file not found');
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new DataError(path, `not valid JSON: ${(e as Error).message}`);
  }
}

/** Loads one VG150 split from `dataRoot` (the three standard files; names overridable). */
export async function loadVg150(dataRoot: string, options: Vg150Options, files: Vg150Files = {}): Promise<Vg150Split> {
  const h5 = join(dataRoot, files.h5 ?? VG150_H5_FILE);
  const dictsPath = join(dataRoot, files.dicts ?? VG150_DICTS_FILE);
  const imagesPath = join(dataRoot, files.imageData ?? VG150_IMAGE_DATA_FILE);
  const dicts = parseVg150Dicts(readJson(dictsPath), dictsPath);
  const imageData = parseVg150ImageData(readJson(imagesPath), imagesPath);
  const roidb = await readVg150Roidb(h5, options.boxScale ?? VG150_BOX_SCALE);
  return buildVg150Split(roidb, imageData, dicts, { ...options, file: h5 });
}
