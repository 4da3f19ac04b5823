import { writeFileAtomic } from '../../../lib/atomic-write.js';
import { ExitError, errorMessage } from '../../../lib/errors.js';
import { readLocalText } from '../../../lib/local-files.js';
import { storagePaths } from '../../../lib/storage-layout.js';
import { checkCertificatePair, MAX_PEM_BYTES, pinOf, type CertificatePin } from '../../../lib/tls.js';

/** An admin's own certificate (chain) and key, read and checked before anything is changed. */
export interface OwnCertificate {
  certPem: string;
  keyPem: string;
  pin: CertificatePin;
  validTo: Date;
}

/**
 * Reads `--tls-cert` and `--tls-key` (regular files of at most 256 KiB) and checks they are a PEM
 * certificate and its unencrypted private key. Both or neither must be given.
 */
export async function readOwnCertificate(certArg: string | undefined, keyArg: string | undefined, cwd: string): Promise<OwnCertificate | undefined> {
  if (certArg === undefined && keyArg === undefined) return undefined;
  if (certArg === undefined || keyArg === undefined) throw new ExitError('--tls-cert and --tls-key go together: give the certificate and its private key');
  const certPem = await readLocalText(certArg, { cwd }, { maxBytes: MAX_PEM_BYTES, label: `--tls-cert ${certArg}`, keepNewline: true });
  const keyPem = await readLocalText(keyArg, { cwd }, { maxBytes: MAX_PEM_BYTES, label: `--tls-key ${keyArg}`, keepNewline: true });
  try {
    const cert = checkCertificatePair(certPem, keyPem, { cert: `--tls-cert ${certArg}`, key: `--tls-key ${keyArg}` });
    return { certPem, keyPem, pin: pinOf(cert), validTo: new Date(cert.validTo) };
  } catch (err) {
    throw new ExitError(errorMessage(err));
  }
}

/** Puts the admin's certificate where the appliance serves it from: `tls/server.crt` (0644), the key in `secrets/` (0600). */
export async function installOwnCertificate(storageDir: string, own: OwnCertificate): Promise<void> {
  const paths = storagePaths(storageDir);
  // The key first: the appliance refuses a certificate whose key does not match.
  await writeFileAtomic(paths.tlsKeyFile, own.keyPem, { mode: 0o600 });
  await writeFileAtomic(paths.tlsCertFile, own.certPem, { mode: 0o644 });
}
