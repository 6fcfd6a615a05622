// Worker-thread entry of the Node loader (node-loader.ts): builds the batches it is sent and
// transfers them back. Bundled on its own to dist/data-worker.js by scripts/build.mjs.

import { parentPort, workerData } from 'node:worker_threads';
import { buildBatch, SampleReader, type BatchJob, type DatasetSpec, type ResolvedPipeline } from './loader.js';
import { readFileBytes } from './node-datasets.js';
import { DataError } from './errors.js';

const { spec, pipeline } = workerData as { spec: DatasetSpec; pipeline: ResolvedPipeline };
const reader = new SampleReader(spec, readFileBytes);
const port = parentPort!;

port.on('message', async ({ id, job }: { id: number; job: BatchJob }) => {
  try {
    const batch = await buildBatch(reader, job, pipeline);
    port.postMessage({ id, batch }, [batch.images.buffer, batch.labels.buffer, batch.indices.buffer]);
  } catch (e) {
    const error = e instanceof DataError ? { file: e.file, detail: e.detail, line: e.line } : { detail: (e as Error).message };
    port.postMessage({ id, error });
  }
});
