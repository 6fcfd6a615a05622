// npm 11's install-script policy: `npm install` warns "N packages have install scripts not yet
// covered by allowScripts" for every dependency with a preinstall/install/postinstall script that
// package.json's `allowScripts` does not name. Every such package in node_modules must be named
// (and each name reviewed: esbuild's postinstall checks its platform binary; webgpu's removes
// macOS's quarantine attribute from dawn.node).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../', import.meta.url));

function withInstallScripts(dir: string, found = new Set<string>()): Set<string> {
  if (!existsSync(dir)) return found;
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.')) continue;
    const path = join(dir, name);
    if (name.startsWith('@')) {
      withInstallScripts(path, found);
      continue;
    }
    const manifest = join(path, 'package.json');
    if (!existsSync(manifest)) continue;
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { name: string; scripts?: Record<string, string> };
    if (['preinstall', 'install', 'postinstall'].some((s) => pkg.scripts?.[s]) || existsSync(join(path, 'binding.gyp'))) found.add(pkg.name);
    withInstallScripts(join(path, 'node_modules'), found);
  }
  return found;
}

describe('npm install', () => {
  it('every dependency with an install script is reviewed in package.json allowScripts', () => {
    const policy = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> }).allowScripts ?? {};
    const needed = [...withInstallScripts(join(repo, 'node_modules'))].sort();
    expect(needed.length).toBeGreaterThan(0);
    expect(needed.filter((name) => policy[name] === undefined)).toEqual([]);
    // no stale entries either
    expect(Object.keys(policy).filter((name) => !needed.includes(name))).toEqual([]);
  });
});
