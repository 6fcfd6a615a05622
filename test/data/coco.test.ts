// COCO / LVIS parsing and its one-line errors naming the file and the entry. Browser-safe (no files);
// the real coco_mini and LVIS files are read in test/data/node-coco.test.ts.
import { describe, expect, it } from 'vitest';
import { DataError, parseCocoDataset, parseCocoResults } from '../../data/index.js';

const base = () => ({
  images: [
    { id: 1, width: 100, height: 80, file_name: 'a.jpg' },
    { id: 2, width: 50, height: 50, neg_category_ids: [2], not_exhaustive_category_ids: [] },
  ],
  categories: [
    { id: 1, name: 'cat', supercategory: 'animal' },
    { id: 2, name: 'dog' },
  ],
  annotations: [
    { id: 10, image_id: 1, category_id: 1, bbox: [1, 2, 30, 40], area: 900, iscrowd: 0, segmentation: [[1, 2, 31, 2, 31, 42, 1, 42]] },
    { id: 11, image_id: 2, category_id: 2, bbox: [0, 0, 10, 10], area: 100, iscrowd: 1, segmentation: { size: [50, 50], counts: [0, 10, 2490] } },
  ],
});

/** The error message of parsing `json`, which must fail with a DataError. */
function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    const message = (e as Error).message;
    expect(message.includes('\n')).toBe(false);
    return message;
  }
  throw new Error('expected a DataError');
}

describe('parseCocoDataset', () => {
  it('reads images, categories, annotations, crowd flags, polygons and RLEs', () => {
    const d = parseCocoDataset(JSON.stringify(base()), 'inst.json');
    expect(d.images.map((i) => [i.id, i.width, i.height])).toEqual([
      [1, 100, 80],
      [2, 50, 50],
    ]);
    expect(d.images[1].negCategoryIds).toEqual([2]);
    expect(d.annotations[1].iscrowd).toBe(true);
    expect(d.annotations[1].segmentation).toEqual({ size: [50, 50], counts: [0, 10, 2490] });
    expect(d.categoryById.get(1)?.supercategory).toBe('animal');
    expect(d.lvis).toBe(false);
  });

  it('recognises LVIS by the categories\' frequency', () => {
    const j = base();
    const lvis = { ...j, categories: j.categories.map((c, i) => ({ ...c, frequency: 'rcf'[i], image_count: 3, instance_count: 7 })), annotations: j.annotations.map(({ iscrowd: _, ...a }) => a) };
    const d = parseCocoDataset(lvis, 'lvis.json');
    expect(d.lvis).toBe(true);
    expect(d.categories.map((c) => c.frequency)).toEqual(['r', 'c']);
    expect(d.annotations.every((a) => !a.iscrowd)).toBe(true);
  });

  it('names the file and the entry for each kind of bad input', () => {
    const cases: [string, (j: ReturnType<typeof base>) => unknown, RegExp][] = [
      ['not JSON', () => '{oops', /^bad\.json: not valid JSON/],
      ['no annotations', (j) => ({ images: j.images, categories: j.categories }), /^bad\.json: missing top-level field 'annotations'$/],
      ['a missing field', (j) => (delete (j.annotations[1] as Partial<(typeof j.annotations)[1]>).bbox, j), /^bad\.json: annotations\[1\] \(id 11\): missing field 'bbox'$/],
      ['a missing image width', (j) => (delete (j.images[0] as Partial<(typeof j.images)[0]>).width, j), /^bad\.json: images\[0\] \(id 1\): missing field 'width'$/],
      ['an unknown category', (j) => ((j.annotations[0].category_id = 99), j), /^bad\.json: annotations\[0\] \(id 10\): category_id 99 is not in categories$/],
      ['an annotation on an unknown image', (j) => ((j.annotations[1].image_id = 7), j), /annotations\[1\] \(id 11\): image_id 7 is not in images$/],
      ['a NaN coordinate', (j) => ((j.annotations[0].bbox = [1, NaN, 3, 4]), j), /annotations\[0\] \(id 10\): 'bbox' has a non-finite coordinate/],
      ['a null (JSON NaN) coordinate', (j) => JSON.stringify(j).replace('[1,2,30,40]', '[1,null,30,40]'), /annotations\[0\] \(id 10\): 'bbox' has a non-finite coordinate/],
      ['a NaN polygon point', (j) => ((j.annotations[0].segmentation = [[1, 2, NaN, 2, 3, 4]]), j), /annotations\[0\] \(id 10\): segmentation\[0\] has a non-finite coordinate/],
      ['a polygon with 2 points', (j) => ((j.annotations[0].segmentation = [[1, 2, 30, 2]]), j), /annotations\[0\] \(id 10\): segmentation\[0\] is a polygon with 2 points; at least 3 are needed/],
      ['an odd polygon', (j) => ((j.annotations[0].segmentation = [[1, 2, 30, 2, 5, 6, 7]]), j), /segmentation\[0\] has an odd number of coordinates/],
      ['RLE counts of the wrong sum', (j) => (((j.annotations[1].segmentation as { counts: number[] }).counts = [0, 10, 10]), j), /annotations\[1\] \(id 11\): segmentation.counts sum to 20, but size 50×50 has 2500 pixels/],
      ['a bad RLE string', (j) => ((j.annotations[1].segmentation = { size: [50, 50], counts: 'ab~' } as never), j), /outside COCO's RLE alphabet/],
      ['a negative box', (j) => ((j.annotations[0].bbox = [1, 2, -3, 4]), j), /'bbox' has a negative width or height/],
      ['a duplicate annotation id', (j) => ((j.annotations[1].id = 10), j), /annotations\[1\] \(id 10\): duplicate annotation id 10/],
      ['an unknown negative category', (j) => ((j.images[1].neg_category_ids = [5]), j), /images\[1\] \(id 2\): neg_category_ids holds category 5, which is not in categories/],
      ['a bad frequency', (j) => (((j.categories[0] as Record<string, unknown>).frequency = 'x'), j), /categories\[0\]: 'frequency' must be one of r, c, f/],
    ];
    for (const [what, edit, pattern] of cases) expect(errorOf(() => parseCocoDataset(edit(base()), 'bad.json')), what).toMatch(pattern);
  });
});

describe('parseCocoResults', () => {
  const gt = parseCocoDataset(base(), 'gt.json');
  const good = { image_id: 1, category_id: 1, bbox: [1, 2, 3, 4], score: 0.5 };

  it('reads boxes, scores and RLE masks; a mask-only result gets its box from the mask', () => {
    const d = parseCocoResults([good, { image_id: 2, category_id: 2, score: 0.1, segmentation: { size: [50, 50], counts: [55, 3, 2442] } }], gt, 'dt.json');
    expect(d[0]).toEqual({ imageId: 1, categoryId: 1, bbox: [1, 2, 3, 4], score: 0.5, segmentation: undefined });
    // pixels 55..57 column-major in a 50-high image: x = 1, y = 5..7
    expect(d[1].bbox).toEqual([1, 5, 1, 3]);
    expect(d[1].boxFromMask).toBe(true);
  });

  it('names the file and the detection for each kind of bad input', () => {
    const cases: [string, unknown, RegExp][] = [
      ['not a list', { a: 1 }, /^dt\.json: expected a list of detections/],
      ['an unknown image', [good, { ...good, image_id: 3 }], /^dt\.json: detection \[1\]: image_id 3 is not an image of gt\.json$/],
      ['an unknown category', [{ ...good, category_id: 3 }], /^dt\.json: detection \[0\]: category_id 3 is not a category of gt\.json$/],
      ['no score', [{ image_id: 1, category_id: 1, bbox: [1, 2, 3, 4] }], /detection \[0\]: missing field 'score'/],
      ['a NaN score', [{ ...good, score: NaN }], /detection \[0\]: 'score' must be a finite number/],
      ['a NaN box', [{ ...good, bbox: [NaN, 1, 2, 3] }], /detection \[0\]: 'bbox' has a non-finite coordinate/],
      ['no box and no mask', [{ image_id: 1, category_id: 1, score: 1 }], /detection \[0\]: missing field 'bbox'/],
      ['a mask of the wrong size', [{ ...good, segmentation: { size: [10, 10], counts: '0' } }], /detection \[0\]: segmentation size 10×10 differs from image 1's 80×100/],
      ['a short polygon', [{ ...good, segmentation: [[1, 2, 3, 4]] }], /detection \[0\]: segmentation\[0\] is a polygon with 2 points/],
    ];
    for (const [what, json, pattern] of cases) expect(errorOf(() => parseCocoResults(json, gt, 'dt.json')), what).toMatch(pattern);
  });
});
