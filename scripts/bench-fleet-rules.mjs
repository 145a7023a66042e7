// The recording rules of dashboards/alerts backfilled over the fleet of `npm run bench:fleet`, on
// each store by its own rule engine: `promtool tsdb create-blocks-from rules` for Prometheus,
// `vmalert -replay` for VictoriaMetrics.
//
// Neither sees, within one pass, what a rule recorded earlier in the same pass (promtool queries
// the Prometheus it was pointed at; vmalert only after its remote write lands), whereas a live
// group evaluates its rules in order and each sees the ones before it. So rules are backfilled in
// levels: level 0 reads raw series only, level n reads series recorded at levels < n, and each
// level's output is in the store before the next level runs.
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { run, start, startPrometheus, stop } from './bench-fleet-stores.mjs';

/** Rule files split by level (alerting rules left out): [{ level, file }], written under dir. */
export function ruleLevels(ruleFiles, dir) {
  const groups = ruleFiles.flatMap((f) => parseYaml(readFileSync(f, 'utf8')).groups);
  const rules = groups.flatMap((g) => g.rules.filter((r) => r.record).map((r) => ({ g, r })));
  const names = new Set(rules.map(({ r }) => r.record));
  const level = new Map();
  const levelOf = (name, seen = new Set()) => {
    if (level.has(name)) return level.get(name);
    if (seen.has(name)) throw new Error(`recording rules depend on each other in a cycle through ${name}`);
    seen.add(name);
    const reads = rules
      .filter(({ r }) => r.record === name)
      .flatMap(({ r }) => [...r.expr.matchAll(/[a-zA-Z_:][\w:]*/g)].map((m) => m[0]).filter((n) => n !== name && names.has(n)));
    const l = reads.length ? 1 + Math.max(...reads.map((n) => levelOf(n, seen))) : 0;
    level.set(name, l);
    return l;
  };
  const levels = [];
  for (const { r } of rules) levels[levelOf(r.record)] = true;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return levels.map((_, l) => {
    const file = join(dir, `level-${l}.rules.yml`);
    const kept = groups
      .map((g) => ({ ...g, rules: g.rules.filter((r) => r.record && level.get(r.record) === l) }))
      .filter((g) => g.rules.length);
    writeFileSync(file, toYaml({ groups: kept }));
    return { level: l, file };
  });
}

/** Backfills every level into Prometheus (restarted on the new blocks) and VictoriaMetrics. */
export async function backfillRules({ work, prom, vmUrl, ruleFiles, BEGIN, END, STEP, log }) {
  const levels = ruleLevels(ruleFiles, join(work, 'rule-levels'));
  let t0 = performance.now();
  for (const { level, file } of levels) {
    log(`recording rules, level ${level}: promtool tsdb create-blocks-from rules`);
    const out = join(work, 'rule-blocks');
    rmSync(out, { recursive: true, force: true });
    run('promtool', [
      'tsdb',
      'create-blocks-from',
      'rules',
      `--start=${BEGIN}`,
      `--end=${END}`,
      `--url=${prom.url}`,
      `--output-dir=${out}`,
      `--eval-interval=${STEP}s`,
      file,
    ]);
    await stop(prom.child);
    for (const b of readdirSync(out)) renameSync(join(out, b), join(work, 'prom', b));
    prom = await startPrometheus(work);
  }
  const promtool = Math.round((performance.now() - t0) / 1000);
  t0 = performance.now();
  const iso = (sec) => new Date(sec * 1000).toISOString();
  for (const { level, file } of levels) {
    log(`recording rules, level ${level}: vmalert -replay`);
    const replay = start('vmalert', [
      `-rule=${file}`,
      `-datasource.url=${vmUrl}`,
      `-remoteWrite.url=${vmUrl}`,
      `-replay.timeFrom=${iso(BEGIN)}`,
      `-replay.timeTo=${iso(END)}`,
      '-replay.disableProgressBar',
      '-replay.rulesDelay=0s', // a level reads only earlier levels, flushed before it starts
      `-evaluationInterval=${STEP}s`,
      '-datasource.queryStep=0s', // range queries at each group's interval; the default (5m) keeps one sample in five
      '-loggerLevel=ERROR',
    ]);
    const code = await new Promise((r) => replay.once('exit', r));
    if (code !== 0) throw new Error(`vmalert -replay failed:\n${replay.logs()}`);
    await fetch(`${vmUrl}/internal/force_flush`);
  }
  return { prom, seconds: { promtool, vmalert: Math.round((performance.now() - t0) / 1000) } };
}
