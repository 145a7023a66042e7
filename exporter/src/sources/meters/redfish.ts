import http from 'http';
import https from 'https';
import type { Logger } from '../../util/log';
import type { PointValue } from './common';
import { MeterSource, readMeterFile } from './common';
import { isObj, link, members, metricsLocators, num, pickSensors, type Json, type Plan } from './redfish-plan';
import type { RedfishMeterConfig } from './schema';

/**
 * A meter read over Redfish (HTTP(S), basic auth or a session token). Discovery finds where the
 * power and energy are, once, in this order of preference:
 *
 *   1. Chassis PowerSubsystem/PowerSupplies/{psu}/Metrics (InputPowerWatts, EnergykWh), summed
 *      over the PSUs that are present, used only when every present PSU has them;
 *   2. Chassis EnvironmentMetrics (PowerWatts, EnergykWh);
 *   3. Chassis Sensors of ReadingType Power / EnergykWh (the chassis total when there is one,
 *      LifetimeReading preferred over Reading for energy, which ResetMetrics does not clear);
 *   4. the deprecated Chassis Power PowerControl[0].PowerConsumedWatts.
 *
 * Energy and power are each taken from the first place that has them; the meter then prefers
 * energy. Facility equipment is named by `resource`: PowerEquipment/RackPDUs/{id} (its Metrics),
 * ThermalEquipment/CDUs/{id} (its EnvironmentMetrics, else its chassis). BMCs are slow: the plan
 * is cached (redone after a failure or `rediscover`), and reads happen at most every `minInterval`;
 * between reads the last values are reused.
 */

/**
 * Largest answer read from a BMC. Redfish documents are a few KiB (the largest DMTF mockup is
 * under 100 KiB); a service streaming hundreds of MB (seen: 400 MB) is cut off, not buffered.
 */
export const MAX_REDFISH_BODY_BYTES = 4 << 20;

export class RedfishHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class RedfishMeterSource extends MeterSource {
  private plan: Plan | undefined;
  private planAt = 0;
  private cached: PointValue[] | undefined;
  private cachedAt = 0;
  /** The last failed read: within minInterval of it the BMC is not asked again (a dead or refusing BMC is not hammered every tick). */
  private failed: { at: number; err: unknown } | undefined;
  private token: string | undefined;
  private sessionUri: string | undefined;
  private password: string | undefined;
  private ca: Buffer | undefined;
  private readonly agent: http.Agent;
  private readonly base: URL;
  /** Documents fetched during discovery, reused once by the read that follows it. */
  private fetched: Map<string, Json> | undefined;
  private discoveryDocs: Map<string, Json> | undefined;
  /** Requests made, for tests and the rate limit's own check. */
  requests = 0;

  constructor(
    private readonly cfg: RedfishMeterConfig,
    timeoutMs: number,
    log: Logger,
  ) {
    super('redfish', cfg, timeoutMs, log);
    this.base = new URL(cfg.url);
    this.agent =
      this.base.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, maxSockets: 2 })
        : new http.Agent({ keepAlive: true, maxSockets: 2 });
  }

  override async init(): Promise<boolean> {
    this.password = this.cfg.password;
    if (this.cfg.passwordFile)
      this.password = (await readMeterFile(this.cfg.name, 'passwordFile', this.cfg.passwordFile)).toString('utf8').trim();
    if (this.cfg.caFile) this.ca = await readMeterFile(this.cfg.name, 'caFile', this.cfg.caFile);
    return true;
  }

  private request(
    method: string,
    path: string,
    signal: AbortSignal,
    body?: Json,
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; json: unknown }> {
    const url = new URL(path, this.base);
    if (url.origin !== this.base.origin) {
      // An @odata.id pointing at another host or port: never followed, and never given our credentials.
      return Promise.reject(this.fail('bad_value', `${path}: link leaves the configured service ${this.base.origin}; not followed`));
    }
    const headers: Record<string, string> = { Accept: 'application/json', 'OData-Version': '4.0' };
    if (this.cfg.auth === 'basic' && this.cfg.username !== undefined) {
      headers.Authorization = 'Basic ' + Buffer.from(`${this.cfg.username}:${this.password ?? ''}`).toString('base64');
    } else if (this.cfg.auth === 'session' && this.token) {
      headers['X-Auth-Token'] = this.token;
    }
    const payload = body ? JSON.stringify(body) : undefined;
    if (payload) headers['Content-Type'] = 'application/json';
    this.requests++;
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(
        url,
        {
          method,
          headers,
          agent: this.agent,
          signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]),
          ...(url.protocol === 'https:' ? { ca: this.ca, rejectUnauthorized: !this.cfg.insecure } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          const tooLarge = () => {
            req.destroy();
            reject(this.fail('bad_value', `${url.pathname}: answer larger than ${MAX_REDFISH_BODY_BYTES} bytes; not read`));
          };
          if (Number(res.headers['content-length'] ?? 0) > MAX_REDFISH_BODY_BYTES) return tooLarge();
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_REDFISH_BODY_BYTES) return tooLarge();
            chunks.push(c);
          });
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown = undefined;
            try {
              json = text ? JSON.parse(text) : undefined;
            } catch {
              if ((res.statusCode ?? 0) < 300) return reject(this.fail('bad_value', `${url.pathname}: the answer is not JSON`));
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, json });
          });
        },
      );
      req.on('error', (err: Error & { code?: string }) => {
        if (err.name === 'AbortError' || err.name === 'TimeoutError' || err.code === 'ABORT_ERR') {
          reject(this.fail('timeout', `${url.origin}${url.pathname}: no answer within ${this.timeoutMs}ms`));
        } else if (/certificate|self.signed|SSL|TLS/i.test(err.message + (err.code ?? ''))) {
          reject(this.fail('tls', `${url.origin}: TLS verification failed (${err.code ?? err.message}); give caFile, or insecure: true`));
        } else reject(this.fail('connect', `${url.origin}: ${err.code ?? err.message}`));
      });
      if (payload) req.write(payload);
      req.end();
    });
  }

  private async login(signal: AbortSignal): Promise<void> {
    const res = await this.request('POST', '/redfish/v1/SessionService/Sessions', signal, {
      UserName: this.cfg.username ?? '',
      Password: this.password ?? '',
    });
    const token = res.headers['x-auth-token'];
    if (res.status === 401 || res.status === 403)
      throw this.fail('auth', `${this.base.origin}: login refused (HTTP ${res.status}): wrong username or password`);
    if (res.status >= 300 || typeof token !== 'string')
      throw this.fail('auth', `${this.base.origin}: session login failed (HTTP ${res.status})`);
    this.token = token;
    const loc = res.headers.location;
    this.sessionUri = typeof loc === 'string' ? new URL(loc, this.base).pathname : undefined;
  }

  /** GET a Redfish document, logging in (session auth) as needed. */
  private async get(path: string, signal: AbortSignal): Promise<Json> {
    const fresh = this.discoveryDocs?.get(path);
    if (fresh) {
      // The first read after discovery uses the documents discovery just fetched.
      this.discoveryDocs?.delete(path);
      return fresh;
    }
    if (this.cfg.auth === 'session' && !this.token) await this.login(signal);
    let res = await this.request('GET', path, signal);
    if (res.status === 401 && this.cfg.auth === 'session') {
      this.token = undefined;
      await this.login(signal);
      res = await this.request('GET', path, signal);
    }
    if (res.status === 401 || res.status === 403) {
      throw this.fail('auth', `GET ${path}: HTTP ${res.status}: wrong username or password, or no permission`);
    }
    if (res.status === 404) throw new RedfishHttpError(404, `GET ${path}: HTTP 404`);
    if (res.status >= 300) throw this.fail('read', `GET ${path}: HTTP ${res.status}`);
    if (!isObj(res.json)) throw this.fail('bad_value', `GET ${path}: not a JSON object`);
    this.fetched?.set(path, res.json);
    return res.json;
  }

  private async tryGet(path: string | undefined, signal: AbortSignal): Promise<Json | undefined> {
    if (!path) return undefined;
    try {
      return await this.get(path, signal);
    } catch (err) {
      if (err instanceof RedfishHttpError) return undefined;
      throw err;
    }
  }

  private async *chassisSteps(chassisPath: string, signal: AbortSignal): AsyncGenerator<Plan> {
    const chassis = await this.tryGet(chassisPath, signal);
    if (!chassis) return;
    // 1. PSU metrics, only when every present PSU has them (a sum over some PSUs undercounts).
    const subsystem = await this.tryGet(link(chassis, 'PowerSubsystem'), signal);
    const psuCollection = subsystem ? await this.tryGet(link(subsystem, 'PowerSupplies'), signal) : undefined;
    if (psuCollection) {
      const psu: Plan = { energy: [], power: [], from: `${chassisPath} PowerSupplies` };
      let allPower = true;
      let allEnergy = true;
      let present = 0;
      for (const m of members(psuCollection)) {
        const doc = await this.tryGet(m, signal);
        if (!doc) continue;
        const state = isObj(doc.Status) ? doc.Status.State : undefined;
        if (state === 'Absent') continue;
        present++;
        const metricsPath = link(doc, 'Metrics');
        const metrics = await this.tryGet(metricsPath, signal);
        const l = metrics && metricsPath ? metricsLocators(metricsPath, metrics, 'InputPowerWatts') : undefined;
        if (l?.power.length) psu.power.push(...l.power);
        else allPower = false;
        if (l?.energy.length) psu.energy.push(...l.energy);
        else allEnergy = false;
      }
      if (present > 0) yield { energy: allEnergy ? psu.energy : [], power: allPower ? psu.power : [], from: psu.from };
    }
    // 2. EnvironmentMetrics.
    const envPath = link(chassis, 'EnvironmentMetrics');
    const env = await this.tryGet(envPath, signal);
    if (env && envPath) yield metricsLocators(envPath, env);
    // 3. Sensors.
    const sensors = await this.tryGet(link(chassis, 'Sensors'), signal);
    if (sensors) {
      const docs: Array<{ path: string; doc: Json }> = [];
      for (const m of members(sensors)) {
        const doc = await this.tryGet(m, signal);
        if (doc && ['Power', 'EnergykWh', 'EnergyWh', 'Heat'].includes(String(doc.ReadingType))) docs.push({ path: m, doc });
      }
      yield {
        energy: pickSensors(docs, 'energy'),
        power: pickSensors(docs, 'power'),
        thermal: pickSensors(docs, 'thermal_power'),
        from: `${chassisPath} Sensors`,
      };
    }
    // 4. Deprecated Power resource.
    const powerPath = link(chassis, 'Power');
    const power = await this.tryGet(powerPath, signal);
    if (power && powerPath && Array.isArray(power.PowerControl) && isObj(power.PowerControl[0])) {
      const extract = (doc: Json) =>
        Array.isArray(doc.PowerControl) && isObj(doc.PowerControl[0]) ? num(doc.PowerControl[0].PowerConsumedWatts) : undefined;
      if (extract(power) !== undefined)
        yield {
          energy: [],
          power: [{ path: powerPath, kind: 'power', extract, unit: 'W', label: `${powerPath} PowerControl[0].PowerConsumedWatts` }],
          from: powerPath,
        };
    }
  }

  /** The places that may carry power or energy, in order of preference, fetched lazily. */
  private async *candidates(signal: AbortSignal): AsyncGenerator<Plan> {
    if (this.cfg.resource) {
      const doc = await this.get(this.cfg.resource, signal);
      yield metricsLocators(this.cfg.resource, doc);
      for (const key of ['Metrics', 'EnvironmentMetrics']) {
        const p = link(doc, key);
        const sub = await this.tryGet(p, signal);
        if (sub && p) yield metricsLocators(p, sub);
      }
      const type = typeof doc['@odata.type'] === 'string' ? doc['@odata.type'] : '';
      if (type.startsWith('#Chassis.')) yield* this.chassisSteps(this.cfg.resource, signal);
      const links = isObj(doc.Links) && Array.isArray(doc.Links.Chassis) ? doc.Links.Chassis.filter(isObj) : [];
      const chassisLink = links[0]?.['@odata.id'];
      if (typeof chassisLink === 'string') yield* this.chassisSteps(chassisLink, signal);
      return;
    }
    const ids = this.cfg.chassis ? [`/redfish/v1/Chassis/${this.cfg.chassis}`] : members(await this.get('/redfish/v1/Chassis', signal));
    if (this.cfg.chassis && !(await this.tryGet(ids[0], signal))) throw this.fail('read', `GET ${ids[0]}: HTTP 404 (no such chassis)`);
    for (const c of ids) {
      let found = false;
      for await (const p of this.chassisSteps(c, signal)) {
        found ||= p.energy.length > 0 || p.power.length > 0;
        yield p;
      }
      // The first chassis that reports power is the meter (nested chassis would count twice).
      if (found) return;
    }
  }

  private async discover(signal: AbortSignal): Promise<Plan> {
    let energy: Plan | undefined;
    let power: Plan | undefined;
    let thermal: Plan | undefined;
    for await (const p of this.candidates(signal)) {
      if (!power && p.power.length) power = p;
      if (!thermal && p.thermal?.length) thermal = p;
      if (p.energy.length) {
        energy = p;
        break; // energy counters win; nothing further is needed
      }
    }
    // Heat removed measures cooling: an IT meter never falls back to it (pointsToReading refuses it too).
    if (!energy && !power && thermal && this.cfg.role !== 'it') {
      const plan = { energy: [], power: [], thermal: thermal.thermal, from: thermal.from };
      this.log.info('redfish discovery: only heat removed, converted through the COP', {
        meter: this.cfg.name,
        thermal: plan.thermal?.map((l) => l.label).join(', '),
      });
      return plan;
    }
    if (!energy && !power) {
      throw this.fail(
        'unsupported',
        `${this.base.origin}${this.cfg.resource ?? ''}: no power or energy reading found (PSU Metrics, EnvironmentMetrics, Sensors, Power)${
          thermal ? '; only heat-removed (ReadingType Heat) sensors, which an IT meter cannot use' : ''
        }`,
      );
    }
    const plan = { energy: energy?.energy ?? [], power: power?.power ?? [], from: [energy?.from, power?.from].filter(Boolean).join(' + ') };
    this.log.info('redfish discovery', {
      meter: this.cfg.name,
      energy: plan.energy.map((l) => l.label).join(', '),
      power: plan.power.map((l) => l.label).join(', '),
    });
    return plan;
  }

  protected async readPoints(signal: AbortSignal): Promise<PointValue[]> {
    const now = Date.now();
    if (this.cached && now - this.cachedAt < this.cfg.minInterval) return this.cached;
    if (this.failed && now - this.failed.at < this.cfg.minInterval) throw this.failed.err;
    this.failed = undefined;
    try {
      if (!this.plan || now - this.planAt > this.cfg.rediscover) {
        this.fetched = new Map();
        try {
          this.plan = await this.discover(signal);
        } finally {
          this.discoveryDocs = this.fetched;
          this.fetched = undefined;
        }
        this.planAt = now;
      }
      const plan = this.plan;
      const docs = new Map<string, Json>();
      const out: PointValue[] = [];
      for (const l of [...plan.energy, ...plan.power, ...(plan.thermal ?? [])]) {
        let doc = docs.get(l.path);
        if (!doc) {
          doc = await this.get(l.path, signal);
          docs.set(l.path, doc);
        }
        const v = l.extract(doc);
        if (v === undefined) throw this.fail('bad_value', `${l.label}: missing from the answer`);
        out.push({ label: l.label, kind: l.kind, unit: l.unit, scale: 1, raw: v });
      }
      this.discoveryDocs = undefined;
      this.cached = out;
      this.cachedAt = now;
      return out;
    } catch (err) {
      // Rediscover on the next read: the BMC may have been reset or reconfigured.
      this.plan = undefined;
      this.cached = undefined;
      this.discoveryDocs = undefined;
      const e = err instanceof RedfishHttpError ? this.fail('read', err.message) : err;
      this.failed = { at: now, err: e };
      throw e;
    }
  }

  protected override secrets(): Array<string | undefined> {
    const basic =
      this.cfg.username !== undefined ? Buffer.from(`${this.cfg.username}:${this.password ?? ''}`).toString('base64') : undefined;
    return [this.password, this.cfg.password, this.token, basic];
  }

  async close(): Promise<void> {
    if (this.token && this.sessionUri) {
      await this.request('DELETE', this.sessionUri, AbortSignal.timeout(this.timeoutMs)).catch(() => undefined);
    }
    this.agent.destroy();
  }
}
