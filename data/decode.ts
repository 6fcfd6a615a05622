// JPEG and PNG decoding from bytes to 8-bit RGB, the same code in Node, workers and browsers:
// jpeg-js (pure JS baseline + progressive JPEG) and fast-png (pure JS, all PNG colour types).

import jpeg from 'jpeg-js';
import { decode as decodePngBytes, convertIndexedToRgb } from 'fast-png';
import { DataError } from './errors.js';

/** An 8-bit RGB image, HWC (row-major, 3 bytes a pixel). */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export type ImageFormat = 'jpeg' | 'png';

export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length >= 8 && png.every((b, i) => bytes[i] === b)) return 'png';
  return undefined;
}

/** Decodes a JPEG or PNG (told apart by their signatures); `name` (the file) appears in errors. */
export function decodeImage(bytes: Uint8Array, name: string): RgbImage {
  const format = sniffFormat(bytes);
  if (!format) throw new DataError(name, `not a JPEG or PNG file (${bytes.length} bytes, starts with ${hex(bytes.subarray(0, 4))})`);
  let image: RgbImage;
  try {
    image = format === 'jpeg' ? decodeJpeg(bytes) : decodePng(bytes);
  } catch (e) {
    throw new DataError(name, `corrupt ${format.toUpperCase()}: ${(e as Error).message}`);
  }
  if (image.width < 1 || image.height < 1) throw new DataError(name, `corrupt ${format.toUpperCase()}: size ${image.width}x${image.height}`);
  return image;
}

function decodeJpeg(bytes: Uint8Array): RgbImage {
  // tolerantDecoding off: a truncated or damaged scan is an error, not a silently grey image.
  const { width, height, data } = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false });
  return { width, height, data };
}

function decodePng(bytes: Uint8Array): RgbImage {
  const png = decodePngBytes(bytes);
  const { width, height } = png;
  const n = width * height;
  if (png.palette) return { width, height, data: dropAlpha(convertIndexedToRgb(png), n, png.palette[0]?.length ?? 3) };
  const src = png.data, channels = png.channels, depth = png.depth;
  const out = new Uint8Array(n * 3);
  if (depth < 8) {
    // 1/2/4-bit greyscale: rows are bit-packed, MSB first; scale to 0..255.
    const rowBytes = Math.ceil((width * depth) / 8), mask = 2 ** depth - 1, scale = 255 / mask;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const bit = x * depth;
        const v = Math.round(((src[y * rowBytes + (bit >> 3)] >> (8 - depth - (bit & 7))) & mask) * scale);
        out.fill(v, 3 * (y * width + x), 3 * (y * width + x) + 3);
      }
    }
    return { width, height, data: out };
  }
  // 16-bit samples are rounded to 8 bits; grey (1-2 channels) is replicated, alpha is dropped.
  const scale = depth === 16 ? 255 / 65535 : 1;
  const colour = channels >= 3;
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < 3; c++) out[3 * p + c] = Math.round(src[p * channels + (colour ? c : 0)] * scale);
  }
  return { width, height, data: out };
}

/** Drops the 4th channel of RGBA (like PIL's convert('RGB'), which ignores alpha). */
function dropAlpha(data: Uint8Array | Uint8ClampedArray, n: number, channels: number): Uint8Array {
  if (channels === 3) return Uint8Array.from(data);
  const out = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) {
    out[3 * p] = data[4 * p];
    out[3 * p + 1] = data[4 * p + 1];
    out[3 * p + 2] = data[4 * p + 2];
  }
  return out;
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
}
