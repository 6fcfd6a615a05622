import { describe, expect, it, vi } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataError, formatList, joinPath, parseCocoClassification, parseList, selectEntries } from '../../data/index.js';
import { readBenchmarkList, readCocoClassification, readListFile, writeListFile } from '../../data/node-index.js';
import { CIFAR10_DIR } from './shared-data.js';

/** The DataError thrown by fn (fails the test when it does not throw one). */
function dataError(fn: () => unknown): DataError {
  try {
    fn();
  } catch (e) {
    if (e instanceof DataError) return e;
    throw e;
  }
  throw new Error('expected a DataError');
}

describe('list files', () => {
  it('reads the real CIFAR-10 lists with every image present', async () => {
    const train = await readBenchmarkList('cifar10', 'train', CIFAR10_DIR);
    expect(train.paths.length).toBe(50000);
    expect(train.numClasses).toBe(10);
    expect(train.paths[0]).toBe('train/frog/0000.jpg');
    expect(train.labels[0]).toBe(6);
    expect(train.root).toBe(CIFAR10_DIR);
    const counts = new Array(10).fill(0);
    for (const l of train.labels) counts[l]++;
    expect(counts).toEqual(new Array(10).fill(5000));
    const test = await readListFile(join(CIFAR10_DIR, 'test.txt'), { numClasses: 10 });
    expect(test.paths.length).toBe(10000);
    expect(test.skipped).toBe(0);
  });

  it('parses paths and labels, ignores blank lines and CRLF, and infers the class count', () => {
    const ds = parseList('a/x.jpg 2\r\n\n  b/y.jpg   0  \nc/z.png 7\n', { file: 'l.txt', root: '/data' });
    expect(ds.paths).toEqual(['a/x.jpg', 'b/y.jpg', 'c/z.png']);
    expect(Array.from(ds.labels)).toEqual([2, 0, 7]);
    expect(ds.numClasses).toBe(8);
    expect(ds.root).toBe('/data');
    expect(formatList(ds)).toBe('a/x.jpg 2\nb/y.jpg 0\nc/z.png 7\n');
  });

  it('names the file and line of a malformed line', () => {
    for (const bad of ['only-a-path', 'a.jpg 1 2']) {
      const e = dataError(() => parseList(`ok.jpg 0\n${bad}\n`, { file: 'train.txt' }));
      expect(e.file).toBe('train.txt');
      expect(e.line).toBe(2);
      expect(e.message).toMatch(/^train\.txt:2: malformed line/);
    }
  });

  it('rejects labels that are not integers, negative, or >= the number of classes', () => {
    for (const label of ['x', '1.5', '3e2', '0x1', '2a']) {
      const e = dataError(() => parseList(`a.jpg 0\nb.jpg 1\nc.jpg ${label}\n`, { file: 'f.txt' }));
      expect(e.message).toBe(`f.txt:3: label "${label}" is not an integer`);
    }
    expect(dataError(() => parseList('a.jpg 1.5', { file: 'f.txt' })).message).toBe('f.txt:1: label "1.5" is not an integer');
    expect(dataError(() => parseList('a.jpg -1', { file: 'f.txt' })).message).toMatch(/^f\.txt:1: label -1 is out of range/);
    expect(dataError(() => parseList('a.jpg 0\nb.jpg 10', { file: 'f.txt', numClasses: 10 })).message).toBe('f.txt:2: label 10 is out of range [0, 10) (10 classes)');
  });

  it('says the range [0, C) for a label of -1 when the number of classes is known', () => {
    expect(dataError(() => parseList('a.jpg 0\nb.jpg -1', { file: 'f.txt', numClasses: 10 })).message).toBe('f.txt:2: label -1 is out of range [0, 10) (10 classes)');
    expect(dataError(() => parseList('a.jpg -1', { file: 'f.txt' })).message).toBe('f.txt:1: label -1 is out of range [0, 2^31)');
  });

  it('says the list is empty instead of naming an empty class', () => {
    expect(dataError(() => parseList('\n  \n', { file: 'f.txt', numClasses: 10 })).message).toBe('f.txt: the list is empty: expected one "path label" line per image');
    expect(dataError(() => parseList('', { file: 'f.txt' })).message).toBe('f.txt: the list is empty: expected one "path label" line per image');
  });

  it('takes an absolute image path as it is, not under the root', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lists-abs-'));
    const elsewhere = mkdtempSync(join(tmpdir(), 'lists-abs-img-'));
    writeFileSync(join(elsewhere, 'a.jpg'), 'x');
    writeFileSync(join(dir, 'b.jpg'), 'x');
    const list = join(dir, 'list.txt');
    writeFileSync(list, `${join(elsewhere, 'a.jpg')} 0\nb.jpg 1\n`);
    const ds = await readListFile(list, { root: dir, numClasses: 2 });
    expect(ds.paths).toEqual([join(elsewhere, 'a.jpg'), 'b.jpg']);
    expect(joinPath(ds.root, ds.paths[0])).toBe(join(elsewhere, 'a.jpg'));
    expect(joinPath(ds.root, ds.paths[1])).toBe(join(dir, 'b.jpg'));
    expect(joinPath('https://host/data', 'https://cdn/x.jpg')).toBe('https://cdn/x.jpg');
    expect(joinPath('/r', 'C:\\img\\x.jpg')).toBe('C:\\img\\x.jpg');
    // an absolute path that does not exist is named as it is
    writeFileSync(list, `/nonexistent-dir/a.jpg 0\nb.jpg 1\n`);
    await expect(readListFile(list, { root: dir })).rejects.toThrow(`${list}:1: image "/nonexistent-dir/a.jpg" does not exist`);
  });

  it('rejects an empty class when the number of classes is given', () => {
    const e = dataError(() => parseList('a.jpg 0\nb.jpg 2\n', { file: 'f.txt', numClasses: 4 }));
    expect(e.message).toBe('f.txt: class 1 has no images (2 of 4 classes are empty)');
  });

  it('throws on a missing image, or skips, counts and logs it with skipMissing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lists-'));
    writeFileSync(join(dir, 'a.jpg'), 'x');
    writeFileSync(join(dir, 'c.jpg'), 'x');
    const list = join(dir, 'list.txt');
    writeFileSync(list, 'a.jpg 0\nb.jpg 1\nc.jpg 1\nd.jpg 0\n');
    await expect(readListFile(list)).rejects.toThrow(`${list}:2: image "b.jpg" does not exist under "${dir}"`);
    const log = vi.fn();
    const ds = await readListFile(list, { skipMissing: true, log });
    expect(ds.paths).toEqual(['a.jpg', 'c.jpg']);
    expect(ds.skipped).toBe(2);
    expect(log).toHaveBeenCalledTimes(1);
    expect(log.mock.calls[0][0]).toBe(`${list}: skipped 2 of 4 entries whose image is missing (first: line 2 "b.jpg")`);
    // Without the check every line is kept.
    expect((await readListFile(list, { checkFiles: false })).paths.length).toBe(4);
    // Missing images can leave a class empty: still an error when the class count is given.
    writeFileSync(list, 'a.jpg 0\nb.jpg 1\n');
    await expect(readListFile(list, { skipMissing: true, numClasses: 2, log })).rejects.toThrow(`${list}: class 1 has no images`);
  });

  it('names the list file when it cannot be read', async () => {
    await expect(readListFile('/nonexistent/list.txt')).rejects.toThrow('/nonexistent/list.txt: cannot read: ENOENT');
  });

  it('selects entries and writes them back as a list file', async () => {
    const ds = parseList('a.jpg 0\nb.jpg 1\nc.jpg 2\n', { file: 'f.txt', root: '/r' });
    const sub = selectEntries(ds, [2, 0], 'sub.txt');
    expect(sub.paths).toEqual(['c.jpg', 'a.jpg']);
    expect(Array.from(sub.labels)).toEqual([2, 0]);
    expect(() => selectEntries(ds, [3])).toThrow(DataError);
    const dir = mkdtempSync(join(tmpdir(), 'lists-'));
    await writeListFile(join(dir, 'sub.txt'), sub);
    expect(readFileSync(join(dir, 'sub.txt'), 'utf8')).toBe('c.jpg 2\na.jpg 0\n');
  });
});

describe('COCO-style classification JSON (iNaturalist 2018)', () => {
  const json = () => ({
    images: [
      { id: 10, file_name: 'train_val2018/Plantae/7477/a.jpg' },
      { id: 11, file_name: 'train_val2018/Aves/2/b.jpg' },
      { id: 12, file_name: 'train_val2018/Aves/2/c.jpg' },
    ],
    annotations: [
      { id: 1, image_id: 11, category_id: 2 },
      { id: 2, image_id: 10, category_id: 0 },
      { id: 3, image_id: 12, category_id: 2 },
    ],
    categories: [{ id: 0 }, { id: 1 }, { id: 2 }],
  });

  it('labels each image with its annotation, in image order', () => {
    const ds = parseCocoClassification(json(), { file: 'train2018.json' });
    expect(ds.paths).toEqual(['train_val2018/Plantae/7477/a.jpg', 'train_val2018/Aves/2/b.jpg', 'train_val2018/Aves/2/c.jpg']);
    expect(Array.from(ds.labels)).toEqual([0, 2, 2]);
    expect(ds.numClasses).toBe(3);
  });

  it('names the file and the entry of every bad input', () => {
    const parse = (j: unknown, numClasses?: number) => dataError(() => parseCocoClassification(j, { file: 'val2018.json', numClasses })).message;
    const badCategory = json();
    badCategory.annotations[2].category_id = 5;
    expect(parse(badCategory, 3)).toBe('val2018.json: annotations[2].category_id 5 is out of range [0, 3) (3 classes)');
    const fractional = json();
    fractional.annotations[0].category_id = 1.5;
    expect(parse(fractional)).toBe('val2018.json: annotations[0].category_id "1.5" is not an integer');
    const unannotated = json();
    unannotated.annotations.pop();
    expect(parse(unannotated)).toBe('val2018.json: images[2] (id 12) has no annotation');
    const twice = json();
    twice.annotations.push({ id: 4, image_id: 10, category_id: 1 });
    expect(parse(twice)).toBe('val2018.json: annotations[3]: image 10 has more than one annotation');
    expect(parse({ images: [] })).toBe('val2018.json: "annotations" is missing or not an array');
    expect(parse(json(), 4)).toBe('val2018.json: class 1 has no images (2 of 4 classes are empty)');
  });

  it('reads the file from disk and names it when it is not JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'coco-'));
    writeFileSync(join(dir, 'train2018.json'), JSON.stringify(json()));
    const ds = await readCocoClassification(join(dir, 'train2018.json'), { checkFiles: false });
    expect(ds.paths.length).toBe(3);
    expect(ds.root).toBe(dir);
    writeFileSync(join(dir, 'bad.json'), '{"images": [');
    await expect(readCocoClassification(join(dir, 'bad.json'))).rejects.toThrow(`${join(dir, 'bad.json')}: invalid JSON`);
  });
});
