import test from 'ava';
import { hashPassword } from '../../../src/lib/password.js';
import { DeadlineError } from '../../../src/appliance/power/command.js';
import type { PowerAction, PowerPlugin } from '../../../src/appliance/power/types.js';
import type { PowerTarget } from '../../../src/appliance/power/uri.js';
import { session } from './helpers.js';

const SECRET = 'Sup3rSecret';
const URI = `ipmi:///admin:${SECRET}@10.1.15.1`;
const MASKED = 'ipmi:///admin:********@10.1.15.1';
const rootAuth = (password: string) => ({ authorization: `Basic ${Buffer.from(`root:${password}`).toString('base64')}` });

test('power URIs are masked in every answer; root asking with X-CW-Show-Secrets sees them; an admin asking is refused', async (t) => {
  const s = await session(t);
  await s.store.setSetting('root_password_hash', await hashPassword('correct horse'));
  const created = await s.call('POST', '/nodes', { power_uri: URI, attributes: { _power_uri: URI } });
  t.is(created.status, 201);
  t.is(created.body.data.power_uri, MASKED);
  await s.call('POST', '/attribs', { name: 'rack1', attributes: { _power_uri: `redfish://root:${SECRET}@10.1.16.1` } });
  await s.call('POST', '/nodes', { groups: ['rack1'] });
  const answers = [
    await s.call('GET', '/nodes'),
    await s.call('GET', '/node/n0'),
    await s.call('GET', '/node/n1/attributes?resolved=1'),
    await s.call('GET', '/attribs'),
    await s.call('GET', '/attrib/rack1'),
    await s.call('PATCH', '/nodes', { ids: 'n0', set: { x: '1' } }),
  ];
  for (const a of answers) {
    t.is(a.status, 200);
    t.false(JSON.stringify(a.body).includes(SECRET), JSON.stringify(a.body));
  }
  t.is(answers[0]?.body.data[0].power_uri, MASKED);
  t.is(answers[0]?.body.data[0].attributes._power_uri, MASKED);
  t.is(answers[2]?.body.data._power_uri.value, 'redfish://root:********@10.1.16.1');
  t.is(answers[2]?.body.data._power_uri.from, 'group');

  const refused = await s.call('GET', '/nodes', undefined, { 'x-cw-show-secrets': '1' });
  t.is(refused.status, 403);
  t.regex(refused.body.error, /only root/);
  const asRoot = await s.api.inject({ url: '/api/v1/node/n0', headers: { ...rootAuth('correct horse'), 'x-cw-show-secrets': '1' } });
  t.is(asRoot.json().data.power_uri, URI);
  const rootPlain = await s.api.inject({ url: '/api/v1/node/n0', headers: rootAuth('correct horse') });
  t.is(rootPlain.json().data.power_uri, MASKED);
  // The store keeps the real value: a listing never writes the mask back.
  t.is((await s.store.getNode('n0'))?.power_uri, URI);
});

test('power URIs that cannot run, or hold shell syntax, whitespace or control characters, are 400 without echoing the password', async (t) => {
  const s = await session(t);
  await s.call('POST', '/nodes', {});
  await s.call('POST', '/attribs', { name: 'g' });
  const bad: Array<[string, RegExp]> = [
    [`ipmi:///admin:${SECRET};reboot@10.0.0.1`, /contains ";"/],
    [`ipmi:///admin:$(id)${SECRET}@10.0.0.1`, /contains "\$"/],
    [`ipmi:///admin:\`id\`${SECRET}@10.0.0.1`, /contains "`"/],
    [`ipmi:///admin:${SECRET} x@10.0.0.1`, /without spaces/],
    [`ipmi:///admin:${SECRET}\n@10.0.0.1`, /control characters/],
    [`ipmi:///admin:${SECRET}\u0000@10.0.0.1`, /control characters/],
    [MASKED, /contains "\*"/],
    [`ipmi://admin:${SECRET}@10.0.0.1`, /three slashes/],
    [`telnet://admin:${SECRET}@10.0.0.1`, /unknown power URI scheme/],
    [`ipmi:///admin:${SECRET}@-oProxyCommand=x`, /invalid BMC address/],
  ];
  for (const [uri, message] of bad) {
    for (const [path, body] of [
      ['/node/n0', { power_uri: uri }],
      ['/node/n0', { attributes: { _power_uri: uri } }],
      ['/attrib/g', { attributes: { _power_uri: uri } }],
    ] as const) {
      const res = await s.call('PATCH', path, body);
      t.is(res.status, 400, `${path} ${JSON.stringify(body)}`);
      t.regex(res.body.error, message);
      t.false(res.body.error.includes(SECRET), res.body.error);
    }
  }
  t.is((await s.call('GET', '/node/n0')).body.data.power_uri, null);
});

/** A fake IPMI plugin: answers from `states` by BMC address, records every call (no datagram leaves). */
function fakeIpmi(states: Map<string, 'on' | 'off'>, delayMs = 0) {
  const calls: Array<{ bmc: string; action: PowerAction }> = [];
  let running = 0;
  let peak = 0;
  const pluginFor = (target: PowerTarget): PowerPlugin => {
    if (target.scheme !== 'ipmi') throw new Error(`not ipmi: ${target.scheme}`);
    const call = async (action: PowerAction, signal: AbortSignal): Promise<void> => {
      calls.push({ bmc: target.bmc, action });
      running++;
      peak = Math.max(peak, running);
      try {
        if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
        if (target.bmc === '10.1.15.99') {
          // Never answers: only the deadline ends it.
          await new Promise((_, reject) => signal.addEventListener('abort', () => reject(new DeadlineError()), { once: true }));
        }
        if (target.password !== 'pw') throw new Error(`BMC ${target.bmc} refused the session (wrong user or password?): its RAKP 2 key exchange code does not match the password`);
      } finally {
        running--;
      }
    };
    return {
      async status(signal) {
        await call('status', signal);
        return states.get(target.bmc) ?? 'off';
      },
      async act(action, signal) {
        await call(action, signal);
        if (action === 'on' || action === 'off') states.set(target.bmc, action);
      },
    };
  };
  return { pluginFor, calls, peak: () => peak };
}

test('POST /nodes/power: one answer per node in node order, inherited _power_uri, errors per node, the password never logged', async (t) => {
  const states = new Map<string, 'on' | 'off'>([['10.1.15.1', 'on']]);
  const fake = fakeIpmi(states);
  const lines: string[] = [];
  const s = await session(t, { power: { pluginFor: fake.pluginFor }, log: (line) => lines.push(line) });
  await s.call('POST', '/attribs', { name: 'rack', attributes: { _power_uri: 'ipmi:///admin:pw@10.1.15.2' } });
  await s.call('POST', '/nodes', [
    { index: 1, power_uri: 'ipmi:///admin:pw@10.1.15.1' },
    { index: 2, groups: ['rack'] },
    { index: 3 },
    { index: 4, power_uri: 'ipmi:///admin:wrong@10.1.15.4' },
  ]);
  const status = await s.call('POST', '/nodes/power', { ids: 'n[1-4]', action: 'status' });
  t.is(status.status, 200);
  t.deepEqual(status.body.data, [
    { name: 'n1', ok: true, state: 'on', result: 'on' },
    { name: 'n2', ok: true, state: 'off', result: 'off' },
    { name: 'n3', ok: false, error: 'no power_uri (set one: cw-nodectl -i n3 update power_uri=ipmi:///USER:PASSWORD@BMC)' },
    { name: 'n4', ok: false, error: 'BMC 10.1.15.4 refused the session (wrong user or password?): its RAKP 2 key exchange code does not match the password' },
  ]);
  t.deepEqual(fake.calls.map((c) => c.bmc).sort(), ['10.1.15.1', '10.1.15.2', '10.1.15.4']);
  const boot = await s.call('POST', '/nodes/power', { ids: 'n[1-2]', action: 'boot' });
  t.deepEqual(boot.body.data, [
    { name: 'n1', ok: true, state: 'on', result: 'reset' },
    { name: 'n2', ok: true, state: 'off', result: 'on' },
  ]);
  t.is(states.get('10.1.15.2'), 'on');
  const one = await s.call('POST', '/node/n2/power', { action: 'off' });
  t.deepEqual(one.body.data, { name: 'n2', ok: true, result: 'off' });
  t.is(states.get('10.1.15.2'), 'off');
  const powerLines = lines.filter((l) => l.startsWith('power '));
  t.deepEqual(powerLines, [
    'power status n[1-4] by tester: 2 ok, 2 failed (n[3-4])',
    'power boot n[1-2] by tester: 2 ok',
    'power off n2 by tester: off',
  ]);
  t.false(lines.some((l) => l.includes('pw@') || l.includes(':pw')));
});

test('a BMC that never answers costs its deadline and no more; the fan-out bounds the work at once', async (t) => {
  const fake = fakeIpmi(new Map(), 50);
  const s = await session(t, { power: { pluginFor: fake.pluginFor } });
  await s.call('POST', '/nodes', [
    { index: 7, power_uri: 'ipmi:///admin:pw@10.1.15.99' },
    ...Array.from({ length: 12 }, (_, i) => ({ index: 10 + i, power_uri: `ipmi:///admin:pw@10.1.16.${i + 1}` })),
  ]);
  const started = Date.now();
  const res = await s.call('POST', '/nodes/power', { ids: 'all', action: 'status', fanout: 3, timeout: 0.3 });
  const elapsed = Date.now() - started;
  t.is(res.status, 200);
  t.deepEqual(res.body.data[0], { name: 'n7', ok: false, error: 'BMC 10.1.15.99 did not answer within 0.3 s' });
  t.true(res.body.data.slice(1).every((r: { ok: boolean }) => r.ok));
  t.is(fake.peak(), 3);
  // 13 nodes, 3 at once, 50 ms each plus one 300 ms deadline: well under a second.
  t.true(elapsed < 1500, `${elapsed} ms`);

  const bad = await s.call('POST', '/nodes/power', { ids: 'all', action: 'explode' });
  t.is(bad.status, 400);
  t.is((await s.call('POST', '/nodes/power', { ids: 'all', action: 'status', fanout: 0 })).status, 400);
  t.is((await s.call('POST', '/nodes/power', { ids: 'n99', action: 'status' })).status, 404);
  t.is((await s.call('POST', '/node/n99/power', { action: 'status' })).status, 404);
});
