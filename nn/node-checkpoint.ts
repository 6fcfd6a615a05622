// Checkpoint files in Node: the bytes of nn/safetensors.ts written atomically (a temporary file in
// the same folder, fsync, rename, fsync of the folder), so a crash or a failed write never leaves a
// half-written checkpoint and never touches the previous one.

import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Backend } from '../kernels/device.js';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint, type EncodeOptions, type LoadedCheckpoint } from './safetensors.js';

/** Replaces `path` with `bytes` atomically: readers see the old file or the new one, never a mix. */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const file = await open(tmp, 'wx');
  try {
    try {
      await file.writeFile(bytes);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined); // it may be gone already; the first error is the one to report
    throw new Error(`writing ${path} failed, the previous file (if any) is intact: ${(e as Error).message}`, { cause: e });
  }
  // make the rename itself durable; Windows cannot open a folder for fsync
  if (process.platform !== 'win32') {
    const folder = await open(dir, 'r');
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
  }
}

/**
 * Writes a checkpoint: `model` tensors under their state-dict names, the optimizer's buffers under
 * `optimizer.state.<param>.<buffer>`, its scalars and `meta` in the safetensors metadata.
 */
export async function saveCheckpoint(path: string, checkpoint: Checkpoint, opts: EncodeOptions = {}): Promise<void> {
  await writeFileAtomic(path, await encodeCheckpoint(checkpoint, opts));
}

/** Reads and validates a checkpoint; errors name the file, and the tensor and offset at fault. */
export async function loadCheckpoint(path: string, device?: Backend): Promise<LoadedCheckpoint> {
  const bytes = await readFile(path);
  try {
    return decodeCheckpoint(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), device);
  } catch (e) {
    throw new Error(`loadCheckpoint(${path}): ${(e as Error).message}`, { cause: e });
  }
}
