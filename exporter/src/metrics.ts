import { promisify } from 'util';
import { gzip } from 'zlib';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ExpositionRenderer, FAMILIES } from './exposition';
import { registerProcessMetrics } from './process-metrics';
import type { TickSnapshot } from './snapshot';
import { EMPTY_SNAPSHOT } from './snapshot';
import { VERSION } from './version';

/**
 * What /metrics serves: the latest published TickSnapshot, rendered once per snapshot version
 * and format (docs/design.md, section 1), plus a small prom-client registry for the exporter's own
 * operation (sample durations, build info, scrape cache hits, process_*).
 * Publishing a snapshot is one assignment, so a scrape sees one whole tick or the one before.
 * Rendering is lazy: the first scrape after a tick renders (and gzips) it, later scrapes of that
 * tick share the result, and a tick nobody scrapes costs nothing (at a 15 s scrape interval and
 * 1 s ticks, one rendering in fifteen ticks). Only while someone scrapes every tick (the last two
 * snapshots were both scraped) is a new snapshot rendered as it is published, so that its first
 * scrape does not wait.
 */

const gzipAsync = promisify(gzip);

export interface Rendered {
  /** The exposition in UTF-8, rendered once per snapshot and format (what an uncompressed scrape sends). */
  body: Buffer;
  /** `body` as a string, decoded when first read (tests and diagnostics; scrapes send the bytes). */
  readonly text: string;
  gzip?: Buffer;
  contentType: string;
}

interface CacheEntry {
  version: number;
  value: Promise<Rendered>;
  ready: boolean;
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

export class Metrics {
  /** Operational metrics only; energy lives in the snapshot. */
  readonly registry = new Registry();
  readonly sampleDuration: Histogram<'reader'>;
  readonly carbon: Gauge<'zone'>;
  readonly scrapeCacheHits: Counter;
  private snap: TickSnapshot = EMPTY_SNAPSHOT;
  private readonly renderer = new ExpositionRenderer();
  private readonly cache = new Map<string, CacheEntry>();
  /** The newest finished rendering per format and encoding (its version only ever grows). */
  private readonly ready = new Map<string, { version: number; value: Promise<Rendered> }>();
  /** The last scrape's format, and the versions of the last two snapshots scraped (newest first). */
  private lastScrape = { openMetrics: false, gzip: false, versions: [NaN, NaN] };

  constructor(mode: 'normal' | 'demo' = 'normal', opts: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.carbon = new Gauge({
      name: 'jouleflow_grid_carbon_intensity_grams_per_kwh',
      help: 'Configured carbon intensity of the grid feeding this node, in grams of CO2-equivalent per kWh.',
      labelNames: ['zone'],
      registers,
    });
    this.sampleDuration = new Histogram({
      name: 'jouleflow_sample_duration_seconds',
      help: 'Time taken by each reader (source) to read, in seconds.',
      labelNames: ['reader'],
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    const buildInfo = new Gauge({
      name: 'jouleflow_build_info',
      help: 'Always 1; labels give the exporter version, the Node.js version and the mode (normal or demo).',
      labelNames: ['version', 'node_version', 'mode'],
      registers,
    });
    buildInfo.set({ version: VERSION, node_version: process.version, mode }, 1);
    this.scrapeCacheHits = new Counter({
      name: 'jouleflow_scrape_cache_hits_total',
      help: 'Scrapes served from the text rendered for the current sampler tick.',
      registers,
    });
    // Every Prometheus exporter reports its own CPU, memory and file descriptors.
    if (opts.processMetrics !== false) registerProcessMetrics(this.registry);
  }

  /** The latest published snapshot (EMPTY_SNAPSHOT before the first tick). */
  get snapshot(): TickSnapshot {
    return this.snap;
  }

  /** Makes a tick's snapshot the one every renderer shows; renders it now only while every tick is scraped. */
  publish(snap: TickSnapshot): void {
    this.snap = snap;
    const { openMetrics, gzip, versions } = this.lastScrape;
    if (versions[0] === snap.version - 1 && versions[1] === snap.version - 2)
      void this.render(openMetrics, gzip, false).catch(() => undefined);
  }

  /**
   * The exposition of the current snapshot, rendered once per version and shared by concurrent
   * scrapers. `scrape = false` (diagnostics, tests) always waits for the current snapshot's text.
   */
  render(openMetrics: boolean, gzip: boolean, scrape = true): Promise<Rendered> {
    const snap = this.snap;
    if (scrape) {
      const versions = this.lastScrape.versions;
      this.lastScrape = { openMetrics, gzip, versions: versions[0] === snap.version ? versions : [snap.version, versions[0]] };
    }
    const key = `${openMetrics ? 'om' : 'prom'}:${gzip ? 'gz' : 'id'}`;
    const hit = this.cache.get(key);
    if (hit && hit.version === snap.version) {
      if (scrape) this.scrapeCacheHits.inc();
      // While this snapshot is still being written, a scrape gets the previous tick's text, whole, if
      // that one was rendered (exactly one tick old); otherwise it waits for this one (a few ms).
      // An older rendering is never served: ticks nobody scraped leave it many ticks behind.
      const ready = hit.ready || !scrape ? undefined : this.ready.get(key);
      return ready && ready.version === snap.version - 1 ? ready.value : hit.value;
    }
    const entry: CacheEntry = { version: snap.version, ready: false, value: Promise.resolve() as unknown as Promise<Rendered> };
    entry.value = (async (): Promise<Rendered> => {
      const body = await this.body(snap, openMetrics);
      let text: string | undefined;
      return {
        body,
        get text() {
          return (text ??= body.toString('utf8'));
        },
        gzip: gzip ? await gzipAsync(body, { level: 1 }) : undefined,
        contentType: openMetrics ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE,
      };
    })();
    void entry.value.then(
      () => {
        entry.ready = true;
        // A rendering that finishes late never replaces a newer one.
        if ((this.ready.get(key)?.version ?? -Infinity) < entry.version)
          this.ready.set(key, { version: entry.version, value: entry.value });
      },
      () => undefined,
    );
    this.cache.set(key, entry);
    return entry.value;
  }

  /** One exposition per snapshot and format: the gzip and identity variants share it. */
  private body(snap: TickSnapshot, openMetrics: boolean): Promise<Buffer> {
    const key = openMetrics ? 'om:text' : 'prom:text';
    const hit = this.bodies.get(key);
    if (hit && hit.version === snap.version) return hit.value;
    const value = this.renderer.renderBytes(snap, this.registry, openMetrics ? 'openmetrics' : 'prometheus');
    this.bodies.set(key, { version: snap.version, value });
    return value;
  }

  private readonly bodies = new Map<string, { version: number; value: Promise<Buffer> }>();

  /** One snapshot family's samples, as exposed (diagnostics and tests read what a scrape would). */
  samples(family: keyof typeof FAMILIES): Sample[] {
    const f = FAMILIES[family];
    const text = this.renderer.snapshotFamilies(this.snap, 'prometheus').find((t) => t.includes(`# TYPE ${f.name} `)) ?? '';
    return parseSamples(text);
  }

  /** `get()` views in prom-client's shape over the snapshot's node energy, source up and source errors. */
  get nodeEnergy(): FamilyView {
    return { get: async () => ({ values: this.samples('nodeEnergy') }) };
  }

  get nodePower(): FamilyView {
    return { get: async () => ({ values: this.samples('nodePower') }) };
  }

  get sourceUp(): FamilyView {
    return { get: async () => ({ values: this.samples('sourceUp') }) };
  }

  get sourceErrors(): FamilyView {
    return { get: async () => ({ values: this.samples('sourceErrors') }) };
  }
}

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

export interface FamilyView {
  get(): Promise<{ values: Sample[] }>;
}

/** Samples of exposition text (one family or several); label values unescaped. */
export function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.lastIndexOf(' ');
    const labels: Record<string, string> = {};
    if (brace >= 0) {
      const body = line.slice(brace + 1, line.lastIndexOf('}'));
      for (const m of body.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
        labels[m[1]] = m[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      }
    }
    out.push({ labels, value: Number(line.slice(space + 1)) });
  }
  return out;
}
