// Storage buffers bucketed by size class. A released buffer waits in `pending` until the command
// batch that last used it has been submitted: after that, a queue.writeBuffer into it (which the
// queue orders before any not-yet-submitted commands) can no longer overtake its earlier readers.
// Free lists are LIFO so a training step gets the same buffers in the same order every time,
// which keeps the bind-group cache hitting.

export const BufferUsageFlags = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80, QUERY_RESOLVE: 0x200 } as const;
/** GPUMapMode.READ (the global is missing in Node). */
export const MAP_READ_MODE = 0x1;

/** Rounds up to a size class: 256-byte multiples up to 4 KiB, then 8 steps per power of two (<= 12.5% waste). */
export function sizeClass(bytes: number): number {
  const b = Math.max(bytes, 16);
  if (b <= 4096) return Math.ceil(b / 256) * 256;
  const step = 2 ** (Math.floor(Math.log2(b)) - 3);
  return Math.ceil(b / step) * step;
}

export interface PoolStats {
  /** Bytes held by live tensors (by size class). */
  liveBytes: number;
  /** Bytes of every buffer the pool has created and not destroyed. */
  totalBytes: number;
  peakBytes: number;
  buffers: number;
}

let nextId = 1;
export const bufferIds = new WeakMap<GPUBuffer, number>();

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private pending: GPUBuffer[] = [];
  private stats: PoolStats = { liveBytes: 0, totalBytes: 0, peakBytes: 0, buffers: 0 };

  constructor(private gpu: GPUDevice, private maxBuffer: number) {}

  acquire(bytes: number, what: () => string): GPUBuffer {
    const size = sizeClass(bytes);
    if (size > this.maxBuffer) {
      throw new Error(`${what()}: needs a ${bytes}-byte buffer, over this adapter's maxBufferSize of ${this.maxBuffer} bytes`);
    }
    let buf = this.free.get(size)?.pop();
    if (!buf) {
      buf = this.gpu.createBuffer({ size, usage: BufferUsageFlags.STORAGE | BufferUsageFlags.COPY_SRC | BufferUsageFlags.COPY_DST });
      bufferIds.set(buf, nextId++);
      this.stats.totalBytes += size;
      this.stats.buffers++;
      this.stats.peakBytes = Math.max(this.stats.peakBytes, this.stats.totalBytes);
    }
    this.stats.liveBytes += size;
    return buf;
  }

  release(buf: GPUBuffer): void {
    this.stats.liveBytes -= buf.size;
    this.pending.push(buf);
  }

  /** Called right after a submit: everything released before it may now be reused. */
  submitted(): void {
    for (const b of this.pending) {
      let list = this.free.get(b.size);
      if (!list) this.free.set(b.size, (list = []));
      list.push(b);
    }
    this.pending.length = 0;
  }

  /** Destroys every free buffer (e.g. after a phase with different shapes). */
  trim(onDestroy?: (b: GPUBuffer) => void): void {
    for (const list of this.free.values()) {
      for (const b of list) {
        this.stats.totalBytes -= b.size;
        this.stats.buffers--;
        onDestroy?.(b);
        b.destroy();
      }
    }
    this.free.clear();
  }

  getStats(): PoolStats {
    return { ...this.stats };
  }

  resetPeak(): void {
    this.stats.peakBytes = this.stats.totalBytes;
  }
}
