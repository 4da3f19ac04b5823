// The API's TLS certificate: the admin's own (installed by `cw-containerctl start --tls-cert/--tls-key`) or,
// on first start, a self-signed one made by openssl. Admins trust it by its fingerprint (`tool-config`
// prints it for `client.sslverify`) or by copying `tls/server.crt`, so it is never replaced behind their back.
import { X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isIP } from 'node:net';
import { hostname as osHostname, networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { ensurePrivateDir, PUBLIC_DIR_MODE } from '../../../lib/storage-layout.js';
import { certificateInfo, checkCertificatePair, MAX_PEM_BYTES, type CertificateInfo } from '../../../lib/tls.js';
import { pathExists } from '../../config/files.js';
import type { ServiceContext } from '../context.js';
import { tail } from '../run.js';

/** Days a generated certificate is valid: it is pinned, not checked by a CA's rules; renewing changes the pin. */
export const GENERATED_CERT_DAYS = 3650;

/** A DNS name a certificate may carry (and an openssl `-addext` list cannot be broken out of). */
const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export interface CertificateNames {
  dns: string[];
  ips: string[];
}

/**
 * The names a generated certificate carries: `localhost`, the host name, every address of the machine
 * (link-local IPv6 aside) and the host names and addresses of `CW_API_AUDIENCES`. Anything that is not a
 * plain DNS name or address is left out. Example: host `head1` on 10.0.0.1 →
 * `{ dns: ['localhost', 'head1'], ips: ['127.0.0.1', '10.0.0.1', '::1'] }`.
 */
export function certificateNames(
  options: { hostname?: string; interfaces?: NodeJS.Dict<NetworkInterfaceInfo[]>; extra?: readonly string[] } = {},
): CertificateNames {
  const dns = new Set<string>(['localhost']);
  const ips = new Set<string>(['127.0.0.1']);
  const add = (value: string): void => {
    const bare = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value;
    if (isIP(bare) !== 0) ips.add(bare);
    else if (DNS_NAME.test(bare)) dns.add(bare.toLowerCase());
  };
  add(options.hostname ?? osHostname());
  for (const infos of Object.values(options.interfaces ?? networkInterfaces())) {
    for (const info of infos ?? []) {
      if (info.family === 'IPv6' && info.address.toLowerCase().startsWith('fe80:')) continue;
      add(info.address);
    }
  }
  for (const entry of options.extra ?? []) {
    let host = entry;
    if (entry.includes('://')) {
      try {
        host = new URL(entry).hostname;
      } catch {
        continue;
      }
    }
    add(host);
  }
  return { dns: [...dns], ips: [...ips] };
}

/** openssl's `subjectAltName=DNS:a,IP:b` for validated names. */
export function subjectAltNameExtension(names: CertificateNames): string {
  const entries = [...names.dns.filter((n) => DNS_NAME.test(n)).map((n) => `DNS:${n}`), ...names.ips.filter((a) => isIP(a) !== 0).map((a) => `IP:${a}`)];
  return `subjectAltName=${entries.join(',')}`;
}

/** The arguments of `openssl req` that make a self-signed P-256 certificate and its key. */
export function opensslRequestArgs(keyOut: string, certOut: string, names: CertificateNames, days = GENERATED_CERT_DAYS): string[] {
  return [
    'req', '-x509', '-new',
    '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyOut, '-out', certOut,
    '-days', String(days),
    '-subj', '/O=cw-headnode/CN=cw-headnode',
    '-addext', subjectAltNameExtension(names),
    '-addext', 'extendedKeyUsage=serverAuth',
  ];
}

export interface CertificateState {
  info: CertificateInfo;
  /** Made just now (first start). */
  generated: boolean;
}

async function readPem(file: string): Promise<Buffer> {
  const data = await readFile(file);
  if (data.length > MAX_PEM_BYTES) throw new Error(`${file} is larger than ${MAX_PEM_BYTES} bytes`);
  return data;
}

/**
 * Uses the certificate and key in the storage directory, or makes a self-signed pair when neither exists.
 * A lone certificate or key, or a pair that does not match, is an error that says what to do: a new
 * certificate would change the fingerprint every admin has pinned, so it is only made when asked for
 * (by removing both files).
 */
export async function ensureCertificate(ctx: ServiceContext, names: () => CertificateNames = () => certificateNames()): Promise<CertificateState> {
  const { tlsCertFile: certFile, tlsKeyFile: keyFile } = ctx.paths;
  ensurePrivateDir(ctx.paths.secretsDir);
  await mkdir(dirname(certFile), { recursive: true, mode: PUBLIC_DIR_MODE });
  await mkdir(dirname(certFile), { recursive: true, mode: PUBLIC_DIR_MODE });
  const [haveCert, haveKey] = await Promise.all([pathExists(certFile), pathExists(keyFile)]);
  let generated = false;
  if (!haveCert && !haveKey) {
    const keyTmp = `${keyFile}.new`;
    const certTmp = `${certFile}.new`;
    try {
      const result = await ctx.run(ctx.bins.openssl, opensslRequestArgs(keyTmp, certTmp, names()));
      if (result.exitCode !== 0) throw new Error(`openssl req failed: ${tail(result.output)}`);
      await chmod(keyTmp, 0o600);
      await chmod(certTmp, 0o644);
      // The key first: a certificate without its key is the state that needs an admin.
      await rename(keyTmp, keyFile);
      await rename(certTmp, certFile);
    } finally {
      await rm(keyTmp, { force: true });
      await rm(certTmp, { force: true });
    }
    generated = true;
  } else if (!haveCert || !haveKey) {
    const [present, missing] = haveCert ? [certFile, keyFile] : [keyFile, certFile];
    throw new Error(`TLS: ${present} exists but ${missing} does not; restore it, install a pair with cw-containerctl start --tls-cert FILE --tls-key FILE, or remove ${present} to have a new self-signed certificate made (its fingerprint changes)`);
  }
  await chmod(keyFile, 0o600);
  const cert = checkCertificatePair(await readPem(certFile), await readPem(keyFile), { cert: certFile, key: keyFile });
  return { info: certificateInfo(cert), generated };
}

/** The certificate the head node serves, or undefined before the first start. */
export async function readCertificate(certFile: string): Promise<CertificateInfo | undefined> {
  if (!(await pathExists(certFile))) return undefined;
  return certificateInfo(new X509Certificate(await readPem(certFile)));
}
