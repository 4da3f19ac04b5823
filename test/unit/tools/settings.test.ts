import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_BASE_URL,
  loadSettings,
  normalizeBaseUrl,
  parseSettings,
  renderSettings,
  settingsPath,
  writeSettings,
} from '../../../src/tools/common/client/settings.js';

function tempHome(t: { teardown: (fn: () => void) => void }): string {
  const home = mkdtempSync(join(tmpdir(), 'cw-settings-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  return home;
}

const env = { USER: 'alice' };

test('without a file: defaults, user from USER', (t) => {
  const home = tempHome(t);
  const s = loadSettings({ home, env });
  t.is(s.baseUrl, DEFAULT_BASE_URL);
  t.is(s.authUser, 'alice');
  t.is(s.sslVerify, 'true');
  t.is(s.workspace, join(home, '.cw', 'workspace'));
  t.is(s.path, join(home, '.cw', 'settings.ini'));
  t.false(s.fromFile);
  t.deepEqual(s.warnings, []);
});

test('the seed 000 file is read from ~/.cw/settings.ini', (t) => {
  const home = tempHome(t);
  mkdirSync(join(home, '.cw'));
  writeFileSync(
    settingsPath(home),
    '[ClusterWare]\nclient.base_url = https://10.54.0.123/api/v1\nclient.authuser = root\nclient.sslverify = quiet\n',
  );
  const s = loadSettings({ home, env });
  t.is(s.baseUrl, 'https://10.54.0.123/api/v1');
  t.is(s.authUser, 'root');
  t.is(s.sslVerify, 'quiet');
  t.true(s.fromFile);
});

test('top-level keys without a section are accepted; the section wins over them', (t) => {
  const s = parseSettings('client.authuser = bob\nclient.sslverify = false\n', { env, home: '/home/x' });
  t.is(s.authUser, 'bob');
  t.is(s.sslVerify, 'false');
  const both = parseSettings('client.authuser = bob\n[clusterware]\nclient.authuser = carol\n', { env, home: '/home/x' });
  t.is(both.authUser, 'carol');
});

test('environment overrides the file', (t) => {
  const text = '[ClusterWare]\nclient.base_url = https://a/api/v1\nclient.authuser = root\n';
  const s = parseSettings(text, { home: '/h', env: { USER: 'x', CW_BASE_URL: 'https://b:8443/', CW_AUTHUSER: 'dave' } });
  t.is(s.baseUrl, 'https://b:8443/api/v1');
  t.is(s.authUser, 'dave');
});

test('modimg.workspace expands ~ and resolves relative paths against home', (t) => {
  t.is(parseSettings('[ClusterWare]\nmodimg.workspace = ~/imgs\n', { home: '/home/a', env }).workspace, '/home/a/imgs');
  t.is(parseSettings('[ClusterWare]\nmodimg.workspace = /scratch/ws/\n', { home: '/home/a', env }).workspace, '/scratch/ws');
  t.is(parseSettings('[ClusterWare]\nmodimg.workspace = ws\n', { home: '/home/a', env }).workspace, '/home/a/ws');
});

test('base URLs: /api/v1 with or without slash, bare hosts get /api/v1', (t) => {
  t.deepEqual(normalizeBaseUrl('https://head/api/v1/'), { ok: true, value: 'https://head/api/v1' });
  t.deepEqual(normalizeBaseUrl('https://head/api/v1'), { ok: true, value: 'https://head/api/v1' });
  t.deepEqual(normalizeBaseUrl('http://head:8080'), { ok: true, value: 'http://head:8080/api/v1' });
  t.deepEqual(normalizeBaseUrl('HTTPS://Head.Example/'), { ok: true, value: 'https://head.example/api/v1' });
  t.deepEqual(normalizeBaseUrl('https://proxy/cw/api/v1'), { ok: true, value: 'https://proxy/cw/api/v1' });
});

test('bad base URLs are refused with the file and the key in the message', (t) => {
  for (const [url, why] of [
    ['ftp://head/api/v1', /must use http or https, not ftp/],
    ['head/api/v1', /is not a URL/],
    ['https://head/api/v2', /must end with \/api\/v1/],
    ['https://u:p@head/api/v1', /must not contain a user or password/],
    ['https://head/api/v1?x=1', /query or fragment/],
  ] as const) {
    const err = t.throws(() => parseSettings(`[ClusterWare]\nclient.base_url = ${url}\n`, { env, path: '/h/.cw/settings.ini' }));
    t.regex(err?.message ?? '', /^\/h\/.cw\/settings.ini: client.base_url /, url);
    t.regex(err?.message ?? '', why, url);
  }
  t.throws(() => parseSettings('', { env: { USER: 'x', CW_BASE_URL: 'file:///etc/passwd' }, path: 'S' }), {
    message: 'S: CW_BASE_URL "file:///etc/passwd" must use http or https, not file',
  });
  t.throws(() => parseSettings('', { env: { CW_AUTHUSER: 'Eve;' }, path: 'S' }), { message: 'S: CW_AUTHUSER "Eve;" is not a valid admin name' });
});

test('every bad value is reported at once', (t) => {
  const err = t.throws(() =>
    parseSettings('[ClusterWare]\nclient.base_url = gopher://x\nclient.authuser = Bad User\nclient.sslverify = maybe\n', { env, path: 'S' }),
  );
  t.is(
    err?.message,
    'S: client.base_url "gopher://x" must use http or https, not gopher; client.authuser "Bad User" is not a valid admin name; ' +
      'client.sslverify must be true, false, quiet, a certificate fingerprint (sha256:...) or the absolute path of a CA certificate file, not "maybe"',
  );
});

test('unknown keys and sections are warnings, not errors', (t) => {
  const s = parseSettings('[ClusterWare]\nclient.baseurl = x\n[Other]\nk = v\n', { env, path: 'S' });
  t.deepEqual(s.warnings, ['S: unknown key "client.baseurl" in [ClusterWare]', 'S: section [Other] is ignored (expected [ClusterWare])']);
});

test('renderSettings gives the exact tool-config text', (t) => {
  t.is(
    renderSettings({ baseUrl: 'https://10.54.0.123/api/v1', authUser: 'root', sslVerify: 'quiet' }),
    '[ClusterWare]\nclient.base_url = https://10.54.0.123/api/v1\nclient.authuser = root\nclient.sslverify = quiet\n',
  );
  t.is(
    renderSettings({ baseUrl: 'http://h/api/v1', authUser: 'a', sslVerify: 'true', workspace: '/w' }),
    '[ClusterWare]\nclient.base_url = http://h/api/v1\nclient.authuser = a\nclient.sslverify = true\nmodimg.workspace = /w\n',
  );
  t.throws(() => renderSettings({ baseUrl: 'http://h/api/v1\nx = y', authUser: 'a', sslVerify: 'true' }), { message: /single line/ });
});

test('writeSettings then loadSettings round-trips, private file in a private directory', (t) => {
  const home = tempHome(t);
  const fields = { baseUrl: 'https://head.example:8443/api/v1', authUser: 'alice', sslVerify: 'false' as const, workspace: join(home, 'ws') };
  writeSettings(settingsPath(home), fields);
  t.is(statSync(settingsPath(home)).mode & 0o777, 0o600);
  t.is(statSync(join(home, '.cw')).mode & 0o777, 0o700);
  t.is(readFileSync(settingsPath(home), 'utf8'), renderSettings(fields));
  const s = loadSettings({ home, env: { USER: 'someone-else' } });
  t.deepEqual(
    { baseUrl: s.baseUrl, authUser: s.authUser, sslVerify: s.sslVerify, workspace: s.workspace },
    fields,
  );
});

test('an explicit path is used instead of ~/.cw/settings.ini', (t) => {
  const home = tempHome(t);
  const path = join(home, 'other.ini');
  writeFileSync(path, 'client.authuser = erin\n');
  t.is(loadSettings({ home, env, path }).authUser, 'erin');
});

test('an unreadable settings path is an error, a missing one is not', (t) => {
  const home = tempHome(t);
  mkdirSync(join(home, 'dir.ini'));
  t.throws(() => loadSettings({ home, env, path: join(home, 'dir.ini') }), { message: /cannot read .*dir.ini: EISDIR/ });
  t.notThrows(() => loadSettings({ home, env, path: join(home, 'missing.ini') }));
});
