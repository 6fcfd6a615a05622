// Node-side reading of COCO / LVIS annotation files and COCO-format result files (data/coco.ts parses).
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseCocoDataset, parseCocoResults, type CocoDataset, type CocoDetection } from './coco.js';
import { DataError } from './errors.js';

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(path, code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, expected a JSON file' : `cannot be read: ${(e as Error).message}`);
  }
}

/** Reads and checks a COCO instances or LVIS json (errors name the file by its base name and the entry). */
export async function readCocoDataset(path: string): Promise<CocoDataset> {
  return parseCocoDataset(await readText(path), basename(path));
}

/** Reads and checks a COCO-format result file against its ground truth. */
export async function readCocoResults(path: string, gt: CocoDataset): Promise<CocoDetection[]> {
  return parseCocoResults(await readText(path), gt, basename(path));
}
