// node tasks/lvis.js end to end on a tiny embedded set: the run folder (config, log, metrics with box
// and mask AP_r / AP_c / AP_f per method, results, the predictions picture, checkpoints, the stage-1
// detector), --resume (finished rows restored, a missing one re-evaluated from its phase's
// checkpoint) and one clear line for bad input.
import { existsSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTasks, taskRunner } from './built-tasks.js';

let work: string;
let lvis: ReturnType<typeof taskRunner>;

beforeAll(async () => {
  work = await buildTasks('lvis-', ['lvis']);
  lvis = taskRunner(work, 'lvis');
}, 120_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('node tasks/lvis.js', () => {
  it('writes the run folder with box and mask LVIS metrics per method, and resumes', () => {
    const out = join(work, 'run');
    const args = ['--train-images', '12', '--test-images', '10', '--iters', '2', '--ft-iters', '1', '--disalign-iters', '1', '--simcal-iters', '1', '--batch-size', '2',
      '--min-size', '64', '--max-size', '64', '--methods', 'baseline,simcal,disalign', '--out', out];
    const r = lvis(args);
    expect(r.status, r.output).toBe(0);
    for (const f of ['config.json', 'log.txt', 'metrics.json', 'results.md', 'predictions.svg', 'stage1.safetensors', 'method-baseline.json', 'method-disalign.json', 'method-simcal.json']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(existsSync(join(out, 'checkpoints'))).toBe(true);
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(metrics.methods.map((m: { key: string }) => m.key)).toEqual(['baseline', 'simcal', 'disalign']);
    for (const m of metrics.methods) for (const kind of ['bbox', 'segm']) for (const k of ['AP', 'AP50', 'APr', 'APc', 'APf']) expect(k in m[kind], `${m.key} ${kind} ${k}`).toBe(true);
    expect(r.output).toMatch(/stage1: step 2\/2 .*loss_objectness .*loss_classifier .*loss_mask/);
    expect(r.output).toMatch(/simcal: step 1\/1 .*loss_simcal/);
    expect(readFileSync(join(out, 'predictions.svg'), 'utf8')).toContain('data:image/png;base64,');

    // resume: the finished baseline and simcal rows are restored, the disalign row (the last phase) recomputed on the saved stage-1 detector
    unlinkSync(join(out, 'method-disalign.json'));
    const again = lvis([...args, '--resume']);
    expect(again.status, again.output).toBe(0);
    expect(again.output).toContain('stage1: restored from');
    expect(again.output).toContain('baseline: results restored from');
    // its phase had finished (checkpoint at step 1 of 1): restored from there, then evaluated again
    expect(again.output).toContain('disalign: resumed at step 1/1 from');
    expect(existsSync(join(out, 'method-disalign.json'))).toBe(true);
  }, 600_000);

  it('bad input: one clear line, exit 1', () => {
    const r = lvis(['--coco-json', join(work, 'missing.json'), '--image-root', work, '--eval-on-train', '--out', join(work, 'bad')]);
    expect(r.status).toBe(1);
    expect(r.output).toMatch(/--coco-json .*missing\.json: no such file or folder/);
    const m = lvis(['--methods', 'baseline,nope', '--out', join(work, 'bad2')]);
    expect(m.status).toBe(1);
    expect(m.output).toMatch(/unknown long-tail method "nope"/);
  }, 120_000);
});
