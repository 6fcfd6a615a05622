// node tasks/vg-sgg.js — scene-graph generation with BGNN (Li et al., CVPR 2021) and bi-level
// resampling against a baseline relation classifier (same features and frequency bias, no message
// passing, no resampling), evaluated as PySGG does: R@K, mR@K, ng-R@K, ng-mR@K, head/body/tail mR@K,
// for PredCls, SGCls and SGDet.
// With no arguments it runs on the embedded synthetic scene set (scene-graph/synthetic.ts:
// procedurally drawn objects whose relations follow from geometry and category, VG150 names,
// predicate counts ∝ VG150's ^½). --data-root selects the real VG150 (VG-SGG-with-attri.h5,
// VG-SGG-dicts-with-attri.json, image_data.json, images in --image-dir).
// One model per method serves all protocols: trained with the given labels (PredCls) plus its
// object classifiers, evaluated in SGCls on the labels it predicts, and in SGDet on the boxes,
// labels and scores of a small Mask R-CNN trained first on the entity boxes (scene-graph/detector.ts;
// its checkpoint is checkpoints/detector.safetensors, restored on --resume). PySGG trains one
// relation model per protocol, the SGDet one on detector boxes.

import { join } from 'node:path';
import { parseCli, opt, keysFreeOnResume } from './lib/cli.js';
import { openRun, runOptions } from './lib/run.js';
import { listCheckpoints } from './lib/resume.js';
import { loadCheckpoint, saveCheckpoint } from '../nn/node-checkpoint.js';
import { init, runtime, scopeAsync, liveTensorCount, backend } from '../index.node.js';
import { AdamW } from '../nn/optim.js';
import { DataRng, shuffleInPlace } from '../data/rng.js';
import { loadVg150 } from '../data/node-vg150.js';
import { sampleDuplicateRelations, type Vg150Image } from '../data/vg150.js';
import { readImageFile } from '../data/node-datasets.js';
import { SggEvaluator, groupsByCount, type PredicateGroup, type SggResult } from '../scene-graph/metrics.js';
import { BilevelResampler, PYSGG_VG_BILEVEL } from '../scene-graph/resampling.js';
import { frequencyBiasTable } from '../scene-graph/bgnn.js';
import { SggNet, evaluateSgg, makeBatch, type SggSample, type BatchPrediction, type EntityDetections } from '../scene-graph/pipeline.js';
import { detectEntities, detectionSampleOf, entityDetector, entityRecall } from '../scene-graph/detector.js';
import { detectionBatch, type DetectionSample } from '../data/detection-transforms.js';
import { totalLoss } from '../detection/mask-rcnn.js';
import { stat } from 'node:fs/promises';
import { sceneGraphSvg, topTriplets } from '../scene-graph/draw.js';
import { VG150_PREDICATE_GROUPS } from '../scene-graph/vg150-table.js';
import { generateScenes, scenePredicateCounts, SCENE_OBJECTS, SCENE_PREDICATES } from '../scene-graph/synthetic.js';

const options = {
  dataRoot: opt.string({ section: 'Data', metavar: 'DIR', help: 'Folder with VG-SGG-with-attri.h5, VG-SGG-dicts-with-attri.json and image_data.json. Without it: the embedded synthetic scene set.', resumeCheck: false }),
  imageDir: opt.string({ section: 'Data', metavar: 'DIR', help: 'VG images <image_id>.jpg (default <data-root>/VG_100K).' }),
  imageSize: opt.integer({ section: 'Data', min: 16, help: 'Network input side: images are resized to a square (default 64; 256 for VG150).' }),
  trainImages: opt.integer({ section: 'Data', min: 1, help: 'Training images (default 1200 synthetic; VG150: all of the train split).' }),
  testImages: opt.integer({ section: 'Data', min: 1, help: 'Test images (default 200 synthetic; VG150: all of the test split).' }),
  seed: opt.integer({ section: 'Data', default: 0, min: 0, help: 'Seed of the scene generator, the sampling and the initialisation.' }),
  steps: opt.integer({ section: 'Training', min: 1, help: 'Training steps per method (default 150 synthetic, 20000 VG150).' }),
  batchSize: opt.integer({ section: 'Training', default: 8, min: 1, help: 'Images per step.' }),
  lr: opt.number({ section: 'Training', default: 2e-3, greaterThan: 0, help: 'AdamW learning rate.' }),
  hidden: opt.integer({ section: 'Model', min: 4, help: 'Hidden width H of the graph (default 64 synthetic, 512 VG150 as PySGG).' }),
  refineIters: opt.integer({ section: 'Model', min: 1, help: 'BGNN outer confidence-refinement iterations (default 2 synthetic, 3 as PySGG for VG150).' }),
  mpSteps: opt.integer({ section: 'Model', min: 1, help: 'Message-passing steps per outer iteration (default 2 synthetic, 3 as PySGG for VG150).' }),
  detectorSteps: opt.integer({ section: 'Detector (SGDet)', min: 1, help: 'Training steps of the entity detector (default 300 synthetic, 20000 VG150).' }),
  detectorBatchSize: opt.integer({ section: 'Detector (SGDet)', default: 4, min: 1, help: 'Images per detector step.' }),
  detectorLr: opt.number({ section: 'Detector (SGDet)', default: 2e-3, greaterThan: 0, help: 'AdamW learning rate of the detector.' }),
  detectorSize: opt.integer({ section: 'Detector (SGDet)', min: 32, help: 'Detector input side (default 128 synthetic: the 64 px scenes upsampled; VG150: --image-size).' }),
  detections: opt.integer({ section: 'Detector (SGDet)', min: 2, help: 'Detections per image kept as SGDet entities, by score (default 10 synthetic, 80 VG150 as PySGG).' }),
  repeatFactor: opt.number({ section: 'Resampling', default: PYSGG_VG_BILEVEL.repeatThreshold, greaterThan: 0, help: 'Bi-level resampling threshold t of r_p = max(1, sqrt(t / f_p)) (PySGG VG: 0.13).' }),
  dropRate: opt.number({ section: 'Resampling', default: PYSGG_VG_BILEVEL.dropRate, min: 0, help: 'Instance drop rate γ_d (PySGG VG: 1.6).' }),
  ...runOptions,
};

const spec = {
  name: 'vg-sgg',
  title: 'Scene-graph generation: BGNN + bi-level resampling vs a baseline relation classifier (PredCls, SGCls, SGDet)',
  description: 'Trains an entity detector and both relation models, and prints R@K, mR@K, ng-R@K, ng-mR@K and head/body/tail mR@K (PySGG evaluation) for PredCls, SGCls and SGDet, with a picture of one test image and its predicted graph. With no arguments it runs on the embedded synthetic scene set.',
  options,
  examples: [
    'node tasks/vg-sgg.js',
    'node tasks/vg-sgg.js --steps 400 --train-images 3000',
    'node tasks/vg-sgg.js --data-root /data/vg --image-dir /data/vg/VG_100K --image-size 256',
  ],
};

const config = parseCli(spec);
const embedded = config.dataRoot === undefined;
const resolved = {
  ...config,
  imageSize: config.imageSize ?? (embedded ? 64 : 256),
  trainImages: config.trainImages ?? (embedded ? 1200 : undefined),
  testImages: config.testImages ?? (embedded ? 200 : undefined),
  steps: config.steps ?? (embedded ? 150 : 20000),
  hidden: config.hidden ?? (embedded ? 64 : 512),
  refineIters: config.refineIters ?? (embedded ? 2 : 3),
  mpSteps: config.mpSteps ?? (embedded ? 2 : 3),
  detectorSteps: config.detectorSteps ?? (embedded ? 300 : 20000),
  detectorSize: config.detectorSize ?? (embedded ? 128 : config.imageSize ?? 256),
  detections: config.detections ?? (embedded ? 10 : 80),
};
const PROTOCOLS = ['predcls', 'sgcls', 'sgdet'] as const;
type Protocol = (typeof PROTOCOLS)[number];
const PROTOCOL_NAMES: Record<Protocol, string> = { predcls: 'PredCls', sgcls: 'SGCls', sgdet: 'SGDet' };
const run = await openRun({ task: 'vg-sgg', config: { ...resolved, embedded }, out: config.out, resume: config.resume, ignoreOnResume: keysFreeOnResume(options), keepCheckpoints: config.keepCheckpoints });
const t0 = performance.now();
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(0)} s`;

/** Resizes an 8-bit HWC image to S×S (bilinear, aspect not kept), CHW in [0, 1]; boxes scale with it. */
function toSample(img: { width: number; height: number; data: Uint8Array }, im: Vg150Image, S: number): SggSample {
  const px = new Float32Array(3 * S * S);
  const fx = img.width / S, fy = img.height / S;
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) {
    const sx = Math.min(img.width - 1, Math.max(0, (x + 0.5) * fx - 0.5)), sy = Math.min(img.height - 1, Math.max(0, (y + 0.5) * fy - 0.5));
    const x0 = Math.floor(sx), y0 = Math.floor(sy), x1 = Math.min(img.width - 1, x0 + 1), y1 = Math.min(img.height - 1, y0 + 1), ax = sx - x0, ay = sy - y0;
    for (let c = 0; c < 3; c++) {
      const at = (xx: number, yy: number) => img.data[(yy * img.width + xx) * 3 + c];
      px[c * S * S + y * S + x] = ((1 - ay) * ((1 - ax) * at(x0, y0) + ax * at(x1, y0)) + ay * ((1 - ax) * at(x0, y1) + ax * at(x1, y1))) / 255;
    }
  }
  const sx = S / im.width, sy = S / im.height;
  const boxes = Float32Array.from(im.boxes, (v, i) => v * (i % 2 === 0 ? sx : sy));
  return { size: S, pixels: px, boxes, labels: im.labels, relations: im.relations };
}

try {
  await init({ requireWebGPU: process.env.REQUIRE_WEBGPU === '1' });
  run.info(`backend: ${backend()}`);
  const S = resolved.imageSize;
  let train: SggSample[], test: SggSample[];
  let objectNames: readonly string[], predicateNames: readonly string[];
  let groups: (PredicateGroup | null)[];
  if (embedded) {
    const tr = generateScenes(0, resolved.trainImages!, { seed: config.seed });
    const te = generateScenes(1, resolved.testImages!, { seed: config.seed });
    const toS = (s: (typeof tr)[number]): SggSample => ({ size: S, pixels: s.pixels, boxes: s.boxes, labels: s.labels, relations: s.relations });
    if (S !== 64) throw new Error('vg-sgg: the embedded scenes are 64×64; --image-size applies to VG150 only');
    train = tr.map(toS);
    test = te.map(toS);
    objectNames = SCENE_OBJECTS;
    predicateNames = SCENE_PREDICATES;
    // PySGG's split by training count, with its shares (5/50 head, 16/50 body) of the 15 predicates
    groups = groupsByCount(scenePredicateCounts(tr));
  } else {
    const root = config.dataRoot!;
    const imageDir = config.imageDir ?? join(root, 'VG_100K');
    const trSplit = await loadVg150(root, { split: 'train' });
    const teSplit = await loadVg150(root, { split: 'test' });
    objectNames = trSplit.dicts.objects;
    predicateNames = trSplit.dicts.predicates;
    groups = predicateNames.length === 51 ? [...VG150_PREDICATE_GROUPS] : groupsByCount(Int32Array.from(predicateNames, () => 1));
    const read = async (ims: Vg150Image[], limit: number | undefined) => {
      const out: SggSample[] = [];
      for (const im of ims.slice(0, limit ?? ims.length)) out.push(toSample(await readImageFile(join(imageDir, `${im.imageId}.jpg`)), im, S));
      return out;
    };
    train = await read(trSplit.images, resolved.trainImages);
    test = await read(teSplit.images, resolved.testImages);
  }
  const numObj = objectNames.length, numPred = predicateNames.length - 1;
  const trainCounts = scenePredicateCounts(train);
  run.info(`data: ${train.length} training images (${trainCounts.reduce((a, b) => a + b, 0)} relations), ${test.length} test images; ${numObj - 1} object classes, ${numPred} predicates (${elapsed()})`);
  run.info(`groups: head ${groups.flatMap((g, p) => (g === 'head' ? [predicateNames[p]] : [])).join(', ')} | body ${groups.flatMap((g, p) => (g === 'body' ? [predicateNames[p]] : [])).join(', ')} | tail ${groups.flatMap((g, p) => (g === 'tail' ? [predicateNames[p]] : [])).join(', ')}`);
  const freq = frequencyBiasTable(train, numObj, numPred);

  const methods = [
    { name: 'Baseline (no message passing, no resampling)', key: 'baseline', messagePassing: false, resampling: false },
    { name: 'BGNN + bi-level resampling', key: 'bgnn', messagePassing: true, resampling: true },
  ];
  const results: ({ method: string; key: string; trainSeconds: number; memory: Record<string, number> } & Record<Protocol, SggResult>)[] = [];
  const nets: SggNet[] = [];
  let picture: { preds: BatchPrediction[]; key: string }[] = [];
  for (const [mi, m] of methods.entries()) {
    const tm = performance.now();
    const net = new SggNet({
      numObjClasses: numObj, numPredicates: numPred, hiddenDim: resolved.hidden, embedDim: 32, geometryDim: 32, gateWidth: 16,
      refineIters: resolved.refineIters, mpSteps: resolved.mpSteps, messagePassing: m.messagePassing, frequencyBias: freq,
    });
    const opt = new AdamW(net.parameters(), { lr: config.lr, weightDecay: 1e-4 });
    // --resume: a model whose training finished (checkpoint epoch = its number) is restored, not retrained
    const done = config.resume ? (await listCheckpoints(run.dir)).find((c) => c.epoch === mi + 1) : undefined;
    if (done) {
      const loaded = await loadCheckpoint(done.path);
      if (loaded.meta.method !== m.key) throw new Error(`${done.path} holds model '${String(loaded.meta.method)}', expected '${m.key}'`);
      net.loadStateDict(loaded.model);
      run.info(`${m.key}: restored from ${done.path}, not retrained`);
    }
    const resampler = m.resampling ? new BilevelResampler(train.map((s) => s.relations), { numPredicates: numPred, seed: config.seed, repeatThreshold: config.repeatFactor, dropRate: config.dropRate }) : null;
    if (resampler) {
      const total = resampler.imageRepeats.reduce((a, b) => a + b, 0);
      run.info(`${m.key}: bi-level resampling, t = ${config.repeatFactor}, γ_d = ${config.dropRate}: ${train.length} images → ${total} per epoch; R_p = ${Array.from(resampler.predicateRepeats).slice(1).map((r, p) => `${predicateNames[p + 1]} ${r}`).join(', ')}`);
    }
    // the epoch order: instance-balanced shuffles, or the resampled list with its relation drops
    let epoch = -1, order: Int32Array = new Int32Array(0), relsOf: (k: number) => Int32Array = () => new Int32Array(0), at = 0;
    const nextEpoch = () => {
      epoch++;
      at = 0;
      if (resampler) {
        const e = resampler.epoch(epoch);
        order = e.images;
        relsOf = e.relations;
      } else {
        order = shuffleInPlace(Int32Array.from(train.keys()), new DataRng(config.seed, 7, epoch));
        relsOf = (k) => train[order[k]].relations;
      }
    };
    nextEpoch();
    const dupRng = new DataRng(config.seed, 11, mi);
    let lossSum = 0, lossN = 0;
    const memory: Record<string, number> = {};
    for (let step = 0; step < (done ? 0 : resolved.steps); step++) {
      const chunk: SggSample[] = [], rels: Int32Array[] = [];
      while (chunk.length < config.batchSize) {
        if (at >= order.length) nextEpoch();
        chunk.push(train[order[at]]);
        rels.push(sampleDuplicateRelations(relsOf(at), dupRng));
        at++;
      }
      const batch = makeBatch(chunk, rels);
      const logNow = (step + 1) % 25 === 0 || step === resolved.steps - 1;
      await scopeAsync(async () => {
        const loss = net.loss(batch);
        loss.backward();
        opt.step();
        opt.zeroGrad();
        if (logNow) {
          const v = (await loss.data())[0];
          if (!Number.isFinite(v)) throw new Error(`${m.key}: the loss is ${v} at step ${step + 1}; no checkpoint of this method was written`);
          lossSum += v;
          lossN++;
        }
      });
      // one step in flight at a time: the queue cannot run ahead of the GPU (and the pool stays flat)
      if (backend() === 'webgpu') await runtime().sync();
      if (backend() === 'webgpu' && (step === 1 || step === resolved.steps - 1)) {
        memory[step === 1 ? 'pool_bytes_step2' : 'pool_bytes_last'] = runtime().pool.getStats().totalBytes;
        memory[step === 1 ? 'live_tensors_step2' : 'live_tensors_last'] = liveTensorCount();
      }
      if (logNow) {
        run.info(`${m.key}: step ${step + 1}/${resolved.steps} (epoch ${epoch + 1}) loss ${(lossSum / lossN).toFixed(3)} (${elapsed()})`);
        lossSum = 0;
        lossN = 0;
      }
    }
    const trainSeconds = (performance.now() - tm) / 1000;
    if (!done) await run.saveCheckpoint({ epoch: mi + 1, step: resolved.steps, model: net.stateDict(), optimizer: opt.stateDict(), meta: { method: m.key } });
    const evals = {} as Record<Protocol, SggResult>;
    for (const mode of ['predcls', 'sgcls'] as const) {
      const ev = new SggEvaluator({ numPredicates: numPred, mode, groups });
      const preds = await evaluateSgg(net, test, ev, 16);
      evals[mode] = ev.result();
      if (mode === 'predcls') picture.push({ preds, key: m.key });
    }
    results.push({ method: m.name, key: m.key, ...evals, trainSeconds, memory });
    nets.push(net);
    run.info(`${m.key}: trained in ${trainSeconds.toFixed(0)} s; evaluated (${elapsed()})`);
  }

  // SGDet's entity detector: trained on the training images' entity boxes (or restored), then run
  // once on the test set; built after the relation models, whose initial weights stay those of the run without it
  const detector = entityDetector({ numClasses: numObj, inputSize: resolved.detectorSize, detectionsPerImage: resolved.detections });
  const detectorPath = run.path('checkpoints', 'detector.safetensors');
  const td = performance.now();
  const detectorDone = config.resume && (await stat(detectorPath).then(() => true, () => false));
  if (detectorDone) {
    detector.loadStateDict((await loadCheckpoint(detectorPath)).model);
    run.info(`detector: restored from ${detectorPath}, not retrained`);
  } else {
    const detTrain = train.map(detectionSampleOf).filter((d): d is DetectionSample => d !== null);
    const dopt = new AdamW(detector.trainableParameters().map(([, p]) => p), { lr: config.detectorLr, weightDecay: 1e-4 });
    const drng = new DataRng(config.seed, 13);
    let dorder = shuffleInPlace(Int32Array.from(detTrain.keys()), new DataRng(config.seed, 17, 0)), dat = 0, depoch = 0, dsum = 0, dn = 0;
    detector.train();
    for (let step = 0; step < resolved.detectorSteps; step++) {
      const chunk: DetectionSample[] = [];
      while (chunk.length < config.detectorBatchSize) {
        if (dat >= dorder.length) { dorder = shuffleInPlace(Int32Array.from(detTrain.keys()), new DataRng(config.seed, 17, ++depoch)); dat = 0; }
        chunk.push(detTrain[dorder[dat++]]);
      }
      const list = detectionBatch(chunk, { minSize: [resolved.detectorSize], maxSize: resolved.detectorSize }, drng);
      const logNow = (step + 1) % 50 === 0 || step === resolved.detectorSteps - 1;
      await scopeAsync(async () => {
        const loss = totalLoss(await detector.losses(list, drng));
        loss.backward();
        dopt.step();
        dopt.zeroGrad();
        if (logNow) {
          const v = (await loss.data())[0];
          if (!Number.isFinite(v)) throw new Error(`detector: the loss is ${v} at step ${step + 1}; no detector checkpoint was written`);
          dsum += v;
          dn++;
        }
      });
      if (backend() === 'webgpu') await runtime().sync();
      if (logNow) {
        run.info(`detector: step ${step + 1}/${resolved.detectorSteps} loss ${(dsum / dn).toFixed(3)} (${elapsed()})`);
        dsum = 0;
        dn = 0;
      }
    }
    await saveCheckpoint(detectorPath, { model: detector.stateDict(), meta: { steps: resolved.detectorSteps } });
  }
  detector.eval();
  const testDetections: EntityDetections[] = await detectEntities(detector, test, 16);
  const detRecall = entityRecall(test, testDetections);
  const detectorSeconds = (performance.now() - td) / 1000;
  run.info(`detector: ${(100 * detRecall).toFixed(1)}% of the test entities found (right class, IoU ≥ 0.5) among the top ${resolved.detections} detections per image; ${detectorSeconds.toFixed(0)} s (${elapsed()})`);
  for (const [i, net] of nets.entries()) {
    const ev = new SggEvaluator({ numPredicates: numPred, mode: 'sgdet', groups });
    await evaluateSgg(net, test, ev, 16, testDetections);
    results[i].sgdet = ev.result();
  }

  // results: tables, metrics.json, pictures
  const pct = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(1) : '-');
  const lines: string[] = [];
  for (const mode of PROTOCOLS) {
    lines.push(`\n### ${PROTOCOL_NAMES[mode]}\n`);
    if (mode === 'sgdet') lines.push(`Entities: the top ${resolved.detections} detections per image of the detector, which finds ${pct(detRecall)}% of the test entities (right class, IoU ≥ 0.5).\n`);
    lines.push('| method | R@20 | R@50 | R@100 | mR@20 | mR@50 | mR@100 | head mR@100 | body mR@100 | tail mR@100 | ng-R@50 | ng-mR@50 | ng-mR@100 |');
    lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const r of results) {
      const x = r[mode];
      lines.push(`| ${r.method} | ${pct(x.graph.recall[20])} | ${pct(x.graph.recall[50])} | ${pct(x.graph.recall[100])} | ${pct(x.graph.meanRecall[20])} | ${pct(x.graph.meanRecall[50])} | ${pct(x.graph.meanRecall[100])} | ${pct(x.graph.groups[100].head)} | ${pct(x.graph.groups[100].body)} | ${pct(x.graph.groups[100].tail)} | ${pct(x.noGraph.recall[50])} | ${pct(x.noGraph.meanRecall[50])} | ${pct(x.noGraph.meanRecall[100])} |`);
    }
  }
  lines.push('\n### Per-predicate R@100 (PredCls, graph constraint)\n');
  lines.push(`| predicate | group | train count | ${results.map((r) => r.key).join(' | ')} |`);
  lines.push(`| --- | --- | --- | ${results.map(() => '---').join(' | ')} |`);
  for (let p = 1; p <= numPred; p++) lines.push(`| ${predicateNames[p]} | ${groups[p] ?? '-'} | ${trainCounts[p]} | ${results.map((r) => pct(r.predcls.graph.perPredicate[100][p])).join(' | ')} |`);
  const table = lines.join('\n') + '\n';
  const perPred = (x: SggResult) => ({
    graph: { recall: x.graph.recall, meanRecall: x.graph.meanRecall, groups: x.graph.groups, perPredicate100: Object.fromEntries(Array.from(x.graph.perPredicate[100]).slice(1).map((v, i) => [predicateNames[i + 1], v])) },
    noGraph: { recall: x.noGraph.recall, meanRecall: x.noGraph.meanRecall, groups: x.noGraph.groups, perPredicate100: Object.fromEntries(Array.from(x.noGraph.perPredicate[100]).slice(1).map((v, i) => [predicateNames[i + 1], v])) },
    images: x.images,
  });
  await run.writeJson('metrics.json', {
    task: 'vg-sgg', embedded, seconds: (performance.now() - t0) / 1000,
    trainPredicateCounts: Object.fromEntries(Array.from(trainCounts).slice(1).map((c, i) => [predicateNames[i + 1], c])),
    groups: Object.fromEntries(groups.slice(1).map((g, i) => [predicateNames[i + 1], g])),
    detector: { seconds: detectorSeconds, restored: detectorDone, detectionsPerImage: resolved.detections, testEntityRecall: detRecall },
    methods: results.map((r) => ({ method: r.method, key: r.key, trainSeconds: r.trainSeconds, memory: r.memory, predcls: perPred(r.predcls), sgcls: perPred(r.sgcls), sgdet: perPred(r.sgdet) })),
  });
  await run.writeText('results.md', `# vg-sgg results\n\n${embedded ? 'Embedded synthetic scene set' : `VG150 from ${config.dataRoot}`}; ${train.length} training / ${test.length} test images, ${resolved.steps} steps of ${config.batchSize} per method, detector ${detectorDone ? 'restored' : `${resolved.detectorSteps} steps of ${config.detectorBatchSize}`}, ${((performance.now() - t0) / 1000).toFixed(0)} s in all. Recalls in %, PySGG evaluation.\n${table}`);
  run.info(`results (${run.path('results.md')}):${table}`);
  const test0 = test[0];
  for (const { preds, key } of picture) {
    const p = preds[0];
    const svg = sceneGraphSvg({
      pixels: test0.pixels, size: test0.size, boxes: test0.boxes, labels: test0.labels, objectNames, predicateNames,
      triplets: topTriplets(p.pairs, p.relScores, p.objScores, numPred, 5), gtRelations: test0.relations,
      title: `test image 0, PredCls, ${results.find((r) => r.key === key)!.method}: top 5 triplets (green: in the ground truth)`,
    });
    await run.writeText(`scene_graph_${key}.svg`, svg);
  }
  picture = [];
  run.info(`pictures: ${run.path('scene_graph_bgnn.svg')}, ${run.path('scene_graph_baseline.svg')}; total ${elapsed()}`);
} catch (e) {
  run.error((e as Error).stack ?? (e as Error).message);
  process.exitCode = 1;
} finally {
  run.close();
}
