// Instance sets on disk: a COCO or LVIS annotation file plus a folder of images (read), and any set
// written out as annotations.json + PNG images (so the embedded set can be inspected or read back
// with --lvis-json / --image-root).
//
// An image's file is found under the image root by, in order: its file_name; that name without
// LVIS v0.5's `COCO_val2014_` prefix (v0.5 names the 2014 files, the images are COCO 2017's); for
// LVIS v1 (no file_name), coco_url's base name, then coco_url's `split/name` (detectron2's layout:
// the root holds train2017/ and val2017/).
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import type { CocoImage } from './coco.js';
import { encodeRgbPng } from './ade20k.js';
import { decodeImage } from './decode.js';
import { DataError } from './errors.js';
import { cocoDatasetToJson, type InstanceSet } from './instance-sets.js';
import { readCocoDataset } from './node-coco.js';

/** The names an image may have under the image root, most likely first. */
function candidates(im: CocoImage): string[] {
  const names: string[] = [];
  if (im.fileName) {
    names.push(im.fileName);
    const stripped = im.fileName.replace(/^COCO_[a-z]+\d+_/, '');
    if (stripped !== im.fileName) names.push(stripped);
  }
  if (im.cocoUrl) {
    const parts = im.cocoUrl.split('/').filter(Boolean);
    names.push(parts[parts.length - 1]);
    if (parts.length >= 2) names.push(parts.slice(-2).join('/'));
  }
  return [...new Set(names)];
}

/** Reads the first of the candidate files that exists. */
async function readImageFile(root: string, im: CocoImage, jsonFile: string): Promise<{ path: string; bytes: Uint8Array }> {
  const names = candidates(im);
  if (names.length === 0) throw new DataError(jsonFile, `image ${im.id} names no file (neither file_name nor coco_url)`);
  for (const name of names) {
    const path = join(root, name);
    try {
      return { path, bytes: new Uint8Array(await readFile(path)) };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue;
      throw new DataError(path, code === 'EISDIR' ? 'is a directory, expected an image' : `cannot be read: ${(e as Error).message}`);
    }
  }
  const also = names.length > 1 ? ` (also tried ${names.slice(1).join(', ')})` : '';
  throw new DataError(join(root, names[0]), `no such file${also}`);
}

/** A COCO or LVIS json and the folder of its images, as an InstanceSet; images are decoded on demand. */
export async function readInstanceSet(jsonPath: string, imageRoot: string): Promise<InstanceSet> {
  const isDir = await stat(imageRoot).then((s) => s.isDirectory(), () => false);
  if (!isDir) throw new DataError(imageRoot, 'no such directory (the image root)');
  const dataset = await readCocoDataset(jsonPath);
  const pixels = async (im: CocoImage): Promise<Float32Array> => {
    const { path, bytes } = await readImageFile(imageRoot, im, dataset.file);
    const { width, height, data } = decodeImage(bytes, path);
    if (width !== im.width || height !== im.height) throw new DataError(path, `is ${width}×${height}, but ${dataset.file} says image ${im.id} is ${im.width}×${im.height}`);
    const plane = width * height;
    const out = new Float32Array(3 * plane);
    for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) out[c * plane + p] = data[3 * p + c] / 255;
    return out;
  };
  return { dataset, pixels };
}

/**
 * Writes a set as `outDir/annotations.json` and one PNG per image (its file_name with a .png
 * extension, or the 12-digit id for an image without one), pixels rounded to 8 bits. Returns the
 * annotation file's path; readInstanceSet(it, outDir) reads the set back.
 */
export async function writeInstanceSet(set: InstanceSet, outDir: string): Promise<string> {
  const json = cocoDatasetToJson(set.dataset);
  for (const [i, im] of set.dataset.images.entries()) {
    const name = im.fileName ? im.fileName.slice(0, im.fileName.length - extname(im.fileName).length) + '.png' : `${String(im.id).padStart(12, '0')}.png`;
    const plane = im.width * im.height;
    const src = await set.pixels(im);
    const data = new Uint8Array(3 * plane);
    for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) data[3 * p + c] = Math.round(Math.min(1, Math.max(0, src[c * plane + p])) * 255);
    const path = join(outDir, name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, encodeRgbPng({ width: im.width, height: im.height, data }));
    (json.images[i] as { file_name?: string }).file_name = name;
  }
  const path = join(outDir, 'annotations.json');
  await mkdir(outDir, { recursive: true });
  await writeFile(path, JSON.stringify(json));
  return path;
}
