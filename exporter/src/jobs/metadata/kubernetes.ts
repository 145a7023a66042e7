import { readFileSync } from 'fs';
import * as https from 'https';
import * as path from 'path';
import type { JobMetadata, MetadataResolver } from './types';

/**
 * Pod metadata from the Kubernetes API: a discovered pod UID (from a kubepods cgroup path) →
 * namespace, pod and container names and the pod labels the user selects. The pods of this node
 * are listed (`fieldSelector=spec.nodeName=<node>`, paged) with the DaemonSet's service account —
 * RBAC: list pods, nothing else — at most once per `minListIntervalMs`, each request bounded in
 * time and size. A UID not in the cache triggers a list; the service retries later if still absent.
 */

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const PAGE = 500;
const MAX_BODY = 32 << 20;

export interface PodResolverOptions {
  /** https://host:port of the API server. */
  server: string;
  /** Bearer token, re-read from this file on each list (projected tokens rotate). */
  tokenFile: string;
  /** PEM CA bundle of the API server. */
  caFile: string;
  nodeName: string;
  /** Pod label keys copied into the job's labels (as label_<key>). */
  podLabels?: readonly string[];
  timeoutMs?: number;
  minListIntervalMs?: number;
}

/** The subset of a Pod this resolver reads. */
interface PodDoc {
  metadata?: { uid?: string; name?: string; namespace?: string; labels?: Record<string, string> };
  spec?: { containers?: Array<{ name?: string }> };
}

/** In-cluster settings from the environment, or why there are none. */
export function inClusterPodOptions(
  env: NodeJS.ProcessEnv,
  podLabels: readonly string[] = [],
  saDir = SERVICE_ACCOUNT_DIR,
): PodResolverOptions | { off: string } {
  const host = env.KUBERNETES_SERVICE_HOST;
  if (!host) return { off: 'KUBERNETES_SERVICE_HOST is not set (not running in a Kubernetes pod)' };
  const nodeName = env.NODE_NAME;
  if (!nodeName) return { off: 'NODE_NAME is not set (the chart sets it from spec.nodeName)' };
  const port = env.KUBERNETES_SERVICE_PORT || '443';
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    tokenFile: path.join(saDir, 'token'),
    caFile: path.join(saDir, 'ca.crt'),
    nodeName,
    podLabels,
  };
}

/** Job labels of one pod: a label name is [a-zA-Z_][a-zA-Z0-9_]*. */
export function podMetadata(pod: PodDoc, podLabels: readonly string[]): JobMetadata | undefined {
  const m = pod.metadata;
  if (!m?.uid || !m.name || !m.namespace) return undefined;
  const labels: Record<string, string> = { namespace: m.namespace, pod: m.name };
  const containers = (pod.spec?.containers ?? []).map((c) => c.name).filter((n): n is string => !!n);
  if (containers.length) labels.container = containers.join(',');
  for (const key of podLabels) {
    const v = m.labels?.[key];
    if (v !== undefined) labels[`label_${key.replace(/[^A-Za-z0-9_]/g, '_')}`] = v;
  }
  // No user: a pod has none (its namespace is in the labels).
  return { name: `${m.namespace}/${m.name}`, labels };
}

export class KubernetesPodResolver implements MetadataResolver {
  readonly scheduler = 'kubernetes';
  private pods = new Map<string, JobMetadata>();
  private lastList = 0;
  private listing: Promise<void> | undefined;

  constructor(private readonly opts: PodResolverOptions) {}

  async resolve(uid: string): Promise<JobMetadata | undefined> {
    const hit = this.pods.get(uid);
    if (hit) return hit;
    if (Date.now() - this.lastList >= (this.opts.minListIntervalMs ?? 5000)) await this.refresh();
    return this.pods.get(uid);
  }

  /** Lists this node's pods (one list at a time; concurrent callers share it). */
  refresh(): Promise<void> {
    this.listing ??= this.listAll().finally(() => {
      this.lastList = Date.now();
      this.listing = undefined;
    });
    return this.listing;
  }

  private async listAll(): Promise<void> {
    const next = new Map<string, JobMetadata>();
    let cont: string | undefined;
    for (let page = 0; page < 100; page++) {
      const q = new URLSearchParams({ fieldSelector: `spec.nodeName=${this.opts.nodeName}`, limit: String(PAGE) });
      if (cont) q.set('continue', cont);
      const list = (await this.get(`/api/v1/pods?${q.toString()}`)) as {
        kind?: string;
        items?: PodDoc[];
        metadata?: { continue?: string };
      };
      if (list.kind !== 'PodList' || !Array.isArray(list.items))
        throw new Error(`Kubernetes API: expected a PodList, got ${String(list.kind)}`);
      for (const pod of list.items) {
        const meta = podMetadata(pod, this.opts.podLabels ?? []);
        if (meta && pod.metadata?.uid) next.set(pod.metadata.uid, meta);
      }
      cont = list.metadata?.continue || undefined;
      if (!cont) break;
    }
    this.pods = next;
  }

  private get(pathAndQuery: string): Promise<unknown> {
    const token = readFileSync(this.opts.tokenFile, 'utf8').trim();
    const ca = readFileSync(this.opts.caFile);
    const url = new URL(pathAndQuery, this.opts.server);
    return new Promise((resolve, reject) => {
      const req = https.get(
        url,
        { ca, headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' }, timeout: this.opts.timeoutMs ?? 10_000 },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_BODY) req.destroy(new Error(`Kubernetes API: response over ${MAX_BODY} bytes`));
            else chunks.push(c);
          });
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode !== 200) {
              reject(new Error(`Kubernetes API ${url.pathname}: HTTP ${res.statusCode} ${body.slice(0, 200)}`));
              return;
            }
            try {
              resolve(JSON.parse(body));
            } catch {
              reject(new Error(`Kubernetes API ${url.pathname}: invalid JSON`));
            }
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`Kubernetes API: no answer in ${this.opts.timeoutMs ?? 10_000} ms`)));
      req.on('error', reject);
    });
  }
}
