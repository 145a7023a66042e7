import { createLogger } from './log';

/** Issue 10 §5: control and line-separator characters never reach a log line raw. */

const RAW = ['\u0000', '\u001b', '\n', '\r', '\u007f', '\u0085', '\u2028', '\u2029'];

function lines(format: 'logfmt' | 'json', msg: string, value: string): string[] {
  const out: string[] = [];
  createLogger('info', format, (l) => out.push(l)).info(msg, { value });
  return out;
}

test.each(['logfmt', 'json'] as const)('%s: every unsafe character is escaped, in messages and values', (format) => {
  for (const c of RAW) {
    const [line] = lines(format, `before${c}after`, `x${c}y`);
    expect([...line].filter((ch) => RAW.includes(ch))).toEqual([]);
    const code = `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
    const shortForms: Record<string, string> = { '\n': '\\n', '\r': '\\r' };
    const escaped = shortForms[c] ?? code;
    expect(line).toContain(`before${escaped}after`);
    expect(line).toContain(`x${escaped}y`);
  }
});

test('json lines still parse to the original text', () => {
  const text = 'a\u0000b\u0085c\u2028d\u2029e';
  const [line] = lines('json', 'm', text);
  expect((JSON.parse(line) as { value: string }).value).toBe(text);
});

test('logfmt: plain words stay bare, anything else is quoted', () => {
  const [line] = lines('logfmt', 'hello', 'plain-word');
  expect(line).toMatch(/ msg=hello value=plain-word$/);
  expect(lines('logfmt', 'two words', 'a=b')[0]).toMatch(/msg="two words" value="a=b"/);
});
