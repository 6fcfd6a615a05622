// Node file access for ADE20K / SceneParse150: the ADEChallengeData2016 layout
//   <root>/images/<split>/<name>.jpg        RGB images
//   <root>/annotations/<split>/<name>.png   8-bit label maps (0 = other, 1..150 = class)
// with <split> = training | validation, or no split directory at all (as the three-image sample of
// CSAILVision/sceneparsing). Every error names the file.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { decodeSegSample, type DecodeSampleOptions, type SegSample } from './ade20k.js';
import { DataError } from './errors.js';

export interface SegPair {
  name: string;
  image: string;
  annotation: string;
}

/**
 * Lists the image / annotation pairs of a split, sorted by name. An image whose annotation file is
 * missing is an error naming the annotation path (not a silently shorter set).
 */
export async function listAde20k(root: string, split?: string): Promise<SegPair[]> {
  const imageDir = split ? join(root, 'images', split) : join(root, 'images');
  const annDir = split ? join(root, 'annotations', split) : join(root, 'annotations');
  if (!existsSync(imageDir)) throw new DataError(imageDir, 'no such image directory (expected <root>/images[/<split>]/*.jpg)');
  const files = (await readdir(imageDir)).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort();
  if (files.length === 0) throw new DataError(imageDir, 'no .jpg images');
  return files.map((f) => {
    const name = basename(f, extname(f));
    const annotation = join(annDir, `${name}.png`);
    if (!existsSync(annotation)) throw new DataError(annotation, `missing annotation file for image ${join(imageDir, f)}`);
    return { name, image: join(imageDir, f), annotation };
  });
}

async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new DataError(path, err.code === 'ENOENT' ? 'file not found' : `cannot read: ${err.message}`);
  }
}

/** Reads and decodes one pair (reduce_zero_label by default). */
export async function readSegSample(pair: SegPair, opts: DecodeSampleOptions = {}): Promise<SegSample> {
  const [img, ann] = await Promise.all([readBytes(pair.image), readBytes(pair.annotation)]);
  return decodeSegSample(img, pair.image, ann, pair.annotation, opts);
}
