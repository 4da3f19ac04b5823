// The admin tools' ~/.cw/settings.ini:
//   [ClusterWare]
//   client.base_url = https://10.54.0.123/api/v1
//   client.authuser = root
//   client.sslverify = sha256:3A:F0:...   (the head node's certificate, as tool-config prints it)
//   modimg.workspace = ~/.cw/workspace
import { mkdirSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import ini from 'ini';
import { isValidAdminName } from '../../../lib/validate.js';
import { writeFileAtomicSync } from '../../../lib/atomic-write.js';
import { parsePin, type CertificatePin } from '../../../lib/tls.js';

/**
 * How the tools check the head node's TLS certificate: `sha256:…` accepts exactly the certificate with
 * that fingerprint (what `cw-containerctl tool-config` proposes); an absolute path names a CA or
 * certificate file (PEM) to verify the chain and the host name against; `true` uses the system's CAs;
 * `false` skips verification with a warning, `quiet` without one.
 */
export type SslVerify = 'true' | 'false' | 'quiet' | CertificatePin | `/${string}`;

export interface Settings {
  /** Normalized, without a trailing slash: `https://head/api/v1`. */
  baseUrl: string;
  authUser: string;
  sslVerify: SslVerify;
  /** Absolute path of the image workspace (`modimg.workspace`, default `~/.cw/workspace`). */
  workspace: string;
  /** The settings file consulted (it need not exist). */
  path: string;
  /** Whether that file existed. */
  fromFile: boolean;
  /** Non-fatal remarks, e.g. unknown keys (likely typos). */
  warnings: string[];
}

/** What `renderSettings` writes; `workspace` is written only when given. */
export interface SettingsFields {
  baseUrl: string;
  authUser: string;
  sslVerify: SslVerify;
  workspace?: string;
}

export interface LoadSettingsOptions {
  /** Home directory (default: os.homedir()). */
  home?: string;
  /** Environment for `CW_BASE_URL`, `CW_AUTHUSER`, `USER` (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Settings file (default: HOME/.cw/settings.ini). */
  path?: string;
}

export const SECTION = 'ClusterWare';
export const DEFAULT_BASE_URL = 'http://localhost/api/v1';
const KNOWN_KEYS = new Set(['client.base_url', 'client.authuser', 'client.sslverify', 'modimg.workspace']);
const MAX_SETTINGS_BYTES = 64 * 1024;

/** `HOME/.cw/settings.ini`. */
export function settingsPath(home: string = homedir()): string {
  return join(home, '.cw', 'settings.ini');
}

/**
 * Reads settings: defaults, then the file (section `[ClusterWare]`, or keys at the top), then
 * `CW_BASE_URL` / `CW_AUTHUSER`. A missing file is fine; a malformed value throws a one-line Error.
 */
export function loadSettings(opts: LoadSettingsOptions = {}): Settings {
  const home = opts.home ?? homedir();
  const path = opts.path ?? settingsPath(home);
  let text: string | undefined;
  try {
    const buf = readFileSync(path);
    if (buf.length > MAX_SETTINGS_BYTES) throw new Error(`${path}: file is larger than ${MAX_SETTINGS_BYTES} bytes`);
    text = buf.toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      const code = (err as NodeJS.ErrnoException).code;
      throw code ? new Error(`cannot read ${path}: ${code}`) : err;
    }
  }
  return parseSettings(text ?? '', { home, env: opts.env, path, fromFile: text !== undefined });
}

/** The pure part of `loadSettings`: `text` is the file's content (empty when there is no file). */
export function parseSettings(
  text: string,
  opts: { home?: string; env?: NodeJS.ProcessEnv; path?: string; fromFile?: boolean } = {},
): Settings {
  const home = opts.home ?? homedir();
  const env = opts.env ?? process.env;
  const path = opts.path ?? settingsPath(home);
  const where = opts.fromFile === false ? 'settings' : path;

  const parsed = ini.parse(text) as Record<string, unknown>;
  const values = new Map<string, string>();
  const warnings: string[] = [];
  const take = (obj: Record<string, unknown>, label: string) => {
    for (const [key, value] of Object.entries(obj)) {
      if (value !== null && typeof value === 'object') continue; // a section, handled by the caller
      if (!KNOWN_KEYS.has(key)) {
        warnings.push(`${where}: unknown key "${key}"${label}`);
        continue;
      }
      values.set(key, value === true ? 'true' : value === false ? 'false' : String(value ?? ''));
    }
  };
  take(parsed, '');
  for (const [name, value] of Object.entries(parsed)) {
    if (value === null || typeof value !== 'object') continue;
    if (name.toLowerCase() === SECTION.toLowerCase()) take(value as Record<string, unknown>, ` in [${name}]`);
    else warnings.push(`${where}: section [${name}] is ignored (expected [${SECTION}])`);
  }
  // Which name to blame in messages: the file's key, or the environment variable that replaced it.
  const label = new Map<string, string>();
  const envBase = env.CW_BASE_URL?.trim();
  if (envBase) {
    values.set('client.base_url', envBase);
    label.set('client.base_url', 'CW_BASE_URL');
  }
  const envUser = env.CW_AUTHUSER?.trim();
  if (envUser) {
    values.set('client.authuser', envUser);
    label.set('client.authuser', 'CW_AUTHUSER');
  }
  const name = (key: string) => label.get(key) ?? key;

  const problems: string[] = [];
  let baseUrl = DEFAULT_BASE_URL;
  const rawUrl = values.get('client.base_url');
  if (rawUrl !== undefined) {
    const url = normalizeBaseUrl(rawUrl);
    if (url.ok) baseUrl = url.value;
    else problems.push(`${name('client.base_url')} ${url.reason}`);
  }

  const authUser = values.get('client.authuser') ?? defaultUser(env);
  if (!authUser) problems.push('client.authuser is not set and USER is empty');
  else if (isValidAdminName(authUser) !== true) problems.push(`${name('client.authuser')} "${authUser}" is not a valid admin name`);

  let sslVerify: SslVerify = 'true';
  const rawSsl = values.get('client.sslverify');
  if (rawSsl !== undefined) {
    const parsed = parseSslVerify(rawSsl, home);
    if (typeof parsed === 'string') sslVerify = parsed;
    else problems.push(parsed.problem);
  }

  let workspace = join(home, '.cw', 'workspace');
  const rawWs = values.get('modimg.workspace');
  if (rawWs !== undefined && rawWs.trim() !== '') {
    const ws = rawWs.trim();
    if (/[\0\n\r]/.test(ws)) problems.push('modimg.workspace contains a control character');
    else workspace = expandHome(ws, home);
  }

  if (problems.length > 0) throw new Error(`${where}: ${problems.join('; ')}`);
  return { baseUrl, authUser, sslVerify, workspace, path, fromFile: opts.fromFile ?? true, warnings };
}

/**
 * A `client.sslverify` value: `true`/`false`/`quiet` (any case), a fingerprint `sha256:HEX` (colons
 * optional, any case; normalized), or a CA file path (absolute or `~/…`).
 */
export function parseSslVerify(raw: string, home: string = homedir()): SslVerify | { problem: string } {
  const text = raw.trim();
  const lower = text.toLowerCase();
  if (lower === 'true' || lower === 'false' || lower === 'quiet') return lower;
  if (lower.startsWith('sha256:')) {
    return parsePin(text) ?? { problem: `client.sslverify "${text}" is not a SHA-256 certificate fingerprint (sha256: and 32 hex pairs, as cw-containerctl tool-config prints it)` };
  }
  if (text.startsWith('/') || text.startsWith('~/')) {
    if (/[\0-\x1f]/.test(text)) return { problem: 'client.sslverify contains a control character' };
    return expandHome(text, home) as `/${string}`;
  }
  return { problem: `client.sslverify must be true, false, quiet, a certificate fingerprint (sha256:...) or the absolute path of a CA certificate file, not "${raw}"` };
}

/**
 * Validates a CW API base URL and normalizes it: http(s) only, no credentials, query or fragment;
 * `https://head`, `https://head/` and `https://head/api/v1/` all become `https://head/api/v1`.
 */
export function normalizeBaseUrl(raw: string): { ok: true; value: string } | { ok: false; reason: string } {
  const text = raw.trim();
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, reason: `"${text}" is not a URL (expected e.g. https://head.example/api/v1)` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { ok: false, reason: `"${text}" must use http or https, not ${url.protocol.replace(/:$/, '')}` };
  }
  if (url.username || url.password) return { ok: false, reason: `"${text}" must not contain a user or password` };
  if (url.search || url.hash) return { ok: false, reason: `"${text}" must not contain a query or fragment` };
  let path = url.pathname.replace(/\/+$/, '');
  if (path === '') path = '/api/v1';
  if (!path.endsWith('/api/v1')) return { ok: false, reason: `"${text}" must end with /api/v1` };
  return { ok: true, value: `${url.origin}${path}` };
}

/**
 * The settings file text, as printed by `cw-containerctl tool-config`:
 * `[ClusterWare]\nclient.base_url = ...\nclient.authuser = ...\nclient.sslverify = quiet\n`.
 */
export function renderSettings(s: SettingsFields): string {
  const lines = [
    `[${SECTION}]`,
    `client.base_url = ${oneLine(s.baseUrl, 'client.base_url')}`,
    `client.authuser = ${oneLine(s.authUser, 'client.authuser')}`,
    `client.sslverify = ${oneLine(s.sslVerify, 'client.sslverify')}`,
  ];
  if (s.workspace !== undefined) lines.push(`modimg.workspace = ${oneLine(s.workspace, 'modimg.workspace')}`);
  return `${lines.join('\n')}\n`;
}

/** Writes the settings file atomically, creating `~/.cw` (0700) and the file (0600). */
export function writeSettings(path: string, s: SettingsFields): void {
  const text = renderSettings(s);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileAtomicSync(path, text, { mode: 0o600 });
}

function oneLine(value: string, key: string): string {
  if (/[\0\n\r]/.test(value)) throw new Error(`${key} must be a single line`);
  return value;
}

function defaultUser(env: NodeJS.ProcessEnv): string {
  const fromEnv = env.USER?.trim() || env.LOGNAME?.trim();
  if (fromEnv) return fromEnv;
  try {
    return userInfo().username;
  } catch {
    return '';
  }
}

function expandHome(p: string, home: string): string {
  if (p === '~') return home;
  if (p.startsWith('~/')) return join(home, p.slice(2));
  return isAbsolute(p) ? resolve(p) : resolve(home, p);
}
