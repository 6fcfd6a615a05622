import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import h5wasm from 'h5wasm/node';
import { loadVg150 } from '../../data/node-vg150.js';
import { parseVg150Dicts, sampleDuplicateRelations, vg150PredicateCounts, VG150_DICTS_FILE } from '../../data/vg150.js';
import { DataRng } from '../../data/rng.js';
import { readFileSync } from 'node:fs';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const DICTS = {
  label_to_idx: { cat: 1, dog: 2, table: 3 },
  idx_to_label: { 1: 'cat', 2: 'dog', 3: 'table' },
  predicate_to_idx: { on: 1, near: 2 },
  idx_to_predicate: { 1: 'on', 2: 'near' },
  attribute_to_idx: { red: 1 },
};
// 6 listed images, one of them PySGG's corrupted 1592 (not in the HDF5 file): 5 HDF5 rows
const IMAGE_DATA = [
  { image_id: 1, width: 512, height: 256 },
  { image_id: 2, width: 100, height: 100 },
  { image_id: 1592, width: 10, height: 10 },
  { image_id: 3, width: 1024, height: 768 },
  { image_id: 4, width: 300, height: 300 },
  { image_id: 5, width: 1024, height: 1024 },
];

interface Arrays { [k: string]: { data: number[]; shape: number[] } }
function baseArrays(): Arrays {
  return {
    // rows: 0 train (2 boxes, 3 rels), 1 train no rels, 2 test, 3 train without boxes, 4 train with non-overlapping boxes
    split: { data: [0, 0, 2, 0, 0], shape: [5] },
    img_to_first_box: { data: [0, 2, 4, -1, 7], shape: [5] },
    img_to_last_box: { data: [1, 3, 6, -1, 8], shape: [5] },
    img_to_first_rel: { data: [0, -1, 3, -1, 5], shape: [5] },
    img_to_last_rel: { data: [2, -1, 4, -1, 5], shape: [5] },
    boxes_1024: {
      data: [981, 471, 41, 21, 1000, 500, 100, 100, 50, 50, 10, 10, 60, 60, 10, 10, 100, 100, 20, 20, 120, 100, 20, 20, 500, 500, 30, 30, 10, 10, 10, 10, 900, 900, 10, 10],
      shape: [9, 4],
    },
    labels: { data: [1, 3, 2, 2, 1, 2, 3, 1, 2], shape: [9, 1] },
    // global box rows; row 0: (0→1 on), (0→1 near), (1→0 near); row 2: (4→5 near), (6→4 on); row 4: (7→8 on)
    relationships: { data: [0, 1, 0, 1, 1, 0, 4, 5, 6, 4, 7, 8], shape: [6, 2] },
    predicates: { data: [1, 2, 2, 2, 1, 1], shape: [6, 1] },
  };
}

async function writeRoot(arrays: Arrays): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'vg150-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'VG-SGG-dicts-with-attri.json'), JSON.stringify(DICTS));
  writeFileSync(join(dir, 'image_data.json'), JSON.stringify(IMAGE_DATA));
  await h5wasm.ready;
  const f = new h5wasm.File(join(dir, 'VG-SGG-with-attri.h5'), 'w');
  for (const [name, { data, shape }] of Object.entries(arrays)) f.create_dataset({ name, data: Int32Array.from(data), shape });
  f.close();
  return dir;
}

describe('VG150 loader (HDF5 written by the test with h5wasm)', () => {
  it('reads splits, scales and clips boxes as PySGG, keeps relations local to the image', async () => {
    const root = await writeRoot(baseArrays());
    const train = await loadVg150(root, { split: 'train', numValImages: 0 });
    expect(train.images.map((im) => im.imageId)).toEqual([1, 5]); // row 1 has no relations, row 3 no boxes
    const im = train.images[0];
    expect(im.row).toBe(0);
    // f = 512 / 1024; box 0: x1 = trunc(981 − 20.5) = 960, y1 = trunc(471 − 10.5) = 460, x2 = 1001, y2 = 481
    expect([...im.boxes.slice(0, 4)]).toEqual([480, 230, 500.5, 240.5]);
    // box 1: (950, 450, 1050, 550) · 0.5, clipped to (width − 1, height − 1)
    expect([...im.boxes.slice(4, 8)]).toEqual([475, 225, 511, 255]);
    expect([...im.labels]).toEqual([1, 3]);
    expect([...im.relations]).toEqual([0, 1, 1, 0, 1, 2, 1, 0, 2]);
    expect(train.dicts.predicates).toEqual(['__background__', 'on', 'near']);
    expect([...vg150PredicateCounts(train)]).toEqual([0, 2, 2]);

    const test = await loadVg150(root, { split: 'test' });
    expect(test.images.map((im) => im.imageId)).toEqual([3]);
    expect([...test.images[0].relations]).toEqual([0, 1, 2, 2, 0, 1]);
    const val = await loadVg150(root, { split: 'val', numValImages: 1 });
    expect(val.images.map((im) => im.imageId)).toEqual([1]);
    const trainAfterVal = await loadVg150(root, { split: 'train', numValImages: 1 });
    expect(trainAfterVal.images.map((im) => im.imageId)).toEqual([5]);
    // non-overlap filter (train only): image 5's boxes do not touch, so it goes
    const overlap = await loadVg150(root, { split: 'train', numValImages: 0, filterNonOverlap: true });
    expect(overlap.images.map((im) => im.imageId)).toEqual([1]);
    const withEmpty = await loadVg150(root, { split: 'train', numValImages: 0, filterEmptyRels: false });
    expect(withEmpty.images.map((im) => im.imageId)).toEqual([1, 2, 5]);
    expect(withEmpty.images[1].relations.length).toBe(0);
  });

  it('bad input: each error names the image and the entry', async () => {
    const bad = async (edit: (a: Arrays) => void) => {
      const a = baseArrays();
      edit(a);
      return loadVg150(await writeRoot(a), { split: 'train', numValImages: 0 });
    };
    await expect(bad((a) => (a.relationships.data[1] = 5))).rejects.toThrow(/image 1 \(row 0\): relationships\[0\] = \(0, 5\) points at an entity outside the image's boxes 0\.\.1/);
    await expect(bad((a) => (a.boxes_1024.data[2] = 0))).rejects.toThrow(/image 1 \(row 0\): boxes_1024\[0\] \(box 0 of the image\) = \(cx 981, cy 471, w 0, h 21\) has zero area/);
    await expect(bad((a) => (a.predicates.data[2] = 3))).rejects.toThrow(/image 1 \(row 0\): predicates\[2\] = 3 is not a predicate in 1\.\.2/);
    await expect(bad((a) => (a.labels.data[8] = 0))).rejects.toThrow(/image 5 \(row 4\): labels\[8\] \(box 1 of the image\) = 0 is not an object class/);
    await expect(bad((a) => delete a.img_to_first_rel)).rejects.toThrow(/VG-SGG-with-attri\.h5: missing dataset 'img_to_first_rel'/);
    await expect(bad((a) => delete a.boxes_1024)).rejects.toThrow(/missing dataset 'boxes_1024'/);
    await expect(bad((a) => (a.split = { data: [0, 0, 2, 0], shape: [4] }))).rejects.toThrow(/img_to_first_box has 5 entries, split has 4/);
    await expect(loadVg150('/nonexistent-vg', { split: 'train' })).rejects.toThrow(/VG-SGG-dicts-with-attri\.json: file not found/);
  });

  it('parses the real VG150 dictionary from ../shared when present', () => {
    let text: string;
    try {
      text = readFileSync(new URL('../../../shared/data/vg150/' + VG150_DICTS_FILE, import.meta.url), 'utf8');
    } catch {
      return; // the shared copy is not part of the package
    }
    const d = parseVg150Dicts(JSON.parse(text));
    expect(d.objects.length).toBe(151);
    expect(d.predicates.length).toBe(51);
    expect(d.predicates[31]).toBe('on');
    expect(d.objects[1]).toBe('airplane');
    expect(() => parseVg150Dicts({ label_to_idx: { a: 1, b: 1 }, predicate_to_idx: {} }, 'x.json')).toThrow(/x\.json: label_to_idx: index 1 is used twice/);
  });

  it('sampleDuplicateRelations keeps one predicate per pair, seeded', () => {
    const rels = Int32Array.from([0, 1, 1, 0, 1, 2, 1, 0, 2, 0, 1, 3]);
    const a = sampleDuplicateRelations(rels, new DataRng(7));
    expect(a.length).toBe(6);
    expect([a[0], a[1], a[3], a[4], a[5]]).toEqual([0, 1, 1, 0, 2]);
    expect([1, 2, 3]).toContain(a[2]);
    expect([...sampleDuplicateRelations(rels, new DataRng(7))]).toEqual([...a]);
    const seen = new Set<number>();
    for (let s = 0; s < 40; s++) seen.add(sampleDuplicateRelations(rels, new DataRng(s))[2]);
    expect([...seen].sort()).toEqual([1, 2, 3]);
  });
});
