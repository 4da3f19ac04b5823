// The appliance's certificate on first start and after: made once by the real openssl, then kept.
import test from 'ava';
import { execa } from 'execa';
import { copyFileSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { certificateNames, ensureCertificate, opensslRequestArgs, subjectAltNameExtension } from '../../../src/appliance/services/httpd/tls.js';
import { makeCertificate } from '../../helpers/tls.js';
import { requireTools, toolPath } from '../../helpers/tools.js';
import { testContext } from './context.js';

const opensslTest = requireTools('openssl');

/** A service context whose helper commands really run. */
async function realContext() {
  const tc = await testContext({
    run: async (command, args) => {
      const r = await execa(command, args, { reject: false, all: true });
      return { exitCode: r.exitCode ?? 1, output: r.all ?? '' };
    },
  });
  tc.ctx.bins.openssl = toolPath('openssl');
  return tc;
}

test('certificate names: localhost, the host name, every address, CW_API_AUDIENCES hosts; nothing that is not a name', (t) => {
  const names = certificateNames({
    hostname: 'Head1',
    interfaces: {
      eth0: [{ address: '10.1.2.3', netmask: '255.255.255.0', family: 'IPv4', mac: '', internal: false, cidr: null }],
      eth1: [
        { address: 'fd00::5', netmask: '', family: 'IPv6', mac: '', internal: false, cidr: null, scopeid: 0 },
        { address: 'fe80::1', netmask: '', family: 'IPv6', mac: '', internal: false, cidr: null, scopeid: 2 },
      ],
    },
    extra: ['head.example', 'https://10.9.9.9:8443', 'evil,IP:1.2.3.4', 'a b', 'x/y'],
  });
  t.deepEqual(names.dns, ['localhost', 'head1', 'head.example']);
  t.deepEqual(names.ips, ['127.0.0.1', '10.1.2.3', 'fd00::5', '10.9.9.9']);
  t.is(subjectAltNameExtension(names), 'subjectAltName=DNS:localhost,DNS:head1,DNS:head.example,IP:127.0.0.1,IP:10.1.2.3,IP:fd00::5,IP:10.9.9.9');
  // Even names that slipped past the filter cannot add entries to openssl's list.
  t.is(subjectAltNameExtension({ dns: ['a,IP:1.1.1.1'], ips: ['1.1.1.1,DNS:x'] }), 'subjectAltName=');
  const args = opensslRequestArgs('/k', '/c', names);
  t.is(args[args.indexOf('-keyout') + 1], '/k');
  t.false(args.some((a) => a.includes('-passin') || a.includes('pass:')));
});

opensslTest('first start makes a self-signed certificate with the key 0600; later starts keep it', async (t) => {
  const { ctx, cleanup } = await realContext();
  t.teardown(cleanup);
  const names = () => ({ dns: ['localhost', 'head1'], ips: ['127.0.0.1', '10.1.2.3'] });
  const first = await ensureCertificate(ctx, names);
  t.true(first.generated);
  t.is(statSync(ctx.paths.tlsKeyFile).mode & 0o777, 0o600);
  t.is(statSync(ctx.paths.tlsCertFile).mode & 0o777, 0o644);
  t.regex(first.info.subjectAltName, /DNS:head1/);
  t.regex(first.info.subjectAltName, /IP Address:10\.1\.2\.3/);
  t.true(first.info.validTo.getTime() - Date.now() > 9 * 365 * 86_400_000);
  const again = await ensureCertificate(ctx, names);
  t.false(again.generated);
  t.is(again.info.pin, first.info.pin, 'the pin admins saved stays valid');
});

opensslTest('an admin\'s own pair is used as it is; a lone file or a mismatched pair stops the start with what to do', async (t) => {
  const { ctx, cleanup } = await realContext();
  t.teardown(cleanup);
  const dir = ctx.paths.storage;
  await ensureCertificate(ctx); // makes the directories
  const own = makeCertificate(ctx.paths.storage, 'own', ['DNS:head.example']);
  const stranger = makeCertificate(ctx.paths.storage, 'stranger');
  copyFileSync(own.certFile, ctx.paths.tlsCertFile);
  copyFileSync(own.keyFile, ctx.paths.tlsKeyFile);
  const used = await ensureCertificate(ctx);
  t.false(used.generated);
  t.is(used.info.pin, own.pin);
  writeFileSync(ctx.paths.tlsKeyFile, readFileSync(stranger.keyFile));
  await t.throwsAsync(ensureCertificate(ctx), { message: /is not the private key of the certificate in/ });
  rmSync(ctx.paths.tlsKeyFile);
  await t.throwsAsync(ensureCertificate(ctx), { message: /server\.crt exists but .*tls-server\.key does not; .*--tls-cert FILE --tls-key FILE/ });
  t.is(readFileSync(ctx.paths.tlsCertFile, 'utf8'), own.certPem, 'nothing replaced');
  t.truthy(dir);
});
