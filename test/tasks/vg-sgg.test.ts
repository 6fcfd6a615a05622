// node tasks/vg-sgg.js end to end on a few embedded synthetic scenes: the detector stage, both
// relation models, PredCls / SGCls / SGDet rows in results.md and metrics.json, the detector's
// checkpoint in the run folder, and --resume restoring the detector and the models without training.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTasks } from './built-tasks.js';

let work: string;

beforeAll(async () => {
  work = await buildTasks('vg-sgg-', ['vg-sgg']);
}, 120_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('node tasks/vg-sgg.js', () => {
  it('trains the detector, evaluates PredCls, SGCls and SGDet, and resumes without retraining', () => {
    const out = join(work, 'run');
    const argv = [
      join(work, 'tasks/vg-sgg.js'), '--train-images', '8', '--test-images', '3', '--steps', '2', '--batch-size', '2', '--hidden', '8',
      '--refine-iters', '1', '--mp-steps', '1', '--detector-steps', '2', '--detector-batch-size', '2', '--detections', '4', '--out', out,
    ];
    const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };
    const r = spawnSync(process.execPath, argv, { cwd: work, env, encoding: 'utf8' });
    const output = `${r.stdout}${r.stderr}`;
    expect(r.status, output).toBe(0);
    expect(output).toMatch(/detector: step 2\/2 loss \d/);
    expect(output).toMatch(/detector: [\d.]+% of the test entities found \(right class, IoU ≥ 0\.5\) among the top 4 detections per image/);
    const results = readFileSync(join(out, 'results.md'), 'utf8');
    for (const section of ['PredCls', 'SGCls', 'SGDet']) {
      const block = results.split(`### ${section}\n`)[1].split('###')[0];
      expect(block.match(/^\| (Baseline|BGNN)/gm)).toHaveLength(2);
    }
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(metrics.detector.detectionsPerImage).toBe(4);
    expect(metrics.detector.restored).toBe(false);
    for (const m of metrics.methods) for (const mode of ['predcls', 'sgcls', 'sgdet']) expect(Object.keys(m[mode].graph.recall)).toEqual(['20', '50', '100']);
    expect(existsSync(join(out, 'checkpoints/detector.safetensors'))).toBe(true);

    const again = spawnSync(process.execPath, [...argv, '--resume'], { cwd: work, env, encoding: 'utf8' });
    const text = `${again.stdout}${again.stderr}`;
    expect(again.status, text).toBe(0);
    expect(text).toContain('detector: restored from');
    expect(text).not.toMatch(/detector: step/);
    const resumed = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(resumed.detector.restored).toBe(true);
    // the same detector and models: the same SGDet numbers
    expect(resumed.methods.map((m: { sgdet: unknown }) => m.sgdet)).toEqual(metrics.methods.map((m: { sgdet: unknown }) => m.sgdet));
  }, 900_000);
});
