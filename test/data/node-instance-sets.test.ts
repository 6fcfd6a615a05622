// Instance sets on disk: the embedded set written as annotations.json + PNGs reads back equal, and
// the real coco_mini / LVIS files load with their images found by file_name, by LVIS v0.5's 2014
// names, or by LVIS v1's coco_url. The shared-data cases skip when ../shared/data is absent.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError, loadDetectionSamples, syntheticLvis, type InstanceSet } from '../../data/index.js';
import { readCocoDataset, readInstanceSet, writeInstanceSet } from '../../data/node-index.js';

const SHARED = process.env.SHARED_DATA_DIR ?? fileURLToPath(new URL('../../../shared/data', import.meta.url));
const COCO_MINI = join(SHARED, 'coco_mini');
const VAL_JSON = join(COCO_MINI, 'annotations/instances_val2017.json');
const LVIS_SAMPLE = join(SHARED, 'lvis/lvis_v0.5_val_100.json');
const hasShared = existsSync(VAL_JSON) && existsSync(LVIS_SAMPLE);

const dir = mkdtempSync(join(tmpdir(), 'instance-sets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Byte equality of two images (vitest's deep equality walks a large typed array slowly). */
const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** The set cut down to a few images (their annotations are not needed to test pixel reading). */
const firstImages = (set: InstanceSet, ids: readonly number[]): InstanceSet => ({ ...set, dataset: { ...set.dataset, images: set.dataset.images.filter((im) => ids.includes(im.id)) } });

describe('writeInstanceSet and readInstanceSet', () => {
  it('the embedded set round-trips: the same annotations and the same pixels', async () => {
    const { test } = syntheticLvis({ seed: 2, trainImages: 10, testImages: 6 });
    const out = join(dir, 'synthetic');
    const json = await writeInstanceSet(test, out);
    expect(json).toBe(join(out, 'annotations.json'));
    const back = await readInstanceSet(json, out);
    expect({ ...back.dataset, file: test.dataset.file }).toEqual(test.dataset);
    for (const im of test.dataset.images) expect(same(await back.pixels(im), await test.pixels(im))).toBe(true);
  });

  it('a missing image root, image, or wrong-size image: one line naming the file', async () => {
    const { test } = syntheticLvis({ seed: 2, trainImages: 10, testImages: 3 });
    const out = join(dir, 'broken');
    const json = await writeInstanceSet(test, out);
    await expect(readInstanceSet(json, join(dir, 'nowhere'))).rejects.toThrow(new DataError(join(dir, 'nowhere'), 'no such directory (the image root)'));
    const set = await readInstanceSet(json, out);
    const [a, b, c] = set.dataset.images;
    rmSync(join(out, a.fileName!));
    writeFileSync(join(out, b.fileName!), 'not an image');
    await expect(set.pixels(a)).rejects.toThrow(`${join(out, a.fileName!)}: no such file`);
    await expect(set.pixels({ ...c, width: c.width + 1 })).rejects.toThrow(`is ${c.width}×${c.height}, but annotations.json says image ${c.id} is ${c.width + 1}×${c.height}`);
    const r = await loadDetectionSamples(set, { labelOf: (x) => x, training: true });
    expect(r.samples.map((s) => s.imageId)).toEqual([c.id]);
    expect(r.skipped.map((s) => s.reason)).toEqual([`${join(out, a.fileName!)}: no such file`, `${join(out, b.fileName!)}: not a JPEG or PNG file (12 bytes, starts with 6e 6f 74 20)`]);
  });
});

describe.skipIf(!hasShared)('real COCO and LVIS files (../shared/data)', () => {
  it('coco_mini val2017: images decoded to [0, 1] at their annotated size, crowd regions dropped in training', async () => {
    const set = await readInstanceSet(VAL_JSON, join(COCO_MINI, 'val2017'));
    const crowdImage = set.dataset.annotations.find((a) => a.iscrowd)!.imageId;
    const two = firstImages(set, [set.dataset.images[0].id, crowdImage]);
    const r = await loadDetectionSamples(two, { labelOf: (c) => c, training: true });
    expect(r.samples.length).toBe(2);
    expect(r.skipped).toEqual([]);
    expect(r.droppedAnnotations).toBe(set.dataset.annotations.filter((a) => a.iscrowd && a.imageId === crowdImage).length);
    for (const { imageId, sample } of r.samples) {
      const im = set.dataset.imageById.get(imageId)!;
      expect([sample.height, sample.width]).toEqual([im.height, im.width]);
      expect(sample.image.every((v) => v >= 0 && v <= 1)).toBe(true);
      expect(sample.target.masks!.length).toBe(sample.target.labels.length * im.height * im.width);
    }
  });

  it("LVIS v0.5 names COCO_val2014_ files (found under their 2017 names) and v1 only coco_url (found by its base name or split/name)", async () => {
    const lvis = await readInstanceSet(LVIS_SAMPLE, join(COCO_MINI, 'val2017'));
    // image 11813 is the one coco_mini holds; the others are reported missing, not fatal
    const other = lvis.dataset.images.find((im) => im.id !== 11813)!;
    const r = await loadDetectionSamples(firstImages(lvis, [11813, other.id]), { labelOf: (c) => c, training: false, masks: false });
    expect(r.samples.map((s) => s.imageId)).toEqual([11813]);
    const name2017 = other.fileName!.replace('COCO_val2014_', '');
    expect(r.skipped[0].reason).toBe(`${join(COCO_MINI, 'val2017', other.fileName!)}: no such file (also tried ${name2017}, val2017/${name2017})`);
    // an LVIS v1-style entry: no file_name, only coco_url
    const d = await readCocoDataset(LVIS_SAMPLE);
    const im = d.imageById.get(11813)!;
    const v1 = join(dir, 'v1.json');
    writeFileSync(v1, JSON.stringify({ images: [{ id: im.id, width: im.width, height: im.height, coco_url: im.cocoUrl }], annotations: [], categories: [{ id: 1, name: 'x', frequency: 'r' }] }));
    const expected = await lvis.pixels(im);
    expect(same(await (await readInstanceSet(v1, join(COCO_MINI, 'val2017'))).pixels(im), expected)).toBe(true);
    expect(same(await (await readInstanceSet(v1, COCO_MINI)).pixels(im), expected)).toBe(true);
  });
});
