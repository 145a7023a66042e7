/**
 * YAML text → a value (null for an empty document). The parser loads on first use: `serve`
 * without --config.file or --web.config.file never needs it (~20 ms of cold start).
 */
export async function parseYaml(text: string): Promise<unknown> {
  const { parse } = await import('yaml');
  return parse(text) as unknown;
}
