// Loading an instance set into detection samples: each bad-input rule is a counted, logged skip or
// drop, never a crash; evaluation keeps every image. Browser-safe (the images are made in memory).
import { describe, expect, it } from 'vitest';
import { categoriesAbsentFrom, cocoDatasetToJson, DataError, loadDetectionSamples, parseCocoDataset, type CocoImage, type InstanceSet } from '../../data/index.js';

const W = 10;
const H = 8;
const square = (x: number, y: number, s: number) => [x, y, x + s, y, x + s, y + s, x, y + s];

const json = () => ({
  images: [1, 2, 3, 4, 5].map((id) => ({ id, width: W, height: H, file_name: id === 3 ? 'bad.jpg' : `${id}.png` })),
  categories: [
    { id: 7, name: 'cat' },
    { id: 9, name: 'dog' },
    { id: 11, name: 'emu' },
  ],
  annotations: [
    { id: 1, image_id: 1, category_id: 7, bbox: [1, 1, 4, 4], area: 16, iscrowd: 0, segmentation: [square(1, 1, 4)] },
    { id: 2, image_id: 1, category_id: 9, bbox: [0, 0, 10, 8], area: 80, iscrowd: 1, segmentation: { size: [H, W], counts: [0, 80] } },
    { id: 3, image_id: 1, category_id: 7, bbox: [2, 2, 0, 3], area: 0, iscrowd: 0, segmentation: [[2, 2, 2, 5, 2, 2]] },
    { id: 4, image_id: 1, category_id: 7, bbox: [2, 2, 0.5, 3], area: 1.5, iscrowd: 0, segmentation: [[2, 2, 2.5, 2, 2.5, 5, 2, 5]] },
    // half outside on the right: clipped to the image
    { id: 5, image_id: 1, category_id: 9, bbox: [7, 2, 6, 4], area: 24, iscrowd: 0, segmentation: [[7, 2, 13, 2, 13, 6, 7, 6]] },
    // wholly outside
    { id: 6, image_id: 1, category_id: 9, bbox: [20, 20, 5, 5], area: 25, iscrowd: 0, segmentation: [square(20, 20, 5)] },
    // a box inside, its polygon outside
    { id: 7, image_id: 1, category_id: 9, bbox: [1, 1, 3, 3], area: 9, iscrowd: 0, segmentation: [square(-30, -30, 3)] },
    { id: 8, image_id: 3, category_id: 7, bbox: [1, 1, 4, 4], area: 16, iscrowd: 0, segmentation: [square(1, 1, 4)] },
    { id: 9, image_id: 4, category_id: 7, bbox: [0, 0, 3, 3], area: 9, iscrowd: 1, segmentation: { size: [H, W], counts: [0, 3, 5, 3, 5, 3, 61] } },
    { id: 10, image_id: 5, category_id: 7, bbox: [1, 1, 4, 4], area: 16, iscrowd: 0, segmentation: [square(1, 1, 4)] },
  ],
});

/** Image 3 is not an image at all; image 5 decodes to the wrong size. */
const set = (): InstanceSet => ({
  dataset: parseCocoDataset(json(), 'toy.json'),
  pixels: async (im: CocoImage) => {
    if (im.id === 3) throw new DataError('bad.jpg', 'not a JPEG or PNG file (4 bytes, starts with 00 01 02 03)');
    return new Float32Array(3 * (im.id === 5 ? 4 : H) * W).fill(0.5);
  },
});
const labelOf = (c: number) => [7, 9, 11].indexOf(c) + 1;

describe('loadDetectionSamples', () => {
  it('training: drops crowd, degenerate, tiny and outside annotations, skips images without a target or pixels, one log line per kind', async () => {
    const lines: string[] = [];
    const r = await loadDetectionSamples(set(), { labelOf, training: true, log: (l) => lines.push(l) });
    expect(r.samples.map((s) => s.imageId)).toEqual([1]);
    expect(r.skipped.map((s) => [s.imageId, s.reason])).toEqual([
      [2, 'no annotations'],
      [4, 'none of its 1 annotations is usable'],
      [3, 'bad.jpg: not a JPEG or PNG file (4 bytes, starts with 00 01 02 03)'],
      [5, '5.png: 120 values, expected 3 × 8 × 10 (RGB at the annotated size)'],
    ]);
    expect(r.droppedAnnotations).toBe(6); // 2 and 9 crowd, 3 zero width, 4 half a pixel, 6 outside, 7 empty mask
    expect(lines).toEqual([
      'toy.json: skipped 2 training images without a usable annotation (the R-CNN losses need ≥ 1 box) (ids 2, 4); first: no annotations',
      'toy.json: skipped 2 images that could not be decoded (ids 3, 5); first: bad.jpg: not a JPEG or PNG file (4 bytes, starts with 00 01 02 03)',
      'toy.json: dropped 2 crowd annotations (not training targets, as torchvision drops iscrowd) (annotation ids 2, 9)',
      'toy.json: dropped 2 annotations with a degenerate box (width or height < 1 px after clipping to the image) (annotation ids 3, 4)',
      'toy.json: dropped 1 annotations whose box lies wholly outside the image (annotation ids 6)',
      "toy.json: dropped 1 annotations whose mask covers no pixel of the image (polygon outside it or degenerate) (annotation ids 7)",
    ]);
    const s = r.samples[0].sample;
    expect([s.channels, s.height, s.width, s.originalSize]).toEqual([3, H, W, [H, W]]);
    expect(Array.from(s.target.labels)).toEqual([1, 2]);
    // annotation 5's box clipped at x = 10; its mask rasterised inside the image only
    expect(Array.from(s.target.boxes)).toEqual([1, 1, 5, 5, 7, 2, 10, 6]);
    const m = s.target.masks!.subarray(H * W);
    const on = [...m.keys()].filter((i) => m[i]).map((i) => [i % W, Math.floor(i / W)]);
    expect(on.length).toBe(3 * 4);
    expect(on.every(([x, y]) => x >= 7 && y >= 2 && y < 6)).toBe(true);
  });

  it('evaluation keeps every readable image, with or without annotations, crowd regions flagged', async () => {
    const r = await loadDetectionSamples(set(), { labelOf, training: false, masks: false });
    expect(r.samples.map((s) => s.imageId)).toEqual([1, 2, 4]);
    expect(r.skipped.map((s) => s.imageId)).toEqual([3, 5]);
    const [one, two, four] = r.samples.map((s) => s.sample.target);
    expect(Array.from(one.iscrowd!)).toEqual([0, 1, 0, 0]);
    expect(one.masks).toBeUndefined();
    expect(two.labels.length).toBe(0);
    expect(Array.from(four.iscrowd!)).toEqual([1]);
    // without masks, only the box rules apply (7's box is fine)
    expect(r.droppedAnnotations).toBe(3);
  });

  it('a bug in the pixel source (not a DataError) is not hidden as a skip', async () => {
    const s = set();
    const broken: InstanceSet = { dataset: s.dataset, pixels: async () => { throw new TypeError('oops'); } };
    await expect(loadDetectionSamples(broken, { labelOf, training: true })).rejects.toThrow('oops');
  });
});

describe('categoriesAbsentFrom and cocoDatasetToJson', () => {
  it('categories without a non-crowd training instance', () => {
    const d = parseCocoDataset(json(), 'toy.json');
    expect(categoriesAbsentFrom(d).map((c) => c.name)).toEqual(['emu']);
    const crowdOnly = parseCocoDataset({ ...json(), annotations: json().annotations.filter((a) => a.category_id !== 9 || a.iscrowd) }, 'toy.json');
    expect(categoriesAbsentFrom(crowdOnly, d.categories).map((c) => c.id)).toEqual([9, 11]);
  });

  it('a dataset written back to JSON parses to the same dataset (LVIS fields included)', () => {
    const j = json();
    const lvis = {
      ...j,
      images: j.images.map((im) => ({ ...im, neg_category_ids: [11], not_exhaustive_category_ids: im.id === 1 ? [9] : [], coco_url: `http://images.cocodataset.org/val2017/${im.id}.jpg` })),
      categories: j.categories.map((c, i) => ({ ...c, frequency: 'rcf'[i], image_count: i, instance_count: 2 * i })),
      annotations: j.annotations.map((a) => ({ ...a, ignore: a.id === 1 ? 1 : 0 })),
    };
    const d = parseCocoDataset(lvis, 'toy.json');
    expect(d.images[0].cocoUrl).toBe('http://images.cocodataset.org/val2017/1.jpg');
    expect(parseCocoDataset(JSON.parse(JSON.stringify(cocoDatasetToJson(d))), 'toy.json')).toEqual(d);
  });
});
