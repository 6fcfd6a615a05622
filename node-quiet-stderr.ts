// Dawn prints two warnings on every adapter request on Mesa's lavapipe:
//   Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.
//   Warning: maxDynamicStorageBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.
// They come from Dawn's Vulkan backend while it enumerates the physical device (before any device
// or limit is requested, so no requiredLimits can avoid them), written by native code straight to
// file descriptor 2, where no JavaScript stream can filter them. They are harmless: WebGPU's own
// limit for both is 8 and 4, far below 16. So, on Linux only, fd 2 points to a temporary file
// while the adapter is requested; afterwards fd 2 is restored and every captured line except those
// two is written back to stderr, so a real driver message (no Vulkan ICD, ...) still shows.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The lines dropped: Dawn's notice that it lowered an adapter limit to what its allocator supports. */
export const DAWN_NOISE = /^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.$/;

/** `text` without Dawn's two limit notices. */
export function dropDawnNoise(text: string): string {
  return text
    .split('\n')
    .filter((line) => !DAWN_NOISE.test(line))
    .join('\n');
}

/** Runs `work` with native writes to fd 2 captured; re-emits what it wrote, less Dawn's limit notices. Elsewhere than Linux, runs it as is. */
export async function withFilteredNativeStderr<T>(work: () => Promise<T>): Promise<T> {
  if (process.platform !== 'linux' || process.env.LONGTAIL_DAWN_WARNINGS === '1') return work();
  let saved = -1;
  let dir = '';
  try {
    dir = mkdtempSync(join(tmpdir(), 'dawn-stderr-'));
    saved = openSync('/proc/self/fd/2', 'a');
    closeSync(2);
    const fd = openSync(join(dir, 'stderr'), 'w');
    if (fd !== 2) {
      // another descriptor took the slot: undo and run unfiltered
      closeSync(fd);
      restore(saved);
      saved = -1;
      return await work();
    }
  } catch {
    if (saved >= 0) restore(saved);
    if (dir) rmSync(dir, { recursive: true, force: true });
    return work();
  }
  try {
    return await work();
  } finally {
    restore(saved);
    try {
      const rest = dropDawnNoise(readFileSync(join(dir, 'stderr'), 'utf8'));
      if (rest.trim()) writeSync(2, rest.endsWith('\n') ? rest : `${rest}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** Points fd 2 back at what `saved` (a reopened copy of the original fd 2) refers to. */
function restore(saved: number): void {
  try {
    closeSync(2);
  } catch {
    /* already closed */
  }
  openSync(`/proc/self/fd/${saved}`, 'a');
  closeSync(saved);
}
