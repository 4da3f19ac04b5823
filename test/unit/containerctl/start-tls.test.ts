import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareStorage, storagePaths } from '../../../src/lib/storage-layout.js';
import { installOwnCertificate, readOwnCertificate } from '../../../src/host/containerctl/start/tls.js';
import { makeCertificate } from '../../helpers/tls.js';
import { requireTools } from '../../helpers/tools.js';

const opensslTest = requireTools('openssl');

opensslTest('start --tls-cert/--tls-key: both or neither, a matching unencrypted pair, stored with the key 0600', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-start-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const own = makeCertificate(dir, 'own', ['DNS:head.example']);
  const other = makeCertificate(dir, 'other');
  t.is(await readOwnCertificate(undefined, undefined, dir), undefined);
  await t.throwsAsync(readOwnCertificate('own.crt', undefined, dir), { message: /--tls-cert and --tls-key go together/ });
  await t.throwsAsync(readOwnCertificate('own.crt', 'other.key', dir), { message: '--tls-key other.key is not the private key of the certificate in --tls-cert own.crt' });
  await t.throwsAsync(readOwnCertificate('own.crt', '/dev/zero', dir), { message: /--tls-key \/dev\/zero: is not a regular file/ });
  await t.throwsAsync(readOwnCertificate('missing.crt', 'own.key', dir), { message: /--tls-cert missing\.crt: .*(no such|not found|ENOENT)/i });
  const pair = await readOwnCertificate('own.crt', 'own.key', dir);
  t.is(pair?.pin, own.pin);
  const storage = join(dir, 'storage');
  await prepareStorage(storage);
  await installOwnCertificate(storage, pair!);
  const paths = storagePaths(storage);
  t.is(readFileSync(paths.tlsCertFile, 'utf8'), own.certPem);
  t.is(statSync(paths.tlsKeyFile).mode & 0o777, 0o600);
  t.is(statSync(paths.tlsCertFile).mode & 0o777, 0o644);
  t.truthy(other);
});
