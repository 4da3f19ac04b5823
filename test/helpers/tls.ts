// Certificates for tests, made by the real openssl as the appliance makes its own.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CertificatePin } from '../../src/lib/tls.js';
import { toolPath } from './tools.js';

export interface TestCertificate {
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
  /** `sha256:AB:CD:...` */
  pin: CertificatePin;
}

/**
 * A self-signed P-256 certificate for `names` (`DNS:localhost`, `IP:127.0.0.1`, ...) in `dir/NAME.crt` and
 * `dir/NAME.key`. Callers register through requireTools('openssl').
 */
export function makeCertificate(dir: string, name: string, names: string[] = ['DNS:localhost', 'IP:127.0.0.1']): TestCertificate {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  execFileSync(toolPath('openssl'), [
    'req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', `subjectAltName=${names.join(',')}`,
  ], { stdio: 'pipe' });
  const certPem = readFileSync(certFile, 'utf8');
  return { certFile, keyFile, certPem, keyPem: readFileSync(keyFile, 'utf8'), pin: `sha256:${new X509Certificate(certPem).fingerprint256}` as CertificatePin };
}
