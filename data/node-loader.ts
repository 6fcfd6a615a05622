// Node loader: batches built by a pool of worker_threads, at most `prefetch` batches in flight or
// waiting, handed out in epoch order. Each batch depends only on (dataset, pipeline, order, epoch)
// (see loader.ts), so the output is the same for any number of workers and any timing.

import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InThreadLoader, planBatches, resolvePipeline, type Batch, type BatchJob, type BatchLoader, type DatasetSpec, type LoaderOptions, type ResolvedPipeline } from './loader.js';
import { readFileBytes } from './node-datasets.js';
import { DataError } from './errors.js';

export interface NodeLoaderOptions extends LoaderOptions {
  /** Worker threads; 0 builds batches on the main thread. Default: min(4, cores − 1). */
  workers?: number;
  /** Batches in flight or ready at most; default 2 per worker. */
  prefetch?: number;
  /** The bundled worker (dist/data-worker.js); found next to this code by default. */
  workerUrl?: URL | string;
}

/** The worker file: `workerUrl`, else dist/data-worker.js beside or one folder above this code
 * (this file bundled into dist/node.js, tasks/*.js, bench/*.js, or run from data/ by vitest). */
export function locateWorker(workerUrl?: URL | string): URL {
  if (workerUrl !== undefined) return typeof workerUrl !== 'string' ? workerUrl : workerUrl.startsWith('file:') ? new URL(workerUrl) : pathToFileURL(workerUrl);
  const candidates = [new URL('./data-worker.js', import.meta.url), new URL('../dist/data-worker.js', import.meta.url)];
  const found = candidates.find((u) => u.protocol === 'file:' && existsSync(fileURLToPath(u)));
  if (!found) throw new Error(`loader: no worker file at ${candidates.map((u) => u.pathname).join(' or ')}; run \`npm run build\` (or pass workers: 0)`);
  return found;
}

/** A loader for Node: worker threads when `workers` > 0, else in-thread. */
export function createLoader(spec: DatasetSpec, options: NodeLoaderOptions): BatchLoader {
  const workers = options.workers ?? Math.max(1, Math.min(4, availableParallelism() - 1));
  return workers === 0 ? new InThreadLoader(spec, options, readFileBytes) : new WorkerLoader(spec, { ...options, workers });
}

type Reply = { id: number; batch: Batch } | { id: number; error: { file?: string; detail: string; line?: number } };

interface Pending {
  resolve: (b: Batch) => void;
  reject: (e: Error) => void;
  worker: number;
}

export class WorkerLoader implements BatchLoader {
  readonly sampleShape: [number, number, number];
  private readonly workers: Worker[] = [];
  /** Jobs queued on each worker; Infinity once it died. */
  private readonly busy: number[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly prefetch: number;
  private readonly pipeline: ResolvedPipeline;
  private nextId = 0;
  private closed = false;

  constructor(spec: DatasetSpec, private readonly options: NodeLoaderOptions) {
    this.pipeline = resolvePipeline(spec, options);
    this.sampleShape = [3, this.pipeline.height, this.pipeline.width];
    const count = options.workers ?? 2;
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`loader: ${count} workers`);
    this.prefetch = options.prefetch ?? 2 * count;
    if (!Number.isInteger(this.prefetch) || this.prefetch < 1) throw new RangeError(`loader: prefetch ${this.prefetch}`);
    const url = locateWorker(options.workerUrl);
    const shared = shareSpec(spec);
    for (let w = 0; w < count; w++) {
      const worker = new Worker(url, { workerData: { spec: shared, pipeline: this.pipeline } });
      worker.on('message', (reply: Reply) => this.onReply(w, reply));
      worker.on('error', (e) => this.failWorker(w, e));
      worker.on('exit', (code) => this.failWorker(w, new Error(`loader: worker ${w} exited with code ${code}`)));
      // Idle workers do not keep the process alive; a worker with work does (see run()).
      worker.unref();
      this.workers.push(worker);
      this.busy.push(0);
    }
  }

  async *epoch(order: ArrayLike<number>, epoch: number): AsyncGenerator<Batch> {
    if (this.closed) throw new Error('loader: epoch() after close()');
    const jobs = planBatches(order, this.options.batchSize, epoch, this.options.dropLast);
    const results: Promise<Batch>[] = [];
    let dispatched = 0;
    const pump = (consumed: number) => {
      for (; dispatched < jobs.length && dispatched - consumed < this.prefetch; dispatched++) {
        const p = this.run(jobs[dispatched]);
        // A batch the consumer never asks for (it stopped early) must not report unhandled.
        p.catch(() => {});
        results.push(p);
      }
    };
    for (let b = 0; b < jobs.length; b++) {
      pump(b);
      const batch = await results[b];
      delete results[b];
      pump(b + 1);
      yield batch;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new Error('loader: closed while a batch was being built'));
    this.pending.clear();
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private run(job: BatchJob): Promise<Batch> {
    // The least busy live worker; ties go to the lowest number.
    const least = Math.min(...this.busy);
    if (least === Infinity) return Promise.reject(new Error('loader: every worker has died'));
    const w = this.busy.indexOf(least);
    const id = this.nextId++;
    return new Promise<Batch>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker: w });
      if (this.busy[w]++ === 0) this.workers[w].ref();
      this.workers[w].postMessage({ id, job });
    });
  }

  private onReply(w: number, reply: Reply): void {
    const entry = this.pending.get(reply.id);
    if (!entry) return;
    this.pending.delete(reply.id);
    if (--this.busy[w] === 0) this.workers[w].unref();
    if ('batch' in reply) entry.resolve(reply.batch);
    else {
      const { file, detail, line } = reply.error;
      entry.reject(file === undefined ? new Error(detail) : new DataError(file, detail, line));
    }
  }

  private failWorker(w: number, error: Error): void {
    if (this.closed || this.busy[w] === Infinity) return;
    this.busy[w] = Infinity;
    for (const [id, p] of this.pending) {
      if (p.worker !== w) continue;
      this.pending.delete(id);
      p.reject(error);
    }
  }
}

/** Pixels move to shared memory once, so every worker reads them without a copy. */
function shareSpec(spec: DatasetSpec): DatasetSpec {
  if (spec.kind !== 'pixels' || spec.images.buffer instanceof SharedArrayBuffer) return spec;
  const images = new Uint8Array(new SharedArrayBuffer(spec.images.byteLength));
  images.set(spec.images);
  return { ...spec, images };
}
