// --stage2-input images end to end: the built imagenet-lt task on a tiny list runs cRT and LWS
// (DisAlign's path is the same, checked in test/longtail/stage2.test.ts: here its 500-step floor
// would take minutes of lavapipe) on augmented training images through the frozen backbone, says so, evaluates each on
// test features of its own BatchNorm statistics, and leaves the stage-1 checkpoint as it was.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTasks, miniList, MINI } from './built-tasks.js';

let work: string;

beforeAll(async () => {
  work = await buildTasks('stage2-images-', ['imagenet-lt']);
  // 5 training and 2 test images per class of the embedded set
  mkdirSync(join(work, 'data'));
  writeFileSync(join(work, 'data/train.txt'), miniList('train.txt', 5));
  writeFileSync(join(work, 'data/test.txt'), miniList('test.txt', 2));
}, 120_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('--stage2-input images', () => {
  it('runs crt and lws on augmented images through the frozen backbone and reports each', () => {
    const out = join(work, 'run');
    const argv = [
      join(work, 'tasks/imagenet-lt.js'), '--data-root', MINI, '--train-list', join(work, 'data/train.txt'), '--test-list', join(work, 'data/test.txt'),
      '--num-classes', '10', '--model', 'resnet8', '--image-size', '16', '--epochs', '1', '--batch-size', '16', '--workers', '0',
      '--calib', 'crt,lws', '--stage2-input', 'images', '--stage2-epochs', '1', '--out', out,
    ];
    const r = spawnSync(process.execPath, argv, { cwd: work, env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' }, encoding: 'utf8' });
    const output = `${r.stdout}${r.stderr}`;
    expect(r.status, output).toBe(0);
    for (const m of ['crt', 'lws']) expect(output).toContain(`${m}: stage 2 on augmented training images through the frozen backbone (BatchNorm in training mode)`);
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    const text = JSON.stringify(metrics);
    for (const m of ['crt', 'lws']) expect(text).toContain(`"${m}"`);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.stage2Input ?? config['stage2-input']).toBe('images');
    expect(readdirSync(join(out, 'checkpoints')).length).toBeGreaterThan(0);
  }, 600_000);
});

describe('--eval-only and --stage1-checkpoint train no stage 1', () => {
  it('take a list smaller than --batch-size (only stage 1 needs a full batch)', () => {
    const out = join(work, 'run-eval');
    const argv = [
      join(work, 'tasks/imagenet-lt.js'), '--data-root', MINI, '--train-list', join(work, 'data/train.txt'), '--test-list', join(work, 'data/test.txt'),
      '--num-classes', '10', '--model', 'resnet8', '--image-size', '16', '--batch-size', '256', '--workers', '0',
      '--stage1-checkpoint', join(work, 'run'), '--eval-only', '--calib', 'none', '--out', out,
    ];
    const r = spawnSync(process.execPath, argv, { cwd: work, env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' }, encoding: 'utf8' });
    const output = `${r.stdout}${r.stderr}`;
    expect(r.status, output).toBe(0);
    expect(output).toContain('stage 1 skipped');
    // training still needs one: one clear line
    const t = spawnSync(process.execPath, [...argv.slice(0, argv.indexOf('--stage1-checkpoint')), '--epochs', '1', '--out', join(work, 'run-big-batch')], { cwd: work, env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' }, encoding: 'utf8' });
    expect(t.status).toBe(1);
    expect(`${t.stdout}${t.stderr}`).toMatch(/^error: --batch-size 256 exceeds the 50 draws of an epoch: lower it$/m);
  }, 600_000);
});

describe('TDE outside CIFAR', () => {
  it('imagenet-lt on a --data-root sets the causal head\'s momentum from each epoch\'s lr, as the official runs', () => {
    const out = join(work, 'run-tde');
    const argv = [
      join(work, 'tasks/imagenet-lt.js'), '--data-root', MINI, '--train-list', join(work, 'data/train.txt'), '--test-list', join(work, 'data/test.txt'),
      '--num-classes', '10', '--model', 'resnet8', '--image-size', '16', '--epochs', '2', '--batch-size', '16', '--workers', '0',
      '--head', 'causal', '--lr', '0.01', '--schedule', 'constant', '--calib', 'tde', '--out', out,
    ];
    const r = spawnSync(process.execPath, argv, { cwd: work, env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' }, encoding: 'utf8' });
    const output = `${r.stdout}${r.stderr}`;
    expect(r.status, output).toBe(0);
    // lr 0.01: μ = 1 − 0.1·0.5 = 0.95, in both epochs
    expect(output.match(/causal head's moving-average momentum μ = 0\.95 \(/g), output).toHaveLength(2);
  }, 600_000);
});
