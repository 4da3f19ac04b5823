// This head's etcd member: its configuration from the environment, its certificates (made by the real
// openssl, checked with Node's X509), and etcd's command line for a new cluster, a join and a restart.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { etcdArgs, etcdFiles, etcdMemberFromEnv, etcdService, parseInitialCluster } from '../../../src/appliance/services/etcd/index.js';
import { ensureMemberCertificate, etcdPkiFiles, memberCertificateFits } from '../../../src/appliance/services/etcd/pki.js';
import { runCommandLine } from '../../../src/appliance/services/run.js';
import { requireTools } from '../../helpers/tools.js';
import { testContext } from './context.js';

test('CW_ETCD_MEMBER and CW_ETCD_ADDRESS: both or neither, checked', (t) => {
  t.is(etcdMemberFromEnv({}), null);
  t.deepEqual(etcdMemberFromEnv({ CW_ETCD_MEMBER: 'head-a', CW_ETCD_ADDRESS: '10.0.0.1' }), { name: 'head-a', address: '10.0.0.1' });
  t.throws(() => etcdMemberFromEnv({ CW_ETCD_MEMBER: 'head-a' }), { message: /CW_ETCD_ADDRESS must be this head's IPv4 address/ });
  t.throws(() => etcdMemberFromEnv({ CW_ETCD_MEMBER: 'Head A', CW_ETCD_ADDRESS: '10.0.0.1' }), { message: /CW_ETCD_MEMBER must be a member name/ });
  t.throws(() => etcdMemberFromEnv({ CW_ETCD_ADDRESS: '10.0.0.1' }), { message: /CW_ETCD_MEMBER/ });
});

test('initial cluster lists are NAME=https://IPv4:PORT entries only', (t) => {
  t.is(parseInitialCluster('a=https://10.0.0.1:2380,b=https://10.0.0.2:2380'), 'a=https://10.0.0.1:2380,b=https://10.0.0.2:2380');
  for (const bad of ['a=http://10.0.0.1:2380', 'a=https://10.0.0.1:2380 --foo', 'a=https://example.com:2380', 'A=https://10.0.0.1:2380', '']) {
    t.throws(() => parseInitialCluster(bad), { message: /not a member NAME=https:\/\/ADDRESS:PORT/ }, bad);
  }
});

requireTools('openssl')('a CA, then a member certificate for its address and 127.0.0.1, server and client; made again when the address changes', async (t) => {
  const { ctx, cleanup } = await testContext({ run: runCommandLine });
  t.teardown(cleanup);
  const member = { name: 'head-a', address: '10.213.70.10' };
  const spec = etcdService(ctx, member);
  await spec.prepare?.();
  const pki = etcdPkiFiles(ctx.paths.secretsDir);
  t.is((await stat(pki.dir)).mode & 0o777, 0o700);
  t.is((await stat(pki.caKey)).mode & 0o777, 0o600);
  t.is((await stat(pki.memberKey)).mode & 0o777, 0o600);
  const ca = new X509Certificate(await readFile(pki.caCert));
  const cert = new X509Certificate(await readFile(pki.memberCert));
  t.true(ca.ca);
  t.true(cert.checkIssued(ca) && cert.verify(ca.publicKey));
  t.is(cert.checkIP('10.213.70.10'), '10.213.70.10');
  t.is(cert.checkIP('127.0.0.1'), '127.0.0.1');
  t.deepEqual(cert.keyUsage?.sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  // Unchanged: kept; another address: made again, by the same CA.
  t.false(await ensureMemberCertificate(pki, { name: 'head-a', ips: ['10.213.70.10'] }, runCommandLine, '/usr/bin/openssl'));
  t.true(await ensureMemberCertificate(pki, { name: 'head-a', ips: ['10.213.70.11'] }, runCommandLine, '/usr/bin/openssl'));
  t.true(await memberCertificateFits(pki, ['10.213.70.11', '127.0.0.1']));
  t.false(await memberCertificateFits(pki, ['10.213.70.10']));
  await t.throwsAsync(ensureMemberCertificate(pki, { name: 'head-a', ips: ['10.0.0.1,DNS:evil'] }, runCommandLine, '/usr/bin/openssl'), {
    message: /is not an IP address/,
  });
});

test("etcd's command line: a new one-member cluster, a join as the join file says, a restart on its data", async (t) => {
  const { ctx, cleanup } = await testContext();
  t.teardown(cleanup);
  const files = etcdFiles(ctx.paths.storage);
  const pki = etcdPkiFiles(ctx.paths.secretsDir);
  const member = { name: 'head-b', address: '10.213.70.12' };
  const flag = (args: string[], name: string) => args[args.indexOf(name) + 1];

  const fresh = await etcdArgs(files, pki, member);
  t.is(flag(fresh, '--initial-cluster'), 'head-b=https://10.213.70.12:2380');
  t.is(flag(fresh, '--initial-cluster-state'), 'new');
  t.is(flag(fresh, '--listen-client-urls'), 'https://127.0.0.1:2379,https://10.213.70.12:2379');
  t.true(fresh.includes('--client-cert-auth') && fresh.includes('--peer-client-cert-auth'));

  await mkdir(files.dir, { recursive: true });
  await writeFile(files.joinFile, JSON.stringify({ initial_cluster: 'head-a=https://10.213.70.10:2380,head-b=https://10.213.70.12:2380' }));
  const joining = await etcdArgs(files, pki, member);
  t.is(flag(joining, '--initial-cluster'), 'head-a=https://10.213.70.10:2380,head-b=https://10.213.70.12:2380');
  t.is(flag(joining, '--initial-cluster-state'), 'existing');

  await mkdir(path.join(files.dataDir, 'member'), { recursive: true });
  const restart = await etcdArgs(files, pki, member);
  t.false(restart.includes('--initial-cluster'));
  t.false(restart.includes('--initial-cluster-state'));
});
