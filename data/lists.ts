// List-file datasets: ImageNet-LT, Places-LT, iNaturalist-2018 and our CIFAR-10 JPEG copy all ship
// `relative/path label` lines (one image a line, paths relative to a root). iNaturalist-2018 also
// ships COCO-style JSON (`images`, `annotations` with `category_id`). Pure code: file access is
// injected (`exists`), so the browser and Node share it.

import { DataError } from './errors.js';

/** Images given by path (relative to `root`, a directory or a URL) with one integer label each. */
export interface ListDataset {
  kind: 'files';
  root: string;
  paths: string[];
  labels: Int32Array;
  numClasses: number;
  /** The list or annotation file it was read from, for messages. */
  source: string;
  /** Entries dropped by `skipMissing` because their image was missing. */
  skipped: number;
}

export interface ListOptions {
  /** The name used in error messages (the list file's path). */
  file: string;
  root?: string;
  /** When given, labels must be below it and every class must have at least one image. */
  numClasses?: number;
  /** Checks that an entry's image exists (relative path); without it nothing is checked. */
  exists?: (path: string) => boolean;
  /** Skip entries whose image is missing, count them and log one line, instead of throwing. */
  skipMissing?: boolean;
  log?: (message: string) => void;
}

/** The standard long-tail benchmarks in list format: class counts and list file names. */
export const LIST_BENCHMARKS = {
  'imagenet-lt': { numClasses: 1000, lists: { train: 'ImageNet_LT_train.txt', val: 'ImageNet_LT_val.txt', test: 'ImageNet_LT_test.txt' } },
  'places-lt': { numClasses: 365, lists: { train: 'Places_LT_train.txt', val: 'Places_LT_val.txt', test: 'Places_LT_test.txt' } },
  'inat2018': { numClasses: 8142, lists: { train: 'iNaturalist18_train.txt', val: 'iNaturalist18_val.txt' } },
  cifar10: { numClasses: 10, lists: { train: 'train.txt', test: 'test.txt' } },
} as const satisfies Record<string, { numClasses: number; lists: Record<string, string> }>;

export type ListBenchmark = keyof typeof LIST_BENCHMARKS;

/** iNaturalist-2018's COCO-style annotation files. */
export const INAT2018_JSON = { train: 'train2018.json', val: 'val2018.json' } as const;

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'] as const;

const INTEGER = /^[+-]?\d+$/;

/** Parses `path label` lines; blank lines are ignored, every other line must have exactly two fields. */
export function parseList(text: string, options: ListOptions): ListDataset {
  const { file } = options;
  const entries: Entry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    const fields = line.split(/\s+/);
    if (fields.length !== 2) throw new DataError(file, `malformed line "${line}": expected "path label"`, i + 1);
    entries.push({ path: fields[0], label: parseLabel(fields[1], options.numClasses, file, i + 1), where: i + 1 });
  }
  return finish(entries, options, (where) => ({ line: where }));
}

/** Reads a COCO-style classification file (iNaturalist 2017/2018/2019): each image's label is the
 * `category_id` of its one annotation; images keep the order of the `images` array. */
export function parseCocoClassification(json: unknown, options: ListOptions): ListDataset {
  const { file } = options;
  const root = asRecord(json, file, 'the top level');
  const images = asArray(root.images, file, 'images');
  const annotations = asArray(root.annotations, file, 'annotations');
  const labelOf = new Map<number, number>();
  annotations.forEach((a, i) => {
    const ann = asRecord(a, file, `annotations[${i}]`);
    const imageId = ann.image_id, category = ann.category_id;
    if (typeof imageId !== 'number') throw new DataError(file, `annotations[${i}].image_id is not a number`);
    if (typeof category !== 'number') throw new DataError(file, `annotations[${i}].category_id is not a number`);
    if (labelOf.has(imageId)) throw new DataError(file, `annotations[${i}]: image ${imageId} has more than one annotation`);
    labelOf.set(imageId, parseLabel(String(category), options.numClasses, file, undefined, `annotations[${i}].category_id`));
  });
  const entries: Entry[] = images.map((m, i) => {
    const img = asRecord(m, file, `images[${i}]`);
    if (typeof img.file_name !== 'string') throw new DataError(file, `images[${i}].file_name is not a string`);
    const label = labelOf.get(img.id as number);
    if (label === undefined) throw new DataError(file, `images[${i}] (id ${String(img.id)}) has no annotation`);
    return { path: img.file_name, label, where: i };
  });
  return finish(entries, options, (where) => ({ at: `images[${where}]` }));
}

/** The dataset as list-file text, one `path label` line per image. */
export function formatList(dataset: Pick<ListDataset, 'paths' | 'labels'>): string {
  let out = '';
  for (let i = 0; i < dataset.paths.length; i++) out += `${dataset.paths[i]} ${dataset.labels[i]}\n`;
  return out;
}

/** The entries at `indices`, in that order (e.g. a long-tailed subset). */
export function selectEntries(dataset: ListDataset, indices: ArrayLike<number>, source = dataset.source): ListDataset {
  const paths: string[] = [];
  const labels = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= dataset.paths.length) throw new DataError(source, `index ${i} is outside the ${dataset.paths.length} entries`);
    paths.push(dataset.paths[i]);
    labels[k] = dataset.labels[i];
  }
  return { ...dataset, paths, labels, source, skipped: 0 };
}

/** Whether a list entry names its image absolutely (`/data/x.jpg`, `C:\\x.jpg`, `https://…/x.jpg`): such a path is used as it is, not under the root. */
export function isAbsolutePath(path: string): boolean {
  return path.startsWith('/') || path.startsWith('\\') || /^[A-Za-z]:[\\/]/.test(path) || /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(path);
}

/** Joins a root (directory or URL) and a relative path with one '/'; an absolute path is returned as it is. */
export function joinPath(root: string, path: string): string {
  if (root === '' || isAbsolutePath(path)) return path;
  return root.endsWith('/') ? root + path : `${root}/${path}`;
}

interface Entry {
  path: string;
  label: number;
  /** Line number (list files) or array index (JSON), for messages. */
  where: number;
}

function parseLabel(text: string, numClasses: number | undefined, file: string, line?: number, field = 'label'): number {
  if (!INTEGER.test(text)) throw new DataError(file, `${field} "${text}" is not an integer`, line);
  const label = Number(text);
  // the range said is the one the run accepts: [0, C) when the number of classes is known
  const range = numClasses !== undefined ? `[0, ${numClasses}) (${numClasses} classes)` : '[0, 2^31)';
  if (label < 0 || label > 0x7fffffff || (numClasses !== undefined && label >= numClasses)) throw new DataError(file, `${field} ${label} is out of range ${range}`, line);
  return label;
}

function finish(entries: Entry[], options: ListOptions, locate: (where: number) => { line?: number; at?: string }): ListDataset {
  const { file, exists } = options;
  let kept = entries;
  let skipped = 0;
  if (exists) {
    kept = [];
    let firstMissing: Entry | undefined;
    for (const e of entries) {
      if (exists(e.path)) kept.push(e);
      else if (options.skipMissing) {
        skipped++;
        firstMissing ??= e;
      } else {
        const { line, at } = locate(e.where);
        throw new DataError(file, `${at ? `${at}: ` : ''}image "${e.path}" does not exist${isAbsolutePath(e.path) ? '' : ` under "${options.root ?? ''}"`}`, line);
      }
    }
    if (firstMissing) {
      const { line, at } = locate(firstMissing.where);
      (options.log ?? console.warn)(`${file}: skipped ${skipped} of ${entries.length} entries whose image is missing (first: ${line ? `line ${line}` : at} "${firstMissing.path}")`);
    }
  }
  if (kept.length === 0) {
    throw new DataError(file, entries.length === 0 ? 'the list is empty: expected one "path label" line per image' : `none of its ${entries.length} images exists under "${options.root ?? ''}"`);
  }
  const labels = Int32Array.from(kept, (e) => e.label);
  let numClasses = options.numClasses;
  if (numClasses === undefined) numClasses = labels.reduce((m, l) => Math.max(m, l + 1), 0);
  else {
    const present = new Uint8Array(numClasses);
    for (const l of labels) present[l] = 1;
    const empty = present.indexOf(0);
    if (empty >= 0) throw new DataError(file, `class ${empty} has no images (${present.reduce((n, p) => n + (1 - p), 0)} of ${numClasses} classes are empty)`);
  }
  return { kind: 'files', root: options.root ?? '', paths: kept.map((e) => e.path), labels, numClasses, source: file, skipped };
}

function asRecord(v: unknown, file: string, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DataError(file, `${what} is not an object`);
  return v as Record<string, unknown>;
}

function asArray(v: unknown, file: string, what: string): unknown[] {
  if (!Array.isArray(v)) throw new DataError(file, `"${what}" is missing or not an array`);
  return v;
}
