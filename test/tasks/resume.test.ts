import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hasWebGPU, tensor, type Backend } from '../../index.node.js';
import { RunLog } from '../../tasks/lib/log.js';
import {
  checkResume,
  configMismatches,
  featureCachePath,
  listCheckpoints,
  loadFeatureCache,
  loadLatestCheckpoint,
  resumeHint,
  saveEpochCheckpoint,
  saveFeatureCache,
} from '../../tasks/lib/resume.js';
import { keysFreeOnResume, opt, parseOptions, type ConfigOf } from '../../tasks/lib/cli.js';
import { openRun, runOptions } from '../../tasks/lib/run.js';
import { randomArray } from '../helpers.js';

const root = mkdtempSync(join(tmpdir(), 'resume-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const device = (): Backend => (hasWebGPU() ? 'webgpu' : 'cpu');
const config = { arch: 'resnet32', lr: 0.1, epochs: 200, workers: 4, out: 'x' };

describe('epoch checkpoints', () => {
  it('keeps the newest K, and the latest restores epoch, step, meta, weights and optimizer state', async () => {
    const dir = join(root, 'keep');
    const weights = randomArray(6);
    for (let epoch = 0; epoch < 5; epoch++) {
      const model = { 'fc.weight': tensor(weights.map((w) => w + epoch), [2, 3], { device: device() }), 'fc.bias': tensor([epoch, -epoch], [2], { device: device() }) };
      const optimizer = {
        tensors: new Map([['state.fc.weight.momentum', tensor([epoch], [1], { device: device() })]]),
        scalars: { type: 'SGD', paramGroups: [{ params: ['fc.weight', 'fc.bias'], lr: 0.1 / (epoch + 1) }], steps: {} },
      };
      await saveEpochCheckpoint(dir, { epoch, step: (epoch + 1) * 10, model, optimizer, meta: { best: epoch / 10 } }, { keep: 3 });
    }
    expect((await listCheckpoints(dir)).map((c) => c.epoch)).toEqual([2, 3, 4]);
    expect(readdirSync(join(dir, 'checkpoints'))).toEqual(['epoch-0002.safetensors', 'epoch-0003.safetensors', 'epoch-0004.safetensors']);

    const state = await loadLatestCheckpoint(dir, device());
    expect(state).not.toBeNull();
    expect(state!.epoch).toBe(4);
    expect(state!.step).toBe(50);
    expect(state!.meta).toEqual({ best: 0.4 });
    expect(state!.path).toBe(join(dir, 'checkpoints', 'epoch-0004.safetensors'));
    expect(Array.from(await state!.model.get('fc.weight')!.data())).toEqual(Array.from(weights, (w) => Math.fround(w + 4)));
    expect(Array.from(await state!.model.get('fc.bias')!.data())).toEqual([4, -4]);
    expect(state!.optimizer!.scalars.paramGroups[0]).toEqual({ params: ['fc.weight', 'fc.bias'], lr: 0.02 });
    expect(Array.from(await state!.optimizer!.tensors.get('state.fc.weight.momentum')!.data())).toEqual([4]);
    expect(await resumeHint(dir)).toBe(`last good checkpoint: ${state!.path} (epoch 4); continue with --out ${dir} --resume`);
  });

  it('ignores temporary files of an interrupted write, reports an empty run, and checks its arguments', async () => {
    const dir = join(root, 'partial');
    mkdirSync(join(dir, 'checkpoints'), { recursive: true });
    writeFileSync(join(dir, 'checkpoints', '.epoch-0009.safetensors.a1b2c3.tmp'), 'half a file');
    expect(await listCheckpoints(dir)).toEqual([]);
    expect(await loadLatestCheckpoint(dir)).toBeNull();
    expect(await listCheckpoints(join(root, 'absent'))).toEqual([]);
    expect(await resumeHint(dir)).toBe(`no checkpoint was written in ${dir} yet`);
    const model = { w: tensor([1], [1]) };
    await expect(saveEpochCheckpoint(dir, { epoch: -1, step: 0, model })).rejects.toThrow('epoch must be a non-negative integer');
    await expect(saveEpochCheckpoint(dir, { epoch: 1, step: 0, model }, { keep: 0 })).rejects.toThrow('keep must be at least 1');
  });

  it('names a broken latest checkpoint and the older ones to fall back to', async () => {
    const dir = join(root, 'broken');
    await saveEpochCheckpoint(dir, { epoch: 1, step: 5, model: { w: tensor([1, 2], [2]) } });
    writeFileSync(join(dir, 'checkpoints', 'epoch-0002.safetensors'), new Uint8Array([1, 2, 3]));
    const err = await loadLatestCheckpoint(dir).then(() => null, (e: Error) => e.message);
    expect(err).toContain(`cannot read the latest checkpoint ${join(dir, 'checkpoints', 'epoch-0002.safetensors')}`);
    expect(err).toContain('fewer than the 8-byte header length');
    expect(err).toContain(`older checkpoints: ${join(dir, 'checkpoints', 'epoch-0001.safetensors')}`);
  });
});

describe('resume discovery', () => {
  it('lists what is found and missing, and the config keys that differ', async () => {
    const missing = await checkResume(join(root, 'nowhere'), config);
    expect(missing).toMatchObject({ ok: false, found: [], missing: ['run folder'] });
    expect(missing.message).toBe(`cannot resume ${join(root, 'nowhere')}: the run folder ${join(root, 'nowhere')} does not exist`);

    const noConfig = join(root, 'no-config');
    mkdirSync(noConfig);
    const r1 = await checkResume(noConfig, config);
    expect(r1.ok).toBe(false);
    expect(r1.missing).toEqual(['config.json', 'checkpoints/epoch-XXXX.safetensors (training restarts at epoch 0)']);
    expect(r1.message).toContain("config.json is missing, so the run's settings are unknown");

    const dir = join(root, 'discover');
    const run = await openRun({ task: 'toy', config, out: dir, log: new RunLog({ console: null }) });
    await run.saveCheckpoint({ epoch: 7, step: 70, model: { w: tensor([1], [1]) } });
    await run.saveCheckpoint({ epoch: 8, step: 80, model: { w: tensor([2], [1]) } });
    run.close();
    const ok = await checkResume(dir, { ...config, workers: 16, out: dir }, { ignore: ['workers', 'out'] });
    expect(ok).toMatchObject({ ok: true, found: ['run folder', 'config.json', 'checkpoint epoch-0008.safetensors (2 kept)'], missing: [], mismatches: [] });
    expect(ok.latest?.epoch).toBe(8);
    expect(ok.message).toBe(`resuming ${dir}: from epoch 8 (${join(dir, 'checkpoints', 'epoch-0008.safetensors')})`);

    const bad = await checkResume(dir, { ...config, lr: 0.05, arch: undefined, seed: 3 }, { ignore: ['out'] });
    expect(bad.ok).toBe(false);
    expect(bad.mismatches).toEqual([
      { key: 'arch', saved: 'resnet32', current: undefined },
      { key: 'lr', saved: 0.1, current: 0.05 },
      { key: 'seed', saved: undefined, current: 3 },
    ]);
    expect(bad.message).toBe(`cannot resume ${dir}: the command line differs from config.json on arch (saved "resnet32", now (absent)), lr (saved 0.1, now 0.05), ` +
      'seed (saved (absent), now 3); resume with the saved values, or start a new run in another folder');

    writeFileSync(join(dir, 'config.json'), '{"lr": 0.1,');
    const corrupt = await checkResume(dir, config);
    expect(corrupt.ok).toBe(false);
    expect(corrupt.message).toContain(`${join(dir, 'config.json')} cannot be read`);
  });

  it('compares nested values by content', () => {
    expect(configMismatches({ a: [1, 2], b: { c: 1 } }, { a: [1, 2], b: { c: 2 } })).toEqual([{ key: 'b', saved: { c: 1 }, current: { c: 2 } }]);
    expect(configMismatches({ a: 1 }, { a: 2 }, ['a'])).toEqual([]);
  });
});

describe('feature cache', () => {
  it('round-trips features [N, D], labels and meta bit for bit', async () => {
    const dir = join(root, 'features');
    const [N, D] = [37, 9];
    const features = randomArray(N * D, -5, 5);
    features[3] = NaN;
    features[4] = -0;
    const labels = Int32Array.from({ length: N }, (_, i) => (i * 7) % 11);
    expect(await loadFeatureCache(dir, 'train')).toBeNull();
    const path = await saveFeatureCache(dir, 'train', { features, labels, dim: D, meta: { checkpoint: 'epoch-0090', split: 'train' } });
    expect(path).toBe(featureCachePath(dir, 'train'));
    expect(path).toBe(join(dir, 'features', 'train.safetensors'));
    const back = await loadFeatureCache(dir, 'train');
    expect(back).not.toBeNull();
    expect(back!.count).toBe(N);
    expect(back!.dim).toBe(D);
    const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
    expect(back!.features).toHaveLength(N * D);
    expect(bits(back!.features)).toEqual(bits(features));
    expect(back!.labels).toEqual(labels);
    expect(back!.meta).toEqual({ checkpoint: 'epoch-0090', split: 'train' });
    expect(readdirSync(join(dir, 'features'))).toEqual(['train.safetensors']);
  });

  it('rejects bad shapes, labels and names, and says which file is not a feature cache', async () => {
    const dir = join(root, 'features-bad');
    await expect(saveFeatureCache(dir, 'x', { features: new Float32Array(10), labels: [0, 1], dim: 3 })).rejects.toThrow('10 values do not split into rows of dim 3');
    await expect(saveFeatureCache(dir, 'x', { features: new Float32Array(6), labels: [0], dim: 3 })).rejects.toThrow('1 labels for 2 feature rows');
    await expect(saveFeatureCache(dir, 'x', { features: new Float32Array(6), labels: [0, 1.5], dim: 3 })).rejects.toThrow('label 1.5 at row 1');
    expect(() => featureCachePath(dir, '../escape')).toThrow("feature cache name '../escape'");
    mkdirSync(join(dir, 'features'), { recursive: true });
    writeFileSync(join(dir, 'features', 'junk.safetensors'), 'not safetensors at all');
    await expect(loadFeatureCache(dir, 'junk')).rejects.toThrow(`feature cache ${join(dir, 'features', 'junk.safetensors')}:`);
  });
});

describe('resume from the command line', () => {
  const options = { epochs: opt.integer({ help: 'Epochs.', default: 4, min: 1 }), lr: opt.number({ help: 'LR.', default: 0.1 }), ...runOptions };
  const spec = { name: 'toy', title: 'toy', options };
  const parse = (argv: string[]): ConfigOf<typeof options> => {
    const outcome = parseOptions(spec, argv);
    if (outcome.kind !== 'config') throw new Error('expected a config');
    return outcome.config;
  };
  const open = (config: ConfigOf<typeof options>) =>
    openRun({ task: 'toy', config, out: config.out, resume: config.resume, ignoreOnResume: keysFreeOnResume(options), keepCheckpoints: config.keepCheckpoints, log: new RunLog({ console: null }) });

  it('continues after the last saved epoch with the optimizer step, and refuses a changed learning rate', async () => {
    const out = join(root, 'cli-run');
    const first = await open(parse(['--out', out, '--keep-checkpoints', '2']));
    for (let epoch = 0; epoch < 3; epoch++) await first.saveCheckpoint({ epoch, step: 25 * (epoch + 1), model: { w: tensor([epoch], [1]) }, meta: { best: 0.1 * epoch } });
    first.close();
    expect((await listCheckpoints(out)).map((c) => c.epoch)).toEqual([1, 2]);

    const resumed = await open(parse(['--out', out, '--resume', '--keep-checkpoints', '5']));
    const state = await resumed.loadLatestCheckpoint();
    resumed.close();
    expect(resumed.dir).toBe(out);
    expect({ epoch: state!.epoch, step: state!.step, meta: state!.meta }).toEqual({ epoch: 2, step: 75, meta: { best: 0.2 } });

    await expect(open(parse(['--out', out, '--resume', '--lr', '0.2']))).rejects.toThrow('differs from config.json on lr (saved 0.1, now 0.2)');
  });
});
