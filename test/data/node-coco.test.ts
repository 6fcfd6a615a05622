// Reading the real COCO and LVIS files (../shared/data): their counts as their READMEs give them, and
// file errors as one line naming the file.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCocoDataset, readCocoResults } from '../../data/node-index.js';
import { DataError } from '../../data/index.js';
import { COCO_MINI_TRAIN, COCO_MINI_VAL, LVIS_SAMPLE } from './coco-data.js';

describe('reading COCO and LVIS files', () => {
  it('coco_mini: 79 val images, 624 instances (5 crowd, as uncompressed RLEs), 80 categories of which 78 occur', async () => {
    const d = await readCocoDataset(COCO_MINI_VAL);
    expect([d.images.length, d.annotations.length, d.categories.length]).toEqual([79, 624, 80]);
    expect(d.annotations.filter((a) => a.iscrowd).length).toBe(5);
    expect(new Set(d.annotations.map((a) => a.categoryId)).size).toBe(78);
    expect(d.lvis).toBe(false);
    const t = await readCocoDataset(COCO_MINI_TRAIN);
    expect([t.images.length, t.annotations.length, t.annotations.filter((a) => a.iscrowd).length]).toEqual([80, 739, 8]);
    const crowd = d.annotations.find((a) => a.iscrowd)!;
    const im = d.imageById.get(crowd.imageId)!;
    expect(crowd.segmentation).toMatchObject({ size: [im.height, im.width] });
    expect(Array.isArray((crowd.segmentation as { counts: unknown }).counts)).toBe(true);
  });

  it('the LVIS v0.5 sample: 100 images, 977 instances, 1,230 categories r/c/f 454/461/315, 942 negatives, 16 not exhaustive', async () => {
    const d = await readCocoDataset(LVIS_SAMPLE);
    expect([d.images.length, d.annotations.length, d.categories.length]).toEqual([100, 977, 1230]);
    expect(d.lvis).toBe(true);
    expect((['r', 'c', 'f'] as const).map((f) => d.categories.filter((c) => c.frequency === f).length)).toEqual([454, 461, 315]);
    expect(d.images.reduce((s, im) => s + im.negCategoryIds.length, 0)).toBe(942);
    expect(d.images.reduce((s, im) => s + im.notExhaustiveCategoryIds.length, 0)).toBe(16);
    expect(new Set(d.annotations.map((a) => a.categoryId)).size).toBe(190);
  });

  it('a missing file, a directory, and a result file with a bad entry: one line naming the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'coco-'));
    await expect(readCocoDataset(join(dir, 'none.json'))).rejects.toThrow(new DataError(join(dir, 'none.json'), 'no such file'));
    await expect(readCocoDataset(dir)).rejects.toThrow(/is a directory/);
    const gt = await readCocoDataset(COCO_MINI_VAL);
    writeFileSync(join(dir, 'dt.json'), JSON.stringify([{ image_id: 139, category_id: 1, bbox: [0, 0, 1, 1], score: 1 }, { image_id: 1, category_id: 1, bbox: [0, 0, 1, 1], score: 1 }]));
    await expect(readCocoResults(join(dir, 'dt.json'), gt)).rejects.toThrow('dt.json: detection [1]: image_id 1 is not an image of instances_val2017.json');
  });
});
