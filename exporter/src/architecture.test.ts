import { readdirSync, readFileSync } from 'fs';
import { dirname, join, relative, resolve } from 'path';

/**
 * The layering of docs/design.md, section 1, checked on the source text so that it stays true:
 * the vocabulary (core.ts) imports nothing; util/ only itself and core; sources/ and model/ only
 * core, util/ and their own folder (a source never applies the model, the model never reads
 * hardware), and neither reaches up to jobs/, metrics, sampler or config; jobs/ never reaches up to
 * the sampler, metrics or the renderers. And every comment that cites a section of docs/design.md
 * names one that exists.
 */

const SRC = __dirname;
const ROOT = resolve(SRC, '../..');

function files(dir: string, keep: (f: string) => boolean): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'fixtures' ? [] : files(p, keep);
    return keep(p) ? [p] : [];
  });
}

const isCode = (f: string) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.d.ts');

/** Relative module specifiers a file imports (static, dynamic, require), as paths under exporter/src. */
export function importsOf(file: string, text = readFileSync(file, 'utf8')): string[] {
  const specs = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)'([^']+)'/gm)].map((m) => m[1]);
  return specs.filter((s) => s.startsWith('.')).map((s) => relative(SRC, resolve(dirname(file), s)));
}

/** Where a module lives, as the layering sees it: "core", "util", "sources", "model", or its own name. */
function layerOf(modulePath: string): string {
  const top = modulePath.split('/')[0];
  return top === 'core' || top === 'core.ts' ? 'core' : top.replace(/\.ts$/, '');
}

/** Layers each layer may import (besides npm packages and Node's own modules). */
const ALLOWED: Record<string, readonly string[]> = {
  core: [],
  util: ['util', 'core'],
  sources: ['sources', 'util', 'core'],
  model: ['model', 'util', 'core'],
};

test('the import scanner sees static, type, dynamic and require imports', () => {
  const f = join(SRC, 'sources/x.ts');
  const text = [
    "import type { A } from '../model/energy';",
    "import { B } from './types';",
    "const k = await import('../config');",
    "const j = require('../jobs/tracker');",
    "import '../metrics';",
    "import z from 'zod';",
  ].join('\n');
  expect(importsOf(f, text)).toEqual(['model/energy', 'sources/types', 'config', 'jobs/tracker', 'metrics']);
});

test.each(Object.entries(ALLOWED))('%s imports only from %j', (layer, allowed) => {
  const roots = layer === 'core' ? [join(SRC, 'core.ts')] : files(join(SRC, layer), isCode);
  expect(roots.length).toBeGreaterThan(0);
  const wrong = roots.flatMap((f) =>
    importsOf(f)
      .filter((m) => !allowed.includes(layerOf(m)))
      .map((m) => `${relative(SRC, f)} → ${m}`),
  );
  expect(wrong).toEqual([]);
});

/** Layers that must not reach the ones above them: jobs feed the sampler, never the other way round. */
const FORBIDDEN: Record<string, readonly string[]> = {
  jobs: ['sampler', 'metrics', 'exposition', 'snapshot', 'server', 'exporter', 'main', 'cli'],
};

test.each(Object.entries(FORBIDDEN))('%s never imports %j', (layer, forbidden) => {
  const wrong = files(join(SRC, layer), isCode).flatMap((f) =>
    importsOf(f)
      .filter((m) => forbidden.includes(layerOf(m)))
      .map((m) => `${relative(SRC, f)} → ${m}`),
  );
  expect(wrong).toEqual([]);
});

test('every comment citing docs/design.md names a section that exists there', () => {
  const design = readFileSync(join(ROOT, 'docs/design.md'), 'utf8');
  const sections = new Set([...design.matchAll(/^## (\d+)\./gm)].map((m) => m[1]));
  expect(sections.size).toBeGreaterThan(3);
  const cited = [...files(join(ROOT, 'exporter/src'), (f) => f.endsWith('.ts')), ...files(join(ROOT, 'test'), (f) => f.endsWith('.ts'))]
    .filter((f) => f !== __filename)
    .flatMap((f) =>
      [...readFileSync(f, 'utf8').matchAll(/design(?:\.md)?,? *(?:§ *|section )(\d+)/g)].map((m) => ({
        at: relative(ROOT, f),
        section: m[1],
      })),
    );
  expect(cited.length).toBeGreaterThan(5);
  expect(cited.filter((c) => !sections.has(c.section))).toEqual([]);
});
