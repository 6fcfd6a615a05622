// node tasks/imagenet-lt.js — the pipeline behind the seed talk's ImageNet-LT table: stage 1 with
// instance-balanced sampling (ResNet-50 / ResNeXt-50, SGD, cosine or multi-step), stage 2 DisAlign
// (or any calibration by name), and the Average / Many / Medium / Few table.
// With no arguments it runs the same pipeline on the embedded CIFAR-10-LT mini set (assets/), with
// a small CIFAR ResNet, in minutes on a CPU-only machine.

import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { parseCli, opt, keysFreeOnResume } from './lib/cli.js';
import { checkRunFolder, openRun, runOptions } from './lib/run.js';
import { resolveHead, runPipeline, selectBackend, trainingOptions, TDE_ALPHA, MODELS, type PipelineConfig } from './lib/pipeline.js';
import { checkFolder, handleInterrupts, resumeAdvice, taskMain, TaskError } from './lib/entry.js';
import { readListFile } from '../data/node-datasets.js';
import { defaultWorkers } from './lib/entry.js';
import { imagenetTrainTransforms, imagenetEvalTransforms, cifarTrainTransforms, IMAGENET_MEAN, IMAGENET_STD, CIFAR_MEAN, CIFAR_STD } from '../data/augment.js';
import { CIFAR10_CLASSES } from '../data/lists.js';

const EMBEDDED = fileURLToPath(new URL('../assets/cifar10-lt-mini/', import.meta.url));

const options = {
  dataRoot: opt.string({ section: 'Data', metavar: 'DIR', help: 'Image root of ImageNet-LT (or Places-LT, iNaturalist in the same list format). Without it: the embedded CIFAR-10-LT mini set.', resumeCheck: false }),
  trainList: opt.string({ section: 'Data', metavar: 'FILE', help: 'Training list `path label`, absolute or relative to --data-root (default ImageNet_LT_train.txt; train.txt for the embedded set).' }),
  valList: opt.string({ section: 'Data', metavar: 'FILE', help: 'Validation list, absolute or relative to --data-root: τ-norm picks τ on it (default ImageNet_LT_val.txt when it is in --data-root).' }),
  testList: opt.string({ section: 'Data', metavar: 'FILE', help: 'Evaluation list, absolute or relative to --data-root (default ImageNet_LT_test.txt; test.txt for the embedded set).' }),
  numClasses: opt.integer({ section: 'Data', min: 1, help: 'Number of classes (default 1000; 10 for the embedded set).' }),
  imageSize: opt.integer({ section: 'Data', min: 8, help: 'Training crop (default 224; 32 for the embedded set).' }),
  model: opt.enum(MODELS, { section: 'Stage 1', help: 'Backbone (default resnet50; resnet8 for the embedded set).' }),
  epochs: opt.integer({ section: 'Stage 1', min: 1, help: 'Stage-1 epochs (default 90; 12 for the embedded set).' }),
  batchSize: opt.integer({ section: 'Stage 1', min: 1, help: 'Batch size (default 256; 64 for the embedded set).' }),
  lr: opt.number({ section: 'Optimisation', greaterThan: 0, help: 'Base learning rate (default 0.1; 0.05 for the embedded set).' }),
  schedule: opt.enum(['cosine', 'multistep', 'constant'], { section: 'Optimisation', default: 'cosine', help: 'Learning-rate schedule (multistep: ×0.1 at 60% and 80%).' }),
  ...trainingOptions,
  ...runOptions,
};

const spec = {
  name: 'imagenet-lt',
  title: 'ImageNet-LT two-stage pipeline: instance-balanced stage 1, then DisAlign (or any calibration)',
  description: 'Trains a backbone + classifier, caches features, calibrates the classifier and prints Average / Many (>100) / Medium (20-100) / Few (<20) top-1. With no arguments it runs on the embedded CIFAR-10-LT mini set.',
  options,
  examples: [
    'node tasks/imagenet-lt.js',
    'node tasks/imagenet-lt.js --data-root /data/imagenet --train-list ImageNet_LT_train.txt --test-list ImageNet_LT_test.txt --model resnext50',
    'node tasks/imagenet-lt.js --calib ncm,taunorm,logitadjust,crt,lws,disalign',
    'node tasks/imagenet-lt.js --out runs/mine --resume',
  ],
};

const argv = process.argv.slice(2);
const config = parseCli(spec, argv, undefined, { recorded: ['embedded'] });
await taskMain('imagenet-lt', async () => {
  const embedded = config.dataRoot === undefined;
  if (!embedded) checkFolder('--data-root', config.dataRoot!);
  await checkRunFolder({ task: 'imagenet-lt', out: config.out, resume: config.resume });
  resolveHead(config.loss, config.head);
  await selectBackend(config.backend);
  const root = config.dataRoot ?? EMBEDDED;
  const numClassesResolved = config.numClasses ?? (embedded ? 10 : 1000);
  const resolved: PipelineConfig & Record<string, unknown> = {
    ...config,
    // effective values, recorded in config.json instead of left out
    numClasses: numClassesResolved,
    imageSize: config.imageSize ?? (embedded ? 32 : 224),
    workers: config.workers ?? defaultWorkers(),
    model: config.model ?? (embedded ? 'resnet8' : 'resnet50'),
    // the embedded run must finish within 6 minutes on a 2-core CPU (lavapipe: ~20 s an epoch)
    epochs: config.epochs ?? (embedded ? 12 : 90),
    batchSize: config.batchSize ?? (embedded ? 64 : 256),
    lr: config.lr ?? (embedded ? 0.05 : 0.1),
  };
  const numClasses = config.numClasses ?? (embedded ? 10 : 1000);
  // the lists are read before the run folder exists: a bad path or list leaves no folder behind.
  // An absolute list path is taken as it is, a relative one inside the data root.
  const list = (given: string | undefined, fallback: string) => resolve(root, given ?? fallback);
  const train = await readListFile(list(config.trainList, embedded ? 'train.txt' : 'ImageNet_LT_train.txt'), { root, numClasses });
  const test = await readListFile(list(config.testList, embedded ? 'test.txt' : 'ImageNet_LT_test.txt'), { root, numClasses });
  const size = config.imageSize ?? (embedded ? 32 : 224);
  const valFile = config.valList !== undefined ? list(config.valList, '') : !embedded && existsSync(join(root, 'ImageNet_LT_val.txt')) ? join(root, 'ImageNet_LT_val.txt') : undefined;
  const val = valFile ? await readListFile(valFile, { root, numClasses }) : undefined;

  const run = await openRun({ task: 'imagenet-lt', config: { ...resolved, embedded }, out: config.out, resume: config.resume, ignoreOnResume: keysFreeOnResume(options), keepCheckpoints: config.keepCheckpoints });
  const stopHandling = handleInterrupts(run, 'imagenet-lt', argv);
  try {
    await runPipeline(run, resolved, {
      train, test, numClasses,
      classNames: embedded ? CIFAR10_CLASSES : undefined,
      trainTransforms: embedded ? cifarTrainTransforms(size, 4) : imagenetTrainTransforms(size),
      evalTransforms: embedded ? [{ op: 'centerCrop', size }] : imagenetEvalTransforms(size, Math.round((size * 256) / 224)),
      mean: embedded ? CIFAR_MEAN : IMAGENET_MEAN,
      std: embedded ? CIFAR_STD : IMAGENET_STD,
      imageSize: size,
      val,
      tdeAlpha: embedded ? TDE_ALPHA.cifar10 : TDE_ALPHA['imagenet-lt'],
      // the official runs keep μ = 0.9 on CIFAR (the embedded set) and anneal it with the lr elsewhere
      tdeMomentum: embedded ? 'fixed' : 'lr',
    });
  } catch (e) {
    run.error((e as Error).message);
    // a mistake in the options needs no resume advice; a failure during the run does
    if (!(e instanceof TaskError)) run.info(resumeAdvice('imagenet-lt', argv, run.dir));
    process.exitCode = 1;
  } finally {
    stopHandling();
    run.close();
  }
});
