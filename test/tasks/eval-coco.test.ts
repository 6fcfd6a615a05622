// `node tasks/eval-coco.js`: built with esbuild into a temporary folder and run as a user would. Its
// output is pycocotools' and lvis-api's text (compared with the official code's own output, from
// test/fixtures/coco-eval), --json holds the numbers and per-category AP, and bad input is one line
// and exit code 1.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COCO_MINI_VAL, LVIS_SAMPLE } from '../data/coco-data.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
let work: string;
let task: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'eval-coco-'));
  symlinkSync(join(repo, 'node_modules'), join(work, 'node_modules'), 'dir');
  await build({ bundle: true, format: 'esm', target: 'es2022', platform: 'node', packages: 'external', logLevel: 'warning', absWorkingDir: repo, entryPoints: ['tasks/eval-coco.ts'], outfile: join(work, 'tasks/eval-coco.js') });
  task = join(work, 'tasks/eval-coco.js');
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

const run = (...args: string[]) => spawnSync(process.execPath, [task, ...args], { encoding: 'utf8' });
const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../fixtures/coco-eval/${name}`, import.meta.url), 'utf8'));
const write = (name: string, value: unknown) => {
  const path = join(work, name);
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value));
  return path;
};

describe('tasks/eval-coco.js', () => {
  it('prints COCOeval.summarize() as pycocotools does, and writes --json', () => {
    const fx = fixture('coco-mini.json');
    const dt = write('mini-dt.json', fx.dt);
    for (const iou of ['bbox', 'segm']) {
      const out = join(work, `mini-${iou}.json`);
      const r = run('--gt', COCO_MINI_VAL, '--dt', dt, '--iou', iou, '--json', out);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(`COCO ${iou} evaluation: 79 images, 624 ground-truth instances, 772 detections\n${fx[iou].text}`);
      const j = JSON.parse(readFileSync(out, 'utf8'));
      expect(j.stats).toEqual(fx[iou].stats);
      expect(j.metrics.AP).toBe(fx[iou].stats[0]);
      expect(j.perCategory.map((c: { ap: number }) => c.ap)).toEqual(fx[iou].perCategory.map((c: { ap: number }) => c.ap));
    }
  });

  it('prints LVIS numbers (APr/APc/APf, AR@300) for an LVIS ground truth as lvis-api does', () => {
    const fx = fixture('lvis-sample.json');
    const dt = write('lvis-dt.json', fx.dt);
    const r = run('--gt', LVIS_SAMPLE, '--dt', dt, '--iou', 'segm');
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n').slice(1).join('\n')).toBe(fx.segm.text);
  });

  it('bad input: one line naming the file and entry, exit 1; a bad command line: exit 2', () => {
    const gt = JSON.parse(readFileSync(COCO_MINI_VAL, 'utf8'));
    const cases: [string[], number, RegExp][] = [
      [['--gt', COCO_MINI_VAL, '--dt', write('unknown-image.json', [{ image_id: 1, category_id: 1, bbox: [0, 0, 1, 1], score: 1 }])], 1, /^eval-coco: unknown-image\.json: detection \[0\]: image_id 1 is not an image of instances_val2017\.json\n$/],
      [['--gt', COCO_MINI_VAL, '--dt', write('nan.json', '[{"image_id": 139, "category_id": 1, "bbox": [0, NaN, 1, 1], "score": 1}]')], 1, /^eval-coco: nan\.json: not valid JSON/],
      [['--gt', COCO_MINI_VAL, '--dt', write('null-box.json', [{ image_id: 139, category_id: 1, bbox: [0, null, 1, 1], score: 1 }])], 1, /^eval-coco: null-box\.json: detection \[0\]: 'bbox' has a non-finite coordinate/],
      [['--gt', write('no-cat.json', { ...gt, annotations: [{ ...gt.annotations[0], category_id: 1000 }] }), '--dt', write('empty.json', [])], 1, /^eval-coco: no-cat\.json: annotations\[0\] \(id \d+\): category_id 1000 is not in categories\n$/],
      [['--gt', write('short-poly.json', { ...gt, annotations: [{ ...gt.annotations[0], segmentation: [[1, 2, 3, 4]] }] }), '--dt', write('empty.json', [])], 1, /segmentation\[0\] is a polygon with 2 points; at least 3 are needed\n$/],
      [['--gt', join(work, 'absent.json'), '--dt', write('empty.json', [])], 1, /^eval-coco: .*absent\.json: no such file\n$/],
      [['--dt', write('empty.json', [])], 2, /^eval-coco: missing option --gt/],
      [['--gt', COCO_MINI_VAL, '--dt', write('empty.json', []), '--iou', 'mask'], 2, /^eval-coco: option --iou: 'mask' is not one of: bbox, segm/],
    ];
    for (const [args, code, pattern] of cases) {
      const r = run(...args);
      expect(r.status, args.join(' ')).toBe(code);
      expect(r.stderr).toMatch(pattern);
      expect(r.stderr.trim().split('\n').length).toBe(1);
      expect(r.stdout).toBe('');
    }
  });

  it('no detections at all: AP 0 for the categories with gt', () => {
    const r = run('--gt', COCO_MINI_VAL, '--dt', write('empty.json', []));
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')[1]).toBe(' Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.000');
  });
});
