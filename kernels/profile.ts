// The kernel profiler: timestamp queries around every dispatch while a profile runs (the runtime
// gives each dispatch its own pass meanwhile), a query set per submitted batch, read back and
// summed per kernel name (`<file>.<op>[.<pass>]`) or per name and specialisation at the end.

import { BufferUsageFlags, MAP_READ_MODE } from './pool.js';

/** GPU time spent in one kernel (all its specialisations) during a profile. */
export interface KernelTime {
  name: string;
  calls: number;
  ms: number;
}

/** Timestamp queries for one profile: a query set per submitted batch, read back at the end. */
export class KernelProfiler {
  private querySet: GPUQuerySet | null = null;
  private names: string[] = [];
  private resolved: { querySet: GPUQuerySet; resolveBuffer: GPUBuffer; readBuffer: GPUBuffer; names: string[] }[] = [];

  constructor(private readonly gpu: GPUDevice, private readonly capacity: number, readonly bySpecialisation: boolean) {}

  record(name: string): GPUComputePassTimestampWrites {
    this.querySet ??= this.gpu.createQuerySet({ type: 'timestamp', count: 2 * this.capacity });
    const i = this.names.push(name) - 1;
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Resolves this batch's timestamps into a readable buffer (before the encoder is finished). */
  resolve(encoder: GPUCommandEncoder): void {
    if (!this.querySet || this.names.length === 0) return;
    const bytes = 16 * this.names.length;
    const resolveBuffer = this.gpu.createBuffer({ size: bytes, usage: BufferUsageFlags.QUERY_RESOLVE | BufferUsageFlags.COPY_SRC });
    const readBuffer = this.gpu.createBuffer({ size: bytes, usage: BufferUsageFlags.MAP_READ | BufferUsageFlags.COPY_DST });
    encoder.resolveQuerySet(this.querySet, 0, 2 * this.names.length, resolveBuffer, 0);
    encoder.copyBufferToBuffer(resolveBuffer, 0, readBuffer, 0, bytes);
    this.resolved.push({ querySet: this.querySet, resolveBuffer, readBuffer, names: this.names });
    this.names = [];
    // the query set is reused by the next batch only after this one's resolve is recorded
    this.querySet = null;
  }

  async collect(): Promise<KernelTime[]> {
    const totals = new Map<string, KernelTime>();
    for (const { querySet, resolveBuffer, readBuffer, names } of this.resolved) {
      await readBuffer.mapAsync(MAP_READ_MODE);
      const t = new BigUint64Array(readBuffer.getMappedRange());
      names.forEach((name, i) => {
        const entry = totals.get(name) ?? { name, calls: 0, ms: 0 };
        entry.calls++;
        entry.ms += Number(t[2 * i + 1] - t[2 * i]) / 1e6;
        totals.set(name, entry);
      });
      readBuffer.destroy();
      resolveBuffer.destroy();
      querySet.destroy();
    }
    return [...totals.values()].sort((a, b) => b.ms - a.ms);
  }
}

