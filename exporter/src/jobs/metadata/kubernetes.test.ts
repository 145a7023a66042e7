import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as https from 'https';
import type { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import { Pod } from 'kubernetes-models/v1/Pod';
import { PodList } from 'kubernetes-models/v1/PodList';
import { FakeProcfs } from '../../../../test/jobs/fakeproc';
import { parseConfig } from '../../config';
import { createLogger, silentLogger } from '../../util/log';
import { attachMetadata } from '../index';
import { JobTracker } from '../tracker';
import { defaultResolvers } from './index';
import { inClusterPodOptions, KubernetesPodResolver } from './kubernetes';

/**
 * The pod metadata client against a local HTTPS API server (self-signed CA from openssl) that
 * serves PodList documents validated against the official schema (kubernetes-models), filters by
 * the fieldSelector itself, pages with `continue`, and checks the bearer token like the API does.
 */

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jf-k8s-'));
const TOKEN = 'sa-token-123';
let server: https.Server;
let url: string;
let requests: URL[] = [];
let hang = false;

/** A self-signed certificate (it is its own CA) in `dir`. */
function selfSigned(cn: string, key: string, cert: string, ext?: string): void {
  const args = `req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=${cn}`.split(' ');
  if (ext) args.push('-addext', ext);
  execFileSync('openssl', [...args, '-keyout', path.join(dir, key), '-out', path.join(dir, cert)], { stdio: 'ignore' });
}

function pod(uid: string, name: string, namespace: string, node: string, labels: Record<string, string> = {}): Pod {
  const p = new Pod({
    metadata: { uid, name, namespace, labels },
    spec: {
      nodeName: node,
      containers: [
        { name: 'trainer', image: 'pytorch:2' },
        { name: 'sidecar', image: 'envoy:1' },
      ],
    },
  });
  p.validate();
  return p;
}

const PODS = [
  pod('11111111-2222-3333-4444-555555555555', 'gpt2-train-0', 'ml', 'node-a', { team: 'nlp', 'app.kubernetes.io/name': 'gpt2' }),
  pod('66666666-7777-8888-9999-000000000000', 'bert-train-0', 'ml', 'node-a'),
  pod('aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee', 'elsewhere', 'ml', 'node-b'),
];

beforeAll(async () => {
  selfSigned('kubernetes', 'key.pem', 'ca.crt', 'subjectAltName=IP:127.0.0.1');
  fs.writeFileSync(path.join(dir, 'token'), `${TOKEN}\n`);
  server = https.createServer(
    { key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'ca.crt')) },
    (req, res) => {
      const u = new URL(req.url ?? '/', 'https://127.0.0.1');
      requests.push(u);
      if (hang) return; // never answers
      if (req.headers.authorization !== `Bearer ${TOKEN}`) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"kind":"Status","code":401}');
        return;
      }
      if (u.pathname !== '/api/v1/pods') {
        res.writeHead(404).end();
        return;
      }
      const node = /^spec\.nodeName=(.+)$/.exec(u.searchParams.get('fieldSelector') ?? '')?.[1];
      const matching = PODS.filter((p) => node === undefined || p.spec?.nodeName === node);
      const limit = Number(u.searchParams.get('limit') ?? 500);
      const from = Number(u.searchParams.get('continue') ?? 0);
      // Pages of one pod when the client asks for more than one: exercises `continue`.
      const size = Math.min(limit, 1);
      const items = matching.slice(from, from + size);
      const list = new PodList({
        metadata: from + size < matching.length ? { continue: String(from + size) } : {},
        items,
      });
      list.validate();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(list.toJSON()));
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  requests = [];
  hang = false;
});

function resolver(extra: Partial<ConstructorParameters<typeof KubernetesPodResolver>[0]> = {}): KubernetesPodResolver {
  return new KubernetesPodResolver({
    server: url,
    tokenFile: path.join(dir, 'token'),
    caFile: path.join(dir, 'ca.crt'),
    nodeName: 'node-a',
    podLabels: ['team', 'app.kubernetes.io/name'],
    minListIntervalMs: 0,
    ...extra,
  });
}

describe('KubernetesPodResolver', () => {
  it("resolves a pod UID on this node to namespace/pod, containers and the selected labels, listing only this node's pods", async () => {
    const r = resolver();
    expect(await r.resolve('11111111-2222-3333-4444-555555555555')).toEqual({
      name: 'ml/gpt2-train-0',
      labels: {
        namespace: 'ml',
        pod: 'gpt2-train-0',
        container: 'trainer,sidecar',
        label_team: 'nlp',
        label_app_kubernetes_io_name: 'gpt2',
      },
    });
    expect(requests.every((u) => u.searchParams.get('fieldSelector') === 'spec.nodeName=node-a')).toBe(true);
    // Two pods on node-a, one per page: two requests, the second with `continue`.
    expect(requests.map((u) => u.searchParams.get('continue'))).toEqual([null, '1']);
    // Cached: the second pod needs no request.
    expect((await r.resolve('66666666-7777-8888-9999-000000000000'))?.name).toBe('ml/bert-train-0');
    expect(requests).toHaveLength(2);
  });

  it('a pod of another node is unknown', async () => {
    expect(await resolver().resolve('aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee')).toBeUndefined();
  });

  it('lists at most once per minListIntervalMs for unknown UIDs', async () => {
    const r = resolver({ minListIntervalMs: 60_000 });
    expect(await r.resolve('ffffffff-0000-0000-0000-000000000000')).toBeUndefined();
    const n = requests.length;
    expect(await r.resolve('ffffffff-0000-0000-0000-000000000001')).toBeUndefined();
    expect(requests).toHaveLength(n);
  });

  it('a wrong token is an error naming the HTTP status', async () => {
    fs.writeFileSync(path.join(dir, 'bad-token'), 'nope');
    await expect(resolver({ tokenFile: path.join(dir, 'bad-token') }).resolve('x')).rejects.toThrow(/HTTP 401/);
  });

  it('a hanging API server is bounded by the timeout', async () => {
    hang = true;
    await expect(resolver({ timeoutMs: 300 }).resolve('x')).rejects.toThrow(/no answer in 300 ms/);
  });

  it('an untrusted server certificate is refused', async () => {
    selfSigned('other', 'k2.pem', 'other-ca.crt');
    await expect(resolver({ caFile: path.join(dir, 'other-ca.crt') }).resolve('x')).rejects.toThrow(/certificate/i);
  });
});

describe('a discovered pod gets its name', () => {
  it('kubepods cgroup → job <uid> → the API → jouleflow job "ml/gpt2-train-0" with its namespace, pod and container labels', async () => {
    const fake = new FakeProcfs();
    const config = parseConfig({});
    const registry = new JobTracker({
      procfs: fake.root,
      log: silentLogger,
      liveCap: 10,
      retentionMs: 60_000,
      checkpointMs: 1000,
      carbon: config.carbon,
      discovery: { slurm: false, kubernetes: true, env: false },
    });
    const service = attachMetadata(registry, config, silentLogger, [resolver()]);
    try {
      fake.set(900, {
        ppid: 1,
        starttime: 50_000,
        cgroup: '0::/kubepods.slice/kubepods-pod11111111_2222_3333_4444_555555555555.slice/cri-containerd-1.scope\n',
      });
      registry.measure(Date.now(), []);
      const uid = '11111111-2222-3333-4444-555555555555';
      expect(registry.get(uid)?.name).toBe(`pod ${uid}`);
      await service.idle();
      expect(registry.get(uid)).toMatchObject({
        name: 'ml/gpt2-train-0',
        scheduler: 'kubernetes',
        labels: { namespace: 'ml', pod: 'gpt2-train-0', container: 'trainer,sidecar', label_team: 'nlp' },
      });
    } finally {
      service.close();
      registry.close();
      fake.cleanup();
    }
  });
});

describe('in-cluster settings', () => {
  it('KUBERNETES_SERVICE_HOST absent: pod metadata off, one info line', () => {
    const lines: string[] = [];
    const log = createLogger('info', 'logfmt', (l) => lines.push(l));
    expect(defaultResolvers({ slurm: false, kubernetes: true }, log, { PATH: '' })).toEqual([]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/level=info .*Kubernetes pod metadata off: KUBERNETES_SERVICE_HOST is not set/);
  });

  it('in a pod: the API server from the service environment, the node from NODE_NAME', () => {
    expect(
      inClusterPodOptions({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', NODE_NAME: 'gpu-7' }, ['team'], '/sa'),
    ).toEqual({
      server: 'https://10.96.0.1:443',
      tokenFile: '/sa/token',
      caFile: '/sa/ca.crt',
      nodeName: 'gpu-7',
      podLabels: ['team'],
    });
    expect(inClusterPodOptions({ KUBERNETES_SERVICE_HOST: 'fd00::1', NODE_NAME: 'n' })).toMatchObject({ server: 'https://[fd00::1]:443' });
    expect(inClusterPodOptions({ KUBERNETES_SERVICE_HOST: '10.96.0.1' })).toEqual({ off: expect.stringMatching(/NODE_NAME/) });
  });

  it('no scontrol on PATH: Slurm metadata off, one info line', () => {
    const lines: string[] = [];
    const log = createLogger('info', 'logfmt', (l) => lines.push(l));
    expect(defaultResolvers({ slurm: true, kubernetes: false }, log, { PATH: dir })).toEqual([]);
    expect(lines).toEqual([expect.stringMatching(/Slurm job metadata off: no scontrol on PATH/)]);
  });
});
