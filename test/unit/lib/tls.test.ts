import test from 'ava';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificateInfo, checkCertificatePair, parsePin, pinOf } from '../../../src/lib/tls.js';
import { makeCertificate } from '../../helpers/tls.js';
import { requireTools, toolPath } from '../../helpers/tools.js';

const HEX = 'ab'.repeat(32);
const PAIRS = `sha256:${'AB:'.repeat(31)}AB` as const;

test('pins: colons optional, any case, normalized; anything else is not a pin', (t) => {
  t.is(parsePin(`sha256:${HEX}`), PAIRS);
  t.is(parsePin(`  sha256:${HEX.toUpperCase()} `), PAIRS);
  t.is(parsePin(PAIRS.toLowerCase().replace('sha256', 'sha256')), PAIRS);
  for (const bad of [`sha1:${HEX}`, `sha256:${HEX}00`, `sha256:${HEX.slice(2)}`, `sha256:${'a:b'.repeat(32)}`, 'sha256:', `sha256:${'zz'.repeat(32)}`, HEX]) {
    t.is(parsePin(bad), undefined, bad);
  }
});

const opensslTest = requireTools('openssl');

opensslTest('a certificate and its key belong together; a stranger\'s key, an encrypted key or a text file do not', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const a = makeCertificate(dir, 'a');
  const b = makeCertificate(dir, 'b');
  const cert = checkCertificatePair(a.certPem, a.keyPem, { cert: 'a.crt', key: 'a.key' });
  t.is(pinOf(cert), a.pin);
  const info = certificateInfo(cert);
  t.true(info.selfSigned);
  t.regex(info.subjectAltName, /DNS:localhost, IP Address:127\.0\.0\.1/);
  t.throws(() => checkCertificatePair(a.certPem, b.keyPem, { cert: 'a.crt', key: 'b.key' }), { message: 'b.key is not the private key of the certificate in a.crt' });
  t.throws(() => checkCertificatePair('hello\n', a.keyPem, { cert: 'x.txt', key: 'a.key' }), { message: /x\.txt: not a PEM certificate/ });
  t.throws(() => checkCertificatePair(a.certPem, 'hello\n', { cert: 'a.crt', key: 'x.txt' }), { message: /x\.txt: not a PEM private key/ });
  t.throws(() => checkCertificatePair(a.keyPem, a.keyPem, { cert: 'k.crt', key: 'a.key' }), { message: /k\.crt: not a PEM certificate/ });
  // An encrypted key: nginx cannot ask for the passphrase.
  const encrypted = join(dir, 'enc.key');
  execFileSync(toolPath('openssl'), ['pkcs8', '-topk8', '-in', a.keyFile, '-out', encrypted, '-passout', 'env:CW_TEST_PASS'], { stdio: 'pipe', env: { ...process.env, CW_TEST_PASS: 'throwaway' } });
  t.throws(() => checkCertificatePair(a.certPem, readFileSync(encrypted), { cert: 'a.crt', key: 'enc.key' }), { message: /enc\.key: the private key is encrypted/ });
  t.is(pinOf(new X509Certificate(a.certPem)), a.pin);
});
