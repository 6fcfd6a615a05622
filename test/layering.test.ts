// Dependencies point down only (DESIGN.md, README's layer table): every .ts file under a layer's
// folder may import from its own folder and from the layers below it, never from one above or
// beside it. Folders that do not exist yet (detection/, segmentation/, scene-graph/) are checked as
// soon as they do. Also: the browser-safe layers reach no Node built-in, except in node-*.ts files,
// which only Node entries import.
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The layer order, lowest first. A folder may import from lower ranks and from itself; folders on
 * one rank are peers and may not import each other. The root entries (index.ts, index.node.ts,
 * node-dawn.ts, node-quiet-stderr.ts) sit between the library and its programs.
 */
export const LAYERS: readonly (readonly string[])[] = [
  ['kernels'],
  ['autograd'],
  ['nn'],
  ['data'],
  ['longtail'],
  ['detection', 'segmentation'],
  ['scene-graph'],
  ['<entry>'],
  ['tasks', 'demo'],
  ['bench'],
];
/** Layers that run in browsers: no Node built-in, except in files named node-*.ts. */
const BROWSER_SAFE = ['kernels', 'autograd', 'nn', 'data', 'longtail', 'detection', 'segmentation', 'scene-graph', 'demo'];
const ENTRIES = ['index.ts', 'index.node.ts', 'node-dawn.ts', 'node-quiet-stderr.ts'];

const rank = new Map<string, number>(LAYERS.flatMap((fs, r) => fs.map((f) => [f, r] as [string, number])));

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The layer a repository path belongs to: its top folder, '<entry>' for the root entries, null for anything else (test/, scripts/). */
function layerOf(rel: string): string | null {
  const top = rel.split(sep)[0];
  if (rank.has(top)) return top;
  if (ENTRIES.includes(rel.replace(/\.js$/, '.ts'))) return '<entry>';
  return null;
}

/** Every module specifier a file imports or re-exports, dynamic imports included (TypeScript's own scanner). */
function importsOf(file: string): string[] {
  return ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles.map((f) => f.fileName);
}

const isBuiltin = (spec: string) => spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0]);

interface Edge { file: string; spec: string; target: string }

/** Why `file` may not import `target` (repository paths), or null when it may. */
function violation(file: string, target: string): string | null {
  const from = layerOf(file), to = layerOf(target);
  if (from === null) return null;
  if (to === null) return `outside every layer (${target})`;
  if (from === to) return null;
  if (rank.get(to)! > rank.get(from)!) return `${to} is a layer above ${from}`;
  if (rank.get(to) === rank.get(from)) return `${to} is a peer of ${from}`;
  return null;
}

function edges(): Edge[] {
  const files = [...ENTRIES.map((f) => join(root, f)).filter(existsSync), ...LAYERS.flat().filter((f) => f !== '<entry>' && existsSync(join(root, f))).flatMap((f) => tsFiles(join(root, f)))];
  return files.flatMap((abs) => importsOf(abs).filter((s) => s.startsWith('.')).map((spec) => ({
    file: relative(root, abs),
    spec,
    target: relative(root, resolve(dirname(abs), spec)),
  })));
}

describe('layering', () => {
  it('the layer table names each folder once, and the scan sees files', () => {
    expect(rank.size).toBe(LAYERS.flat().length);
    expect(edges().length).toBeGreaterThan(100);
  });

  it('no file imports from a layer above its own or from a peer', () => {
    const bad = edges().flatMap(({ file, spec, target }) => {
      const why = violation(file, target);
      return why ? [`${file} imports ${spec}: ${why}`] : [];
    });
    expect(bad).toEqual([]);
  });

  it('browser-safe layers import no Node built-in and no node-*.ts file, except from node-*.ts files', () => {
    const bad: string[] = [];
    for (const dir of BROWSER_SAFE) {
      if (!existsSync(join(root, dir))) continue;
      for (const abs of tsFiles(join(root, dir))) {
        const file = relative(root, abs);
        const nodeOnly = /(^|\/)node-[^/]*\.ts$/.test(file.split(sep).join('/'));
        if (nodeOnly) continue;
        for (const spec of importsOf(abs)) {
          if (isBuiltin(spec)) bad.push(`${file} imports the Node built-in ${spec}`);
          else if (spec.startsWith('.') && /(^|\/)node-[^/]*(\.js)?$/.test(spec)) bad.push(`${file} imports the Node-only ${spec}`);
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it('catches an upward or sideways import (the checker itself)', () => {
    expect(violation(join('nn', 'layers.ts'), join('longtail', 'losses.js'))).toBe('longtail is a layer above nn');
    expect(violation(join('kernels', 'matmul.ts'), 'index.js')).toBe('<entry> is a layer above kernels');
    expect(violation(join('data', 'augment.ts'), join('longtail', 'samplers.js'))).toBe('longtail is a layer above data');
    expect(violation(join('detection', 'x.ts'), join('segmentation', 'y.js'))).toBe('segmentation is a peer of detection');
    expect(violation(join('kernels', 'x.ts'), join('test', 'helpers.js'))).toBe(`outside every layer (${join('test', 'helpers.js')})`);
    expect(violation(join('longtail', 'runner.ts'), join('data', 'loader.js'))).toBeNull();
    expect(violation(join('bench', 'kernels.ts'), join('tasks', 'lib', 'pipeline.js'))).toBeNull();
    expect(violation('index.node.ts', join('data', 'node-index.js'))).toBeNull();
  });
});
