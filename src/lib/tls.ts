// The head node's TLS certificate as the three sides see it: the appliance generates or loads it, the host's
// `start` installs an admin's own and `tool-config` prints its fingerprint, and the tools pin that fingerprint.
// One spelling of a pin everywhere: `sha256:` and the SHA-256 of the DER certificate as colon-separated
// upper-case hex pairs, as `openssl x509 -fingerprint -sha256` and Node's `fingerprint256` show it.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';

/** A certificate pin, e.g. `sha256:3A:F0:...` (32 pairs). */
export type CertificatePin = `sha256:${string}`;

const HEX_PAIRS = /^(?:[0-9A-F]{2}:){31}[0-9A-F]{2}$/;

/** The pin of a certificate: `pinOf(new X509Certificate(pem))` → `sha256:3A:F0:...`. */
export function pinOf(cert: X509Certificate): CertificatePin {
  return `sha256:${cert.fingerprint256}`;
}

/**
 * A pin as a user may write it — `sha256:` then 64 hex digits, with or without colons, in either case —
 * normalized; undefined when `text` is not one. Example: `parsePin('sha256:3af0…')` → `sha256:3A:F0:…`.
 */
export function parsePin(text: string): CertificatePin | undefined {
  const match = /^sha256:([0-9A-Fa-f:]+)$/.exec(text.trim());
  if (!match) return undefined;
  const hex = match[1]!.replaceAll(':', '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return undefined;
  // Colons, when given, must sit between pairs (`3A:F0`, not `3:AF0`).
  if (match[1]!.includes(':') && !HEX_PAIRS.test(match[1]!.toUpperCase())) return undefined;
  return `sha256:${hex.match(/../g)!.join(':')}`;
}

/** What the head node's certificate says, for listings and `tool-config`. */
export interface CertificateInfo {
  pin: CertificatePin;
  subject: string;
  /** `DNS:localhost, IP Address:10.0.0.1, ...` as Node prints subjectAltName; empty when there is none. */
  subjectAltName: string;
  validFrom: Date;
  validTo: Date;
  /** Issuer and subject are the same: a self-signed certificate (ours, or an admin's own). */
  selfSigned: boolean;
}

export function certificateInfo(cert: X509Certificate): CertificateInfo {
  return {
    pin: pinOf(cert),
    subject: cert.subject.replaceAll('\n', ', '),
    subjectAltName: cert.subjectAltName ?? '',
    validFrom: new Date(cert.validFrom),
    validTo: new Date(cert.validTo),
    selfSigned: cert.issuer === cert.subject,
  };
}

/** Largest certificate chain or key file accepted (a chain of a few certificates is ~10 KiB). */
export const MAX_PEM_BYTES = 256 * 1024;

/**
 * Checks a PEM certificate (chain: the server's certificate first) and its private key belong together,
 * and returns the server certificate; throws an Error that says what is wrong. `label` names the files.
 * The key must not be encrypted: nginx starts unattended and cannot ask for a passphrase.
 */
export function checkCertificatePair(certPem: Buffer | string, keyPem: Buffer | string, label: { cert: string; key: string }): X509Certificate {
  const certText = certPem.toString();
  if (!certText.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`${label.cert}: not a PEM certificate (no "BEGIN CERTIFICATE" line)`);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new Error(`${label.cert}: not a readable certificate (${(err as Error).message})`);
  }
  const keyText = keyPem.toString();
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(keyText)) {
    throw new Error(`${label.key}: the private key is encrypted; nginx starts unattended and needs it without a passphrase`);
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(keyText)) throw new Error(`${label.key}: not a PEM private key (no "BEGIN ... PRIVATE KEY" line)`);
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new Error(`${label.key}: not a readable private key (${(err as Error).message})`);
  }
  if (!cert.checkPrivateKey(key)) throw new Error(`${label.key} is not the private key of the certificate in ${label.cert}`);
  return cert;
}
