// The embedded default of node tasks/lvis.js starts from the shipped stage-1 detector
// (assets/lvis/embedded-detector.safetensors): it loads strictly into the task's small model and
// detects the embedded test images (box AP50 well above chance), and a changed embedded set does not
// take it (stage 1 is trained instead), since it was trained on the default set only.
import { readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTasks, taskRunner, repo } from './built-tasks.js';

const MIN_AP50 = 0.3; // the shipped detector scores about 0.5 box AP50 on the 60 embedded test images
let work: string;
let lvis: ReturnType<typeof taskRunner>;

beforeAll(async () => {
  work = await buildTasks('lvis-shipped-', ['lvis']);
  lvis = taskRunner(work, 'lvis');
  symlinkSync(join(repo, 'assets'), join(work, 'assets'), 'dir');
}, 120_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('node tasks/lvis.js: the shipped stage-1 detector', () => {
  it('is the default starting point and detects the embedded test images', () => {
    const out = join(work, 'run');
    const r = lvis(['--test-images', '12', '--methods', 'baseline', '--ft-iters', '0', '--out', out]);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain('the shipped stage-1 detector of the embedded set');
    expect(r.output).not.toMatch(/stage1: step/);
    const [baseline] = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')).methods;
    expect(baseline.bbox.AP50).toBeGreaterThan(MIN_AP50);
    expect(baseline.segm.AP50).toBeGreaterThan(MIN_AP50 / 2);
  }, 600_000);

  it('is not used for another embedded set: stage 1 trains', () => {
    const r = lvis(['--train-images', '12', '--test-images', '10', '--iters', '1', '--batch-size', '2', '--min-size', '64', '--max-size', '64', '--methods', 'baseline', '--ft-iters', '0', '--out', join(work, 'other')]);
    expect(r.status, r.output).toBe(0);
    expect(r.output).not.toContain('the shipped stage-1 detector');
    expect(r.output).toMatch(/stage1: step 1\/1/);
  }, 600_000);
});
