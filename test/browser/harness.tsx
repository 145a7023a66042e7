/**
 * Browser harness (bundled with esbuild by panel.browser.test.ts). It supplies React, @emotion/css and @grafana/* to
 * the *built* plugin (grafana-plugin/dist/module.js) through a small AMD `define` shim, as Grafana does, then mounts
 * the plugin's panel inside Grafana's ThemeContext with fixture frames.
 *
 * URL parameters: theme=dark|light, fixture=<PANEL_FIXTURES name>, options=<JSON of EnergySplitOptions overrides>,
 * w, h (panel size), unit (field config unit).
 */
import * as emotionCss from '@emotion/css';
import * as grafanaData from '@grafana/data';
import * as grafanaRuntime from '@grafana/runtime';
import * as grafanaUi from '@grafana/ui';
import * as React from 'react';
import * as ReactDOM from 'react-dom';
import * as ReactDOMClient from 'react-dom/client';
import * as jsxRuntime from 'react/jsx-runtime';

import { PANEL_FIXTURES } from '../../grafana-plugin/src/fixtures';

const PLUGIN_URL = '/public/plugins/jouleflow-energysplit-panel/module.js';

type Win = typeof window & {
  define?: ((deps: string[], factory: (...args: unknown[]) => unknown) => void) & { amd?: boolean };
  __jfReady?: boolean;
  __jfError?: string;
  __jfRenderMs?: number;
};
const win = window as Win;

const SHARED: Record<string, unknown> = {
  react: React,
  'react-dom': ReactDOM,
  'react-dom/client': ReactDOMClient,
  'react/jsx-runtime': jsxRuntime,
  '@emotion/css': emotionCss,
  '@grafana/data': grafanaData,
  '@grafana/ui': grafanaUi,
  '@grafana/runtime': grafanaRuntime,
};

/** Loads an AMD module (webpack `libraryTarget: amd`) the way Grafana's SystemJS does, with shared dependencies. */
function loadAmdModule(url: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const define = (deps: string[], factory: (...args: unknown[]) => unknown) => {
      try {
        const args = deps.map((d) => {
          if (d === 'module') {
            return { id: url, uri: url };
          }
          if (!(d in SHARED)) {
            throw new Error(`AMD shim: the plugin needs "${d}", which the harness does not provide`);
          }
          return SHARED[d];
        });
        resolve(factory(...args) as Record<string, unknown>);
      } catch (e) {
        reject(e);
      }
    };
    define.amd = true;
    win.define = define;
    const script = document.createElement('script');
    script.src = url;
    script.onerror = () => reject(new Error(`failed to load ${url}`));
    document.head.appendChild(script);
  });
}

function Ready({ start }: { start: number }) {
  React.useEffect(() => {
    requestAnimationFrame(() => {
      win.__jfRenderMs = performance.now() - start;
      win.__jfReady = true;
    });
  }, [start]);
  return null;
}

async function main() {
  const params = new URLSearchParams(window.location.search);
  const mode = params.get('theme') === 'light' ? 'light' : 'dark';
  const fixtureName = params.get('fixture') ?? 'basic';
  const fixture = PANEL_FIXTURES[fixtureName];
  if (!fixture) {
    throw new Error(`unknown fixture ${fixtureName}`);
  }
  const width = Number(params.get('w') ?? 900);
  const height = Number(params.get('h') ?? 340);
  const extra = JSON.parse(params.get('options') ?? '{}');
  const unit = params.get('unit') ?? undefined;

  const exports = await loadAmdModule(PLUGIN_URL);
  const plugin = exports.plugin as grafanaData.PanelPlugin;
  if (!plugin || !plugin.panel) {
    throw new Error('dist/module.js does not export a panel plugin');
  }
  // Option builders need editors registered; Grafana does that at boot.
  grafanaData.standardEditorsRegistry.setInit(() =>
    ['text', 'number', 'boolean', 'radio', 'select', 'slider', 'color', 'unit', 'links'].map((id) => ({
      id,
      name: id,
      editor: () => null,
    })),
  );
  const options = { ...plugin.defaults, ...(fixture.options ?? {}), ...extra };
  const theme = grafanaData.createTheme({ colors: { mode } });
  const timeRange = grafanaData.getDefaultTimeRange();
  const Panel = plugin.panel as unknown as React.ComponentType<Record<string, unknown>>;
  const props = {
    id: 1,
    data: { series: fixture.frames(), state: grafanaData.LoadingState.Done, timeRange },
    timeRange,
    timeZone: 'utc',
    options,
    fieldConfig: { defaults: unit ? { unit } : {}, overrides: [] },
    width,
    height,
    transparent: false,
    title: 'Energy split',
    renderCounter: 0,
    replaceVariables: (s: string) => s.replace(/\$\{__from\}/g, '0'),
    onOptionsChange: () => undefined,
    onFieldConfigChange: () => undefined,
    onChangeTimeRange: () => undefined,
    eventBus: new grafanaData.EventBusSrv(),
  };
  const start = performance.now();
  const root = ReactDOMClient.createRoot(document.getElementById('root')!);
  root.render(
    <grafanaData.ThemeContext.Provider value={theme}>
      <grafanaUi.GlobalStyles />
      <grafanaUi.PortalContainer />
      <div
        id="frame"
        style={{
          display: 'inline-block',
          padding: 16,
          background: theme.colors.background.primary,
          border: `1px solid ${theme.colors.border.weak}`,
        }}
      >
        <Panel {...props} />
      </div>
      <Ready start={start} />
    </grafanaData.ThemeContext.Provider>,
  );
}

main().catch((e: unknown) => {
  win.__jfError = e instanceof Error ? `${e.message}\n${e.stack}` : String(e);
  const pre = document.createElement('pre');
  pre.id = 'harness-error';
  pre.textContent = win.__jfError;
  document.body.appendChild(pre);
});
