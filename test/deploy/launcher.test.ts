import { readFileSync } from 'fs';
import { join } from 'path';
import { ROOT, startServe } from '../helpers/exporter-process';

/**
 * The `jouleflow` command (exporter/bin/jouleflow.js, also the image's entrypoint) starts Node
 * through its shebang with the V8 flags the README's Performance section justifies: `env -S`
 * must split them on this system, and the exporter must then serve.
 */

test('bin/jouleflow.js serve runs node with --max-semi-space-size=2 and serves /metrics', async () => {
  const launcher = join(ROOT, 'exporter/bin/jouleflow.js');
  const s = await startServe([], {}, 20_000, launcher);
  try {
    const argv = readFileSync(`/proc/${s.child.pid}/cmdline`, 'utf8').split('\0');
    expect(argv.slice(0, 3)).toEqual(['node', '--max-semi-space-size=2', launcher]);
    expect(await (await fetch(`${s.url}/metrics`)).text()).toMatch(/^jouleflow_build_info\{/m);
  } finally {
    expect(await s.stop('SIGTERM')).toBe(0);
  }
});
