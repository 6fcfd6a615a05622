// Storage buffers bucketed by size class. A released buffer waits in `pending` until the command
// batch that last used it has been submitted: after that, a queue.writeBuffer into it (which the
// queue orders before any not-yet-submitted commands) can no longer overtake its earlier readers.
// Free lists are LIFO so a training step gets the same buffers in the same order every time,
// which keeps the bind-group cache hitting.
// Shapes that vary from step to step (a detector's proposal and positive counts) would otherwise
// make the pool grow without bound, a few buffers in every size class ever seen. So a request whose
// class has no free buffer takes the smallest free one up to REUSE_SLACK times larger, and a
// request that must create a buffer first destroys the free buffers idle for IDLE_SUBMITS submits:
// the pool holds the working set of recent steps. With fixed shapes nothing is ever created after
// the first step, so nothing is destroyed either.

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

/** A free buffer serves requests down to 1/REUSE_SLACK of its size. */
const REUSE_SLACK = 2;
/** Free buffers unused for this many submits (a few detector training steps) are destroyed when the pool must grow. */
const IDLE_SUBMITS = 64;

let nextId = 1;
export const bufferIds = new WeakMap<GPUBuffer, number>();

export class BufferPool {
  /** per size class, free buffers with the submit count at which each became free (oldest first) */
  private free = new Map<number, { buf: GPUBuffer; at: number }[]>();
  private pending: GPUBuffer[] = [];
  private submits = 0;
  private sweptAt = -1;
  private stats: PoolStats = { liveBytes: 0, totalBytes: 0, peakBytes: 0, buffers: 0 };

  constructor(private gpu: GPUDevice, private maxBuffer: number) {}

  acquire(bytes: number, what: () => string): GPUBuffer {
    const size = sizeClass(bytes);
    if (size > this.maxBuffer) {
      throw new Error(`${what()}: needs a ${bytes}-byte buffer, over this adapter's maxBufferSize of ${this.maxBuffer} bytes`);
    }
    let buf = this.take(size);
    if (!buf) {
      this.sweep();
      buf = this.gpu.createBuffer({ size, usage: BufferUsageFlags.STORAGE | BufferUsageFlags.COPY_SRC | BufferUsageFlags.COPY_DST });
      bufferIds.set(buf, nextId++);
      this.stats.totalBytes += size;
      this.stats.buffers++;
      this.stats.peakBytes = Math.max(this.stats.peakBytes, this.stats.totalBytes);
    }
    this.stats.liveBytes += buf.size;
    return buf;
  }

  /** A free buffer of class `size`, else the smallest free one up to REUSE_SLACK times larger. */
  private take(size: number): GPUBuffer | undefined {
    const exact = this.free.get(size);
    if (exact?.length) return exact.pop()!.buf;
    let best = 0;
    for (const [s, list] of this.free) if (s > size && s <= size * REUSE_SLACK && list.length > 0 && (best === 0 || s < best)) best = s;
    return best ? this.free.get(best)!.pop()!.buf : undefined;
  }

  /** Destroys the free buffers idle for more than IDLE_SUBMITS submits (at most once per submit). */
  private sweep(): void {
    if (this.sweptAt === this.submits) return;
    this.sweptAt = this.submits;
    for (const [s, list] of this.free) {
      let k = 0;
      while (k < list.length && this.submits - list[k].at > IDLE_SUBMITS) k++;
      for (const { buf } of list.splice(0, k)) this.destroy(buf);
      if (list.length === 0) this.free.delete(s);
    }
  }

  private destroy(b: GPUBuffer, onDestroy?: (b: GPUBuffer) => void): void {
    this.stats.totalBytes -= b.size;
    this.stats.buffers--;
    onDestroy?.(b);
    b.destroy();
  }

  release(buf: GPUBuffer): void {
    this.stats.liveBytes -= buf.size;
    this.pending.push(buf);
  }

  /** Called right after a submit: everything released before it may now be reused. */
  submitted(): void {
    this.submits++;
    for (const b of this.pending) {
      let list = this.free.get(b.size);
      if (!list) this.free.set(b.size, (list = []));
      list.push({ buf: b, at: this.submits });
    }
    this.pending.length = 0;
  }

  /** Destroys every free buffer (e.g. after a phase with different shapes). */
  trim(onDestroy?: (b: GPUBuffer) => void): void {
    for (const list of this.free.values()) for (const { buf } of list) this.destroy(buf, onDestroy);
    this.free.clear();
  }

  getStats(): PoolStats {
    return { ...this.stats };
  }

  resetPeak(): void {
    this.stats.peakBytes = this.stats.totalBytes;
  }
}
