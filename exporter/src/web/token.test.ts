import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ConfigError } from '../config';
import { readJobsToken } from './token';

/** One reader of the jobs API token for serve (--web.jobs-token-file) and the CLI (--token-file). */

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jf-token-'));
const ENV = 'JOULEFLOW_TEST_TOKEN_READER';
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
afterEach(() => delete process.env[ENV]);

it('a file wins over the environment; surrounding whitespace is not part of the token', () => {
  const file = path.join(dir, 'tok');
  fs.writeFileSync(file, '  s3cret\n');
  process.env[ENV] = 'from-env';
  expect(readJobsToken(file, '--token-file', ENV)).toBe('s3cret');
  expect(readJobsToken(undefined, '--token-file', ENV)).toBe('from-env');
});

it('no file and an empty or unset variable: no token', () => {
  expect(readJobsToken(undefined, '--token-file', ENV)).toBeUndefined();
  process.env[ENV] = '   ';
  expect(readJobsToken(undefined, '--token-file', ENV)).toBeUndefined();
});

it('a missing or empty file is a configuration error naming the flag, never "no token"', () => {
  const missing = path.join(dir, 'nope');
  expect(() => readJobsToken(missing, '--token-file', ENV)).toThrow(ConfigError);
  expect(() => readJobsToken(missing, '--token-file', ENV)).toThrow(/^--token-file: cannot read .*nope: ENOENT$/);
  const empty = path.join(dir, 'empty');
  fs.writeFileSync(empty, '\n \n');
  expect(() => readJobsToken(empty, 'web.jobsTokenFile (--web.jobs-token-file)', ENV)).toThrow(
    /^web\.jobsTokenFile \(--web\.jobs-token-file\): .*empty is empty$/,
  );
});
