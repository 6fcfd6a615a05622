// node tasks/cifar-lt.js — CIFAR-10/100-LT (Cao et al. protocol, IF 10/50/100) with the CIFAR
// ResNet-32 and the LDAM-DRW schedule (200 epochs, batch 128, SGD 0.9, wd 2e-4, lr 0.1 with a
// 5-epoch linear warm-up, ×0.01 at 160, ×0.0001 at 180), any loss by name, and every stage-2
// calibration on the cached features.

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseCli, opt, keysFreeOnResume } from './lib/cli.js';
import { checkRunFolder, openRun, runOptions } from './lib/run.js';
import { resolveHead, runPipeline, selectBackend, trainingOptions, MODELS, ldamScheduleFor, TDE_ALPHA } from './lib/pipeline.js';
import { checkFolder, defaultWorkers, handleInterrupts, resumeAdvice, taskMain, TaskError } from './lib/entry.js';
import { readListFile, readCifarBinary, writeListFile } from '../data/node-datasets.js';
import { selectEntries, CIFAR10_CLASSES, type ListDataset } from '../data/lists.js';
import { selectPixels, type PixelDataset } from '../data/cifar.js';
import { longTailSubset } from '../data/subsets.js';
import { cifarTrainTransforms, CIFAR_MEAN, CIFAR_STD } from '../data/augment.js';

const options = {
  dataRoot: opt.string({ section: 'Data', metavar: 'DIR', help: 'CIFAR folder: list files (train.txt/test.txt, `path label`) or the official binaries (data_batch_*.bin / train.bin). Required.', resumeCheck: false }),
  data: opt.string({ section: 'Data', metavar: 'DIR', help: 'Deprecated: the old name of --data-root (the same in every task now).', resumeCheck: false }),
  dataset: opt.enum(['cifar10', 'cifar100'], { section: 'Data', default: 'cifar10', help: 'Which CIFAR.' }),
  imbalance: opt.number({ section: 'Data', default: 100, min: 1, help: 'Imbalance factor n_max / n_min (10, 50 or 100 in the papers).' }),
  imbalanceType: opt.enum(['exp', 'step'], { section: 'Data', default: 'exp', help: 'Exponential or step profile (Cao et al.).' }),
  valList: opt.string({ section: 'Data', metavar: 'FILE', help: 'A validation list (`path label`, relative to --data-root or absolute): τ-norm picks τ on it, and --eval-every evaluates on it.' }),
  listOnly: opt.boolean({ section: 'Data', help: 'Write the long-tailed training list into the run folder and exit.' }),
  model: opt.enum(MODELS, { section: 'Stage 1', default: 'resnet32', help: 'Backbone.' }),
  epochs: opt.integer({ section: 'Stage 1', default: 200, min: 1, help: 'Stage-1 epochs (shortens the LDAM-DRW schedule when below 200: milestones at 80% and 90%).' }),
  batchSize: opt.integer({ section: 'Stage 1', default: 128, min: 1, help: 'Batch size.' }),
  lr: opt.number({ section: 'Optimisation', default: 0.1, greaterThan: 0, help: 'Base learning rate.' }),
  schedule: opt.enum(['ldam', 'cosine', 'multistep', 'constant'], { section: 'Optimisation', default: 'ldam', help: 'ldam: 5-epoch warm-up, ×0.01 at 160, ×0.0001 at 180 (scaled to --epochs when shorter).' }),
  ...trainingOptions,
  weightDecay: opt.number({ section: 'Optimisation', default: 2e-4, min: 0, help: 'SGD weight decay.' }),
  ...runOptions,
};

const spec = {
  name: 'cifar-lt',
  title: 'CIFAR-10/100-LT with ResNet-32: CE, focal, CB, LDAM-DRW, balanced softmax, then any calibration',
  description: '--drw N starts the re-weighting at epoch N (0-based) as given, also in a shortened run: LDAM-DRW uses 160 of 200 epochs.',
  options,
  examples: [
    'node tasks/cifar-lt.js --data-root ../shared/data/cifar10 --imbalance 100 --list-only',
    'node tasks/cifar-lt.js --data-root ../shared/data/cifar10 --loss ldam --drw 160',
    'node tasks/cifar-lt.js --data-root ../shared/data/cifar10 --epochs 20 --drw 16 --calib ncm,taunorm,logitadjust,crt,lws,disalign',
  ],
};

const argv = process.argv.slice(2);
const parsed = parseCli(spec, argv);
await taskMain('cifar-lt', async () => {
  if (parsed.data !== undefined) {
    if (parsed.dataRoot !== undefined && parsed.dataRoot !== parsed.data) throw new TaskError(`--data ${parsed.data} and --data-root ${parsed.dataRoot} disagree; --data is the old name of --data-root, give only --data-root`);
    process.stderr.write('cifar-lt: warning: --data is deprecated; use --data-root (the same name as in tasks/imagenet-lt.js)\n');
  }
  const dataRoot = parsed.dataRoot ?? parsed.data;
  if (dataRoot === undefined) throw new TaskError('missing option --data-root: the CIFAR folder (list files train.txt/test.txt or the official binaries)');
  checkFolder('--data-root', dataRoot);
  await checkRunFolder({ task: 'cifar-lt', out: parsed.out, resume: parsed.resume });
  resolveHead(parsed.loss, parsed.head);
  if (!parsed.listOnly) await selectBackend(parsed.backend);
  const { data: _deprecated, ...rest } = parsed;
  // effective values recorded in config.json (the number of workers the loader uses)
  const config = { ...rest, dataRoot, workers: rest.workers ?? defaultWorkers() };
  const numClasses = config.dataset === 'cifar10' ? 10 : 100;

  // the data is read before the run folder exists: a bad path or list leaves no folder behind
  const lists = existsSync(join(dataRoot, 'train.txt'));
  let train: ListDataset | PixelDataset;
  let test: ListDataset | PixelDataset;
  if (lists) {
    train = await readListFile(join(dataRoot, 'train.txt'), { root: dataRoot, numClasses });
    test = await readListFile(join(dataRoot, 'test.txt'), { root: dataRoot, numClasses });
  } else {
    train = await readCifarBinary(dataRoot, config.dataset, 'train');
    test = await readCifarBinary(dataRoot, config.dataset, 'test');
  }
  const val = config.valList !== undefined ? await readListFile(resolve(dataRoot, config.valList), { root: dataRoot, numClasses }) : undefined;
  const keepIdx = longTailSubset(train.labels, numClasses, { imbalanceFactor: config.imbalance, type: config.imbalanceType, seed: config.seed });
  train = train.kind === 'files' ? selectEntries(train, keepIdx) : selectPixels(train, keepIdx);

  const run = await openRun({ task: 'cifar-lt', config, out: config.out, resume: config.resume, ignoreOnResume: keysFreeOnResume(options), keepCheckpoints: config.keepCheckpoints });
  const stopHandling = handleInterrupts(run, 'cifar-lt', argv);
  try {
    if (train.kind === 'files') {
      const file = run.path(`train_${config.dataset}_${config.imbalanceType}_if${config.imbalance}.txt`);
      await writeListFile(file, train);
      run.info(`long-tailed training list: ${train.labels.length} images → ${file}`);
    } else run.info(`long-tailed training set: ${train.labels.length} images`);
    if (!config.listOnly) {
      // the LDAM-DRW milestones (160, 180 of 200) scale with a shortened run; --drw is taken as given
      const ldam = ldamScheduleFor(config.epochs);
      await runPipeline(run, {
        ...config,
        schedule: config.schedule === 'ldam' ? 'multistep' : config.schedule,
        milestones: config.schedule === 'ldam' ? ldam.milestones : undefined,
        factors: config.schedule === 'ldam' ? ldam.factors : undefined,
        warmup: config.schedule === 'ldam' ? ldam.warmup : config.warmup,
      }, {
        train, test, numClasses,
        classNames: config.dataset === 'cifar10' ? CIFAR10_CLASSES : undefined,
        trainTransforms: cifarTrainTransforms(32, 4),
        evalTransforms: [{ op: 'centerCrop', size: 32 }],
        mean: CIFAR_MEAN,
        std: CIFAR_STD,
        imageSize: 32,
        tdeAlpha: TDE_ALPHA[config.dataset],
        val,
      });
    }
  } catch (e) {
    run.error((e as Error).message);
    // a mistake in the options needs no resume advice; a failure during the run does
    if (!(e instanceof TaskError)) run.info(resumeAdvice('cifar-lt', argv, run.dir));
    process.exitCode = 1;
  } finally {
    stopHandling();
    run.close();
  }
});
