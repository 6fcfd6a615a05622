// node tasks/ade20k.js — semantic segmentation with a long tail: a dilated-ResNet DeepLabV3+ / FCN /
// DeepLabV3 (torchvision names) trained with per-pixel cross-entropy (+ 0.4 × the aux FCN head on
// layer3) and a poly learning rate, then calibrated on the frozen model: DisAlign per pixel (the
// official segmentation head: 1×1 confidence conv, per-class α, β, G-RW cross-entropy, ρ = 0.2) and
// the post-hoc baselines logit adjustment and τ-norm. Reports aAcc, mIoU, mAcc and head/body/tail
// mIoU / mAcc (DisAlign's ADE20K split; on the embedded set the same proportions of its
// frequency-sorted classes) and draws image / ground truth / predictions for a few test images.
//
// Without --data-root it runs on the embedded long-tailed set (segmentation/synthetic.ts, generated
// in memory on first use; scripts/make-seg-synthetic.ts writes it to disk). --data-root selects the
// real ADE20K (ADEChallengeData2016: images/{training,validation}, annotations/…) with the seed's
// defaults: ResNet-50 at output stride 8, 512×512 crops, 160k iterations, batch 16, lr 0.01 poly.

import { mkdir, writeFile } from 'node:fs/promises';
import { parseCli, opt, keysFreeOnResume } from './lib/cli.js';
import { openRun, runOptions, formatJson, type Run } from './lib/run.js';
import '../node-dawn.js';
import { backend, init } from '../kernels/device.js';
import { tensor } from '../kernels/creation.js';
import { scope, type Tensor } from '../kernels/tensor.js';
import { manualSeed } from '../kernels/random.js';
import { conv2d } from '../autograd/conv-ops.js';
import { upsampleBilinear } from '../autograd/nn-ops.js';
import { noGrad } from '../autograd/tape.js';
import { SGD } from '../nn/optim.js';
import { DataRng } from '../data/rng.js';
import { IMAGENET_MEAN, IMAGENET_STD, normalizeInto } from '../data/augment.js';
import { augmentSegTrain, colorize, encodeColorPng, encodeLabelPng, encodeRgbPng, rescaleSize, resizeSegSample, type SegSample } from '../data/ade20k.js';
import { ADE20K_CLASSES, ADE20K_PALETTE } from '../data/ade20k-classes.js';
import { listAde20k, readSegSample, type SegPair } from '../data/node-ade20k.js';
import { segmentationModel, type SegArch, type SegmentationModel } from '../segmentation/models.js';
import { grwPixelWeights, pixelCounts as countPixels, segmentationLoss } from '../segmentation/losses.js';
import { SegDisAlign, logitAdjustPixels, tauNormWeights } from '../segmentation/disalign.js';
import { ConfusionMatrix, ade20kSplits, argmaxChannels, frequencySplits, segmentationMetrics, segResultsMarkdown, type SegMetrics, type SegSplit } from '../segmentation/metrics.js';
import { syntheticClasses, syntheticSample } from '../segmentation/synthetic.js';

const options = {
  dataRoot: opt.string({ section: 'Data', metavar: 'DIR', help: 'ADEChallengeData2016 root (images/{training,validation}, annotations/...). Without it: the embedded long-tailed synthetic set.', resumeCheck: false }),
  trainImages: opt.integer({ section: 'Data', min: 1, help: 'Embedded set: training scenes (default 480).' }),
  testImages: opt.integer({ section: 'Data', min: 1, help: 'Embedded set: test scenes (default 120); ADE20K: validation images to evaluate (default all).' }),
  imageSize: opt.integer({ section: 'Data', min: 16, help: 'Crop size (default 512 on ADE20K, 48 on the embedded set).' }),
  arch: opt.enum(['deeplabv3plus', 'deeplabv3', 'fcn'], { section: 'Model', default: 'deeplabv3plus', help: 'Head on the dilated ResNet.' }),
  depth: opt.enum(['14', '26', '50', '101'], { section: 'Model', help: 'Bottleneck ResNet depth (default 50 on ADE20K; 14 = one block a stage on the embedded set).' }),
  width: opt.integer({ section: 'Model', min: 1, help: 'ResNet base width (default 64; 4 on the embedded set).' }),
  headChannels: opt.integer({ section: 'Model', min: 1, help: 'ASPP / decoder width (default 256; 16 on the embedded set).' }),
  outputStride: opt.enum(['8', '16'], { section: 'Model', default: '8', help: 'Dilated output stride (ASPP rates 12/24/36 at 8, 6/12/18 at 16 unless --rates).' }),
  rates: opt.string({ section: 'Model', metavar: 'R,R,R', help: 'ASPP atrous rates (default by output stride; 2,4,6 on the embedded set, whose feature maps are 6×6).' }),
  iterations: opt.integer({ section: 'Stage 1', min: 1, help: 'Stage-1 iterations (default 160000; 300 on the embedded set).' }),
  batchSize: opt.integer({ section: 'Stage 1', min: 1, help: 'Batch size (default 16; 4 on the embedded set).' }),
  lr: opt.number({ section: 'Optimisation', greaterThan: 0, help: 'Base learning rate, poly decay (power 0.9, min 1e-4) (default 0.01; 0.05 on the embedded set).' }),
  momentum: opt.number({ section: 'Optimisation', default: 0.9, min: 0, help: 'SGD momentum.' }),
  weightDecay: opt.number({ section: 'Optimisation', default: 5e-4, min: 0, help: 'SGD weight decay.' }),
  auxWeight: opt.number({ section: 'Optimisation', default: 0.4, min: 0, help: 'Weight of the auxiliary FCN head on layer3 (0: no aux head).' }),
  disalignIterations: opt.integer({ section: 'Stage 2', min: 0, help: 'DisAlign iterations on the frozen model (default 4000 as the official ADE20K config; 150 on the embedded set). 0 skips DisAlign.' }),
  disalignLr: opt.number({ section: 'Stage 2', greaterThan: 0, help: 'DisAlign learning rate, poly (default 0.01; 0.05 on the embedded set, 150 iterations).' }),
  rho: opt.number({ section: 'Stage 2', default: 0.2, min: 0, help: 'G-RW exponent ρ: class weights r_c^−ρ from training pixel shares (DisAlign ADE20K config: 0.2).' }),
  tau: opt.number({ section: 'Stage 2', default: 1, min: 0, help: 'τ of the post-hoc logit adjustment and τ-norm baselines.' }),
  checkpointEvery: opt.integer({ section: 'Run', min: 1, help: 'Stage-1 iterations between checkpoints (default 2000; 100 on the embedded set).', resumeCheck: false }),
  pictures: opt.integer({ section: 'Run', default: 4, min: 0, help: 'Test images drawn in predictions.png (image / ground truth / baseline / DisAlign).', resumeCheck: false }),
  seed: opt.integer({ section: 'Run', default: 0, min: 0, help: 'Seed of the model, the data order and the embedded set.' }),
  ...runOptions,
};

const spec = {
  name: 'ade20k',
  title: 'Long-tailed semantic segmentation: dilated ResNet DeepLabV3+/FCN, DisAlign per pixel, head/body/tail mIoU',
  options,
  examples: [
    'node tasks/ade20k.js',
    'node tasks/ade20k.js --data-root data/ADEChallengeData2016',
    'node tasks/ade20k.js --data-root data/ADEChallengeData2016 --arch fcn --iterations 80000',
  ],
};

const config = parseCli(spec);
const real = config.dataRoot !== undefined;
const S = config.imageSize ?? (real ? 512 : 48);
const c = {
  trainImages: config.trainImages ?? 480,
  testImages: config.testImages,
  depth: Number(config.depth ?? (real ? 50 : 14)) as 14 | 26 | 50 | 101,
  width: config.width ?? (real ? 64 : 4),
  headChannels: config.headChannels ?? (real ? 256 : 16),
  rates: config.rates ? config.rates.split(',').map(Number) : real ? undefined : [2, 4, 6],
  iterations: config.iterations ?? (real ? 160_000 : 300),
  batchSize: config.batchSize ?? (real ? 16 : 4),
  lr: config.lr ?? (real ? 0.01 : 0.05),
  disalignIterations: config.disalignIterations ?? (real ? 4000 : 150),
  disalignLr: config.disalignLr ?? (real ? 0.01 : 0.05),
  checkpointEvery: config.checkpointEvery ?? (real ? 2000 : 100),
};

/** mmcv's PolyLrUpdaterHook: (base − min)·(1 − it/max)^0.9 + min. */
const polyLr = (base: number, it: number, max: number, minLr = 1e-4): number => (base - minLr) * (1 - it / max) ** 0.9 + Math.min(minLr, base);

interface DataSource {
  numClasses: number;
  classNames: readonly string[];
  palette: readonly (readonly number[])[];
  splits: SegSplit[];
  trainPixelShare: Float64Array;
  trainCount: number;
  train(i: number): Promise<SegSample>;
  testCount: number;
  test(i: number): Promise<SegSample>;
  testName(i: number): string;
  /** ADE20K's submission format writes class c as c + 1 */
  addOne: boolean;
}

async function embeddedSource(run: Run): Promise<DataSource> {
  const classes = syntheticClasses();
  const make = (seed: number, i: number): SegSample => {
    const s = syntheticSample(seed, i, { size: S });
    return { image: { width: S, height: S, data: s.image }, label: { width: S, height: S, data: s.label } };
  };
  const trainSet = Array.from({ length: c.trainImages }, (_, i) => make(2 * config.seed + 1, i));
  const nTest = c.testImages ?? 120;
  const testSet = Array.from({ length: nTest }, (_, i) => make(2 * config.seed + 2, i));
  const counts = countPixels(trainSet.map((s) => s.label.data), classes.length);
  const total = counts.reduce((a, b) => a + b, 0);
  // head = the 4 most frequent classes (the stuff), body the next 4, tail the 8 rarest
  const splits = frequencySplits(counts, 0.25, 0.5);
  run.info(`embedded long-tailed set: ${c.trainImages} train / ${nTest} test scenes of ${S}×${S}, ${classes.length} classes (4 stuff, ${classes.length - 4} things)`);
  run.info(`train pixel share: ${classes.map((k, i) => `${k.name} ${(100 * counts[i] / total).toFixed(2)}% [${splits[i]}]`).join(', ')}`);
  return {
    numClasses: classes.length,
    classNames: classes.map((k) => k.name),
    palette: classes.map((k) => k.colour),
    splits,
    trainPixelShare: counts.map((n) => Math.max(n, 1) / total),
    trainCount: trainSet.length,
    train: async (i) => trainSet[i],
    testCount: nTest,
    test: async (i) => testSet[i],
    testName: (i) => `scene_${String(i).padStart(4, '0')}`,
    addOne: false,
  };
}

async function ade20kSource(root: string, run: Run): Promise<DataSource> {
  const train = await listAde20k(root, 'training');
  let val: SegPair[] = await listAde20k(root, 'validation');
  if (c.testImages) val = val.slice(0, c.testImages);
  const { ADE20K_PIXEL_RATIO } = await import('../data/ade20k-classes.js');
  run.info(`ADE20K: ${train.length} training and ${val.length} validation images in ${root}`);
  return {
    numClasses: 150,
    classNames: ADE20K_CLASSES,
    palette: ADE20K_PALETTE,
    splits: ade20kSplits(),
    // objectInfo150's Ratio, as DisAlign's G-RW loss reads it
    trainPixelShare: Float64Array.from(ADE20K_PIXEL_RATIO),
    trainCount: train.length,
    train: (i) => readSegSample(train[i]),
    testCount: val.length,
    test: (i) => readSegSample(val[i]),
    testName: (i) => val[i].name,
    addOne: true,
  };
}

/** [B, 3, h, w] normalised images and the labels of a batch of equal-size samples. */
function batchTensor(samples: SegSample[]): { x: Tensor; labels: Uint8Array } {
  const { width: w, height: h } = samples[0].image;
  const xs = new Float32Array(samples.length * 3 * h * w), labels = new Uint8Array(samples.length * h * w);
  samples.forEach((s, b) => {
    normalizeInto(s.image, IMAGENET_MEAN, IMAGENET_STD, xs, b * 3 * h * w);
    labels.set(s.label.data, b * h * w);
  });
  return { x: tensor(xs, [samples.length, 3, h, w]), labels };
}

async function trainBatch(data: DataSource, it: number, stage: number): Promise<{ x: Tensor; labels: Uint8Array }> {
  const rng = new DataRng(config.seed, stage, it);
  const samples: SegSample[] = [];
  for (let b = 0; b < c.batchSize; b++) {
    const s = await data.train(rng.below(data.trainCount));
    // mmseg's ADE20K pipeline: img_scale (2048, 512) for 512 crops, i.e. (4S, S)
    samples.push(augmentSegTrain(s, rng, { baseScale: [4 * S, S], cropSize: [S, S] }));
  }
  return batchTensor(samples);
}

type Predictor = (x: Tensor) => Record<string, Tensor>;

/** Evaluates every method of `predict` over the test set (whole-image; ADE20K images resized to the test scale). */
async function evaluate(data: DataSource, predict: Predictor, keepPredictions: number): Promise<{ metrics: Record<string, SegMetrics>; kept: { sample: SegSample; preds: Record<string, Int32Array> }[] }> {
  const cms: Record<string, ConfusionMatrix> = {};
  const kept: { sample: SegSample; preds: Record<string, Int32Array> }[] = [];
  const bs = real ? 1 : c.batchSize;
  for (let i0 = 0; i0 < data.testCount; i0 += bs) {
    const samples: SegSample[] = [];
    for (let i = i0; i < Math.min(i0 + bs, data.testCount); i++) samples.push(await data.test(i));
    const gts = samples.map((s) => s.label);
    // ADE20K: the test pipeline resizes to (2048, 512) keep-ratio; logits go back to the original size
    const inputs = real ? samples.map((s) => resizeSegSample(s, ...rescaleSize(s.image.height, s.image.width, [4 * S, S]))) : samples;
    const { x } = batchTensor(inputs);
    const outs = noGrad(() => scope(() => {
      const o = predict(x);
      if (!real) return o;
      const size: [number, number] = [gts[0].height, gts[0].width];
      return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, upsampleBilinear(v, { size, alignCorners: false })]));
    }));
    x.dispose();
    for (const [method, logits] of Object.entries(outs)) {
      const [n, C, h, w] = logits.shape;
      const pred = argmaxChannels(await logits.data(), [n, C, h, w]);
      logits.dispose();
      cms[method] ??= new ConfusionMatrix(data.numClasses);
      for (let b = 0; b < n; b++) {
        const p = pred.subarray(b * h * w, (b + 1) * h * w);
        cms[method].update(p, gts[b].data, data.testName(i0 + b));
        if (i0 + b < keepPredictions) {
          kept[i0 + b] ??= { sample: samples[b], preds: {} };
          kept[i0 + b].preds[method] = Int32Array.from(p);
        }
      }
    }
  }
  return { metrics: Object.fromEntries(Object.entries(cms).map(([k, cm]) => [k, segmentationMetrics(cm, data.splits)])), kept };
}

function buildModel(numClasses: number): SegmentationModel {
  return segmentationModel(config.arch as SegArch, {
    numClasses,
    auxLoss: config.auxWeight > 0,
    depth: c.depth,
    outputStride: Number(config.outputStride) as 8 | 16,
    atrousRates: c.rates,
    headChannels: c.headChannels,
    resnet: { baseChannels: c.width },
  });
}

async function main(run: Run): Promise<void> {
  await init({ requireWebGPU: process.env.REQUIRE_WEBGPU === '1' });
  const data = real ? await ade20kSource(config.dataRoot!, run) : await embeddedSource(run);
  manualSeed(config.seed);
  const model = buildModel(data.numClasses);
  run.info(`model: ${config.arch} on a dilated Bottleneck ResNet-${c.depth} (width ${c.width}, output stride ${config.outputStride}), ${model.numParameters()} parameters; backend ${backend()}`);
  const optimizer = new SGD(model.parameters(), { lr: c.lr, momentum: config.momentum, weightDecay: config.weightDecay });
  const da = new SegDisAlign(model);
  let startIt = 0, startDa = 0, ckpt = 0;
  const saved = run.resumed ? await run.loadLatestCheckpoint() : null;
  if (saved) {
    const stage = saved.meta.stage as number;
    if (stage === 1) {
      model.loadStateDict(saved.model);
      if (saved.optimizer) optimizer.loadStateDict(saved.optimizer);
      startIt = saved.step;
    } else {
      da.loadStateDict(saved.model);
      startIt = c.iterations;
      startDa = saved.step;
    }
    ckpt = saved.epoch + 1;
    run.info(`resumed from ${saved.path}: stage ${stage}, iteration ${saved.step}`);
  }
  const t0 = performance.now();
  // ---------------------------------------------------------------- stage 1
  if (startIt < c.iterations) {
    model.train();
    const progress = run.progress({ total: c.iterations, label: 'stage 1' });
    for (let it = startIt; it < c.iterations; it++) {
      optimizer.setLr(polyLr(c.lr, it, c.iterations));
      // dropout masks are a function of (seed, iteration), so a resumed run draws the same ones
      manualSeed(config.seed * 1_000_003 + it);
      const { x, labels } = await trainBatch(data, it, 1);
      optimizer.zeroGrad();
      const loss = scope(() => {
        const l = segmentationLoss(model.forward(x), labels, { auxWeight: config.auxWeight });
        l.backward();
        return l;
      });
      optimizer.step();
      x.dispose();
      if (it % 20 === 0 || it === c.iterations - 1) {
        const v = await loss.item();
        if (!Number.isFinite(v)) throw new Error(`stage 1: the loss is ${v} at iteration ${it}`);
        progress.update(it + 1, { loss: v });
        run.info(`stage 1 it ${it + 1}/${c.iterations} loss ${v.toFixed(4)} lr ${polyLr(c.lr, it, c.iterations).toExponential(2)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
      }
      loss.dispose();
      if ((it + 1) % c.checkpointEvery === 0 || it === c.iterations - 1) {
        await run.saveCheckpoint({ epoch: ckpt++, step: it + 1, model: model.stateDict(), optimizer: optimizer.stateDict(), meta: { stage: 1 } });
      }
    }
    progress.stop();
  }
  const tStage1 = performance.now();
  // ---------------------------------------------------------------- evaluation of the baseline and the post-hoc calibrations
  model.eval();
  const conv = model.classifier.finalConv;
  const tauW = await tauNormWeights(conv.weight, config.tau);
  const priors = data.trainPixelShare;
  const baseline: Predictor = (x) => {
    const size: [number, number] = [x.shape[2], x.shape[3]];
    const { features, logits } = model.classifier.forwardWithFeatures(model.backbone.forward(x));
    const up = (t: Tensor): Tensor => upsampleBilinear(t, { size, alignCorners: false });
    const z = up(logits);
    return {
      baseline: z,
      // bilinear upsampling commutes with a per-class constant, so adjusting before or after is the same
      [`logit adjustment (τ=${config.tau})`]: logitAdjustPixels(z, priors, config.tau),
      [`τ-norm (τ=${config.tau})`]: up(conv2d(features, tauW, conv.bias, {})),
    };
  };
  const evalBase = await evaluate(data, baseline, config.pictures);
  const tEval = performance.now();
  // ---------------------------------------------------------------- stage 2: DisAlign on the frozen model
  let evalDa: Awaited<ReturnType<typeof evaluate>> | null = null;
  if (c.disalignIterations > 0) {
    const grw = grwPixelWeights(priors, config.rho);
    run.info(`DisAlign: G-RW weights (ρ = ${config.rho}) from ${real ? "objectInfo150's pixel ratios" : 'the training pixel shares'}: ${Array.from(grw, (w) => w.toFixed(2)).join(' ')}`);
    const opt2 = new SGD(da.trainableParameters(), { lr: c.disalignLr, momentum: config.momentum, weightDecay: 0 });
    da.train();
    for (let it = startDa; it < c.disalignIterations; it++) {
      opt2.setLr(polyLr(c.disalignLr, it, c.disalignIterations));
      const { x, labels } = await trainBatch(data, it, 2);
      opt2.zeroGrad();
      const loss = scope(() => {
        const l = segmentationLoss(da.forward(x), labels, { classWeights: grw, auxWeight: 0 });
        l.backward();
        return l;
      });
      opt2.step();
      x.dispose();
      if (it % 20 === 0 || it === c.disalignIterations - 1) {
        const v = await loss.item();
        if (!Number.isFinite(v)) throw new Error(`DisAlign: the loss is ${v} at iteration ${it}`);
        run.info(`DisAlign it ${it + 1}/${c.disalignIterations} loss ${v.toFixed(4)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
      }
      loss.dispose();
    }
    await run.saveCheckpoint({ epoch: ckpt++, step: c.disalignIterations, model: da.stateDict(), meta: { stage: 2 } });
    da.eval();
    evalDa = await evaluate(data, (x) => ({ DisAlign: da.forward(x).out }), config.pictures);
  }
  const tEnd = performance.now();
  // ---------------------------------------------------------------- results
  const all = { ...evalBase.metrics, ...(evalDa?.metrics ?? {}) };
  const rows = Object.entries(all).map(([method, m]) => ({ method, m }));
  const table = segResultsMarkdown(rows);
  const timing = { stage1_s: (tStage1 - t0) / 1000, eval_s: (tEval - tStage1) / 1000, stage2_and_eval_s: (tEnd - tEval) / 1000, total_s: (tEnd - t0) / 1000 };
  await run.writeJson('metrics.json', {
    task: 'ade20k',
    dataset: real ? 'ADE20K' : 'embedded synthetic long-tailed set',
    split: Object.fromEntries((['head', 'body', 'tail'] as const).map((s) => [s, data.classNames.filter((_, i) => data.splits[i] === s)])),
    methods: Object.fromEntries(Object.entries(all).map(([k, m]) => [k, {
      aAcc: m.aAcc, mIoU: m.mIoU, mAcc: m.mAcc, head: m.head, body: m.body, tail: m.tail,
      perClass: Object.fromEntries(data.classNames.map((n, i) => [n, { IoU: m.iou[i], Acc: m.acc[i], split: data.splits[i] }])),
    }])),
    timing,
  });
  const perClass = ['| Class | split | ' + Object.keys(all).map((k) => `IoU ${k}`).join(' | ') + ' |', '|---|---|' + Object.keys(all).map(() => '---').join('|') + '|',
    ...data.classNames.map((n, i) => `| ${n} | ${data.splits[i]} | ${Object.values(all).map((m) => (Number.isFinite(m.iou[i]) ? (100 * m.iou[i]).toFixed(2) : '-')).join(' | ')} |`)];
  await run.writeText('results.md', `# ade20k: ${real ? 'ADE20K' : 'embedded long-tailed set'}\n\n${table}\n\nTimes: stage 1 ${timing.stage1_s.toFixed(0)} s, baseline evaluation ${timing.eval_s.toFixed(0)} s, DisAlign + evaluation ${timing.stage2_and_eval_s.toFixed(0)} s, total ${timing.total_s.toFixed(0)} s (backend ${backend()}).\n\n## Per-class IoU\n\n${perClass.join('\n')}\n\n## Config\n\n\`\`\`json\n${formatJson(config)}\n\`\`\`\n\nPicture: predictions.png (rows: test images; columns: image, ground truth, baseline, DisAlign).\n`);
  run.info(`results (${run.path('results.md')}):\n${table}`);
  // ---------------------------------------------------------------- pictures and predictions
  if (config.pictures > 0) {
    const dir = run.path('predictions');
    await mkdir(dir, { recursive: true });
    const columns = ['baseline', ...(evalDa ? ['DisAlign'] : [])];
    const rowsPics = evalBase.kept.map((k, i) => ({ sample: k.sample, preds: columns.map((m) => (m === 'DisAlign' ? evalDa!.kept[i].preds.DisAlign : k.preds.baseline)) }));
    for (const [i, r] of rowsPics.entries()) {
      const { width: w, height: h } = r.sample.image;
      for (const [j, m] of columns.entries()) {
        await writeFile(`${dir}/${data.testName(i)}_${m}.png`, encodeLabelPng(r.preds[j], w, h, { addOne: data.addOne }));
        await writeFile(`${dir}/${data.testName(i)}_${m}_color.png`, encodeColorPng(r.preds[j], w, h, data.palette));
      }
    }
    await writeFile(run.path('predictions.png'), encodeRgbPng(pictureGrid(rowsPics, data.palette)));
    run.info(`picture: ${run.path('predictions.png')} (image / ground truth / ${columns.join(' / ')}); label maps in ${dir}`);
  }
  run.info(`time: stage 1 ${timing.stage1_s.toFixed(0)} s, evaluation ${timing.eval_s.toFixed(0)} s, DisAlign + evaluation ${timing.stage2_and_eval_s.toFixed(0)} s; total ${timing.total_s.toFixed(0)} s`);
}

/** Rows of image | ground truth | predictions, each tile scaled to ≥ 128 px high (nearest), 4 px gaps. */
function pictureGrid(rows: { sample: SegSample; preds: Int32Array[] }[], palette: readonly (readonly number[])[]) {
  const tileH = 128;
  const tiles = rows.map((r) => {
    const { width: w, height: h } = r.sample.image;
    return [r.sample.image, colorize(r.sample.label.data, w, h, palette), ...r.preds.map((p) => colorize(p, w, h, palette))];
  });
  const scaleW = (img: { width: number; height: number }): number => Math.round((img.width * tileH) / img.height);
  const gap = 4;
  const W = Math.max(...tiles.map((t) => t.reduce((s, img) => s + scaleW(img) + gap, gap)));
  const H = rows.length * (tileH + gap) + gap;
  const data = new Uint8Array(W * H * 3).fill(255);
  tiles.forEach((t, r) => {
    let x0 = gap;
    const y0 = gap + r * (tileH + gap);
    for (const img of t) {
      const tw = scaleW(img);
      for (let y = 0; y < tileH; y++) {
        const sy = Math.min(img.height - 1, Math.floor((y * img.height) / tileH));
        for (let x = 0; x < tw; x++) {
          const sx = Math.min(img.width - 1, Math.floor((x * img.width) / tw));
          for (let ch = 0; ch < 3; ch++) data[((y0 + y) * W + x0 + x) * 3 + ch] = img.data[(sy * img.width + sx) * 3 + ch];
        }
      }
      x0 += tw + gap;
    }
  });
  return { width: W, height: H, data };
}

const run = await openRun({ task: 'ade20k', config, out: config.out, resume: config.resume, ignoreOnResume: keysFreeOnResume(options), keepCheckpoints: config.keepCheckpoints });
try {
  await main(run);
} catch (e) {
  run.error((e as Error).stack ?? (e as Error).message);
  process.exitCode = 1;
} finally {
  run.close();
}
