// The Node task scaffolding shared by tasks/*.ts: options, run folders, logs, progress, resume,
// feature caches and the per-class plot. A task's outline:
//   const config = parseCli({ name: 'cifar-lt', title, options: { ...taskOptions, ...runOptions }, examples });
//   const run = await openRun({ task: 'cifar-lt', config, out: config.out, resume: config.resume,
//     ignoreOnResume: keysFreeOnResume(spec.options), keepCheckpoints: config.keepCheckpoints });
//   const state = await run.loadLatestCheckpoint();           // null: start at epoch 0
//   for each epoch: withProgress({ label, total, unit: 'batch', log: run.log }, async (p) => ...);
//                   await run.saveCheckpoint({ epoch, step, model, optimizer, meta });
//   await run.writeResults({ results: [{ method, evaluation: evaluateLongTail(...) }], trainCounts });
//   run.close();
export * from './cli.js';
export * from './log.js';
export * from './plot.js';
export * from './progress.js';
export * from './resume.js';
export * from './run.js';
