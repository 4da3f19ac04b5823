// The certificates of the head nodes' etcd members: one cluster CA (made by the first head, copied to each
// head that joins, so any head can admit the next) and, per head, one certificate for its member — server
// for its clients and peers, client towards the other members and for its own API. Made with openssl, as
// the HTTPS certificate is; every name that goes into one is an address checked here.
import { X509Certificate } from 'node:crypto';
import { chmod, readFile, rename, rm } from 'node:fs/promises';
import { isIP } from 'node:net';
import * as path from 'node:path';
import { ensurePrivateDir } from '../../../lib/storage-layout.js';
import { pathExists } from '../../config/files.js';
import type { CommandRunner } from '../context.js';
import { tail } from '../run.js';

/** Ten years, as the HTTPS certificate: these are trusted through the CA the heads share, not a public one. */
const DAYS = 3650;

export interface EtcdPkiFiles {
  dir: string;
  caCert: string;
  caKey: string;
  memberCert: string;
  memberKey: string;
}

/** `STORAGE/secrets/etcd/`: the cluster CA and this head's member certificate (directory 0700, keys 0600). */
export function etcdPkiFiles(secretsDir: string): EtcdPkiFiles {
  const dir = path.join(secretsDir, 'etcd');
  return {
    dir,
    caCert: path.join(dir, 'ca.crt'),
    caKey: path.join(dir, 'ca.key'),
    memberCert: path.join(dir, 'member.crt'),
    memberKey: path.join(dir, 'member.key'),
  };
}

async function openssl(run: CommandRunner, bin: string, args: string[], what: string): Promise<void> {
  const result = await run(bin, args);
  if (result.exitCode !== 0) throw new Error(`openssl could not make ${what}: ${tail(result.output)}`);
}

/** Makes the cluster CA unless there is one (the first head; a joining head receives the first head's). */
export async function ensureEtcdCa(files: EtcdPkiFiles, run: CommandRunner, bin: string): Promise<boolean> {
  ensurePrivateDir(files.dir);
  if ((await pathExists(files.caCert)) && (await pathExists(files.caKey))) return false;
  const tmpKey = `${files.caKey}.new`;
  const tmpCert = `${files.caCert}.new`;
  await openssl(
    run,
    bin,
    [
      'req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', tmpKey, '-out', tmpCert, '-days', String(DAYS),
      '-subj', '/O=cw-headnode/CN=cw-headnode etcd CA',
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ],
    'the etcd CA',
  );
  await chmod(tmpKey, 0o600);
  await rename(tmpKey, files.caKey);
  await rename(tmpCert, files.caCert);
  return true;
}

/** Whether the member certificate exists, was issued by the CA and names every one of `ips`. */
export async function memberCertificateFits(files: EtcdPkiFiles, ips: readonly string[]): Promise<boolean> {
  try {
    const cert = new X509Certificate(await readFile(files.memberCert));
    const ca = new X509Certificate(await readFile(files.caCert));
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return false;
    if (Date.parse(cert.validTo) < Date.now()) return false;
    return ips.every((ip) => cert.checkIP(ip) !== undefined);
  } catch {
    return false;
  }
}

/**
 * The member certificate for `name` at `ips` (and 127.0.0.1, where the head's own API reaches it), signed
 * by the cluster CA; made again when an address changed or the CA is another one.
 */
export async function ensureMemberCertificate(
  files: EtcdPkiFiles,
  member: { name: string; ips: readonly string[] },
  run: CommandRunner,
  bin: string,
): Promise<boolean> {
  const ips = [...new Set(['127.0.0.1', ...member.ips])];
  for (const ip of ips) if (isIP(ip) === 0) throw new Error(`etcd member address ${JSON.stringify(ip)} is not an IP address`);
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(member.name)) throw new Error(`etcd member name ${JSON.stringify(member.name)} is not a name`);
  if (await memberCertificateFits(files, ips)) return false;
  const tmpKey = `${files.memberKey}.new`;
  const tmpCert = `${files.memberCert}.new`;
  await rm(tmpKey, { force: true });
  await openssl(
    run,
    bin,
    [
      'req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', tmpKey, '-out', tmpCert, '-days', String(DAYS),
      '-CA', files.caCert, '-CAkey', files.caKey,
      '-subj', `/O=cw-headnode/CN=${member.name}`,
      '-addext', `subjectAltName=${ips.map((ip) => `IP:${ip}`).join(',')}`,
      '-addext', 'basicConstraints=critical,CA:FALSE',
      '-addext', 'extendedKeyUsage=serverAuth,clientAuth',
    ],
    `the etcd certificate of ${member.name}`,
  );
  await chmod(tmpKey, 0o600);
  await rename(tmpKey, files.memberKey);
  await rename(tmpCert, files.memberCert);
  return true;
}
