// cw-appliance console NODE with a fake terminal and a fake ipmitool runner: it takes the console from
// the log worker (hold file), ends a stale session, runs sol activate with the password only in the
// environment, and gives the console back however the session ends.
import test from 'ava';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { consoleAttach } from '../../../src/appliance/admin/commands/console.js';
import { holdConsole, holdFile } from '../../../src/appliance/console/hold.js';
import { openStore } from '../../../src/appliance/db/index.js';
import type { Command } from '../../../src/appliance/power/command.js';
import { prepareStorage, storagePaths } from '../../../src/lib/storage-layout.js';

const SECRET = 's3cret pw';

async function setup(t: { teardown(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'cw-console-admin-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const paths = storagePaths(join(dir, 'storage'));
  await prepareStorage(paths.root);
  const store = await openStore({ paths });
  await store.createNode({ power_uri: `ipmi:///admin:${encodeURIComponent(SECRET)}@10.1.15.1:6230` } as never);
  await store.createNode({ power_uri: 'redfish://root:x@10.1.16.1' } as never);
  await store.createNode({} as never);
  await store.close();
  const ctx = { paths, env: {}, out: () => undefined, supervisorHealth: async () => ({ status: 'healthy', services: {} }) as never };
  return { ctx, holdDir: join(dir, 'run', 'consoles') };
}

test('attaches with sol activate after a deactivate, holding the console meanwhile', async (t) => {
  const { ctx, holdDir } = await setup(t);
  const ran: Command[] = [];
  let heldDuring = false;
  const said: string[] = [];
  await consoleAttach(ctx, 'n0', {
    holdDir,
    handOverMs: 0,
    say: (l) => said.push(l),
    run: async (c) => {
      ran.push(c);
      return { exitCode: 0, stdout: '', stderr: '' };
    },
    terminal: async (c) => {
      ran.push(c);
      heldDuring = existsSync(holdFile(holdDir, 'n0'));
      return 0;
    },
  });
  t.deepEqual(ran.map((c) => c.args.slice(-2).join(' ')), ['sol deactivate', 'sol activate']);
  for (const c of ran) {
    t.deepEqual(c.env, { IPMI_PASSWORD: SECRET });
    t.false(c.args.join(' ').includes('s3cret'));
    t.deepEqual(c.args.slice(0, 12), ['-I', 'lanplus', '-C', '3', '-H', '10.1.15.1', '-p', '6230', '-U', 'admin', '-E', 'sol']);
  }
  t.true(heldDuring);
  t.false(existsSync(holdFile(holdDir, 'n0')), 'the hold is given back');
  t.regex(said.join('\n'), /type ~\. at the start of a line to leave/);
});

test('a failing session still gives the console back; a second session is refused; nodes without an ipmi power_uri are refused', async (t) => {
  const { ctx, holdDir } = await setup(t);
  const run = async () => ({ exitCode: 0, stdout: '', stderr: '' });
  await t.throwsAsync(consoleAttach(ctx, 'n0', { holdDir, handOverMs: 0, say: () => undefined, run, terminal: async () => 1 }), { message: /ended with status 1/ });
  t.false(existsSync(holdFile(holdDir, 'n0')));
  const release = await holdConsole(holdDir, 'n0');
  await t.throwsAsync(consoleAttach(ctx, 'n0', { holdDir, handOverMs: 0, say: () => undefined, run, terminal: async () => 0 }), { message: /already attached to n0/ });
  await release();
  await t.throwsAsync(consoleAttach(ctx, 'n1', { holdDir, run }), { message: /need an ipmi:\/\/\/ power_uri/ });
  await t.throwsAsync(consoleAttach(ctx, 'n2', { holdDir, run }), { message: /has no power_uri/ });
  await t.throwsAsync(consoleAttach(ctx, 'n9', { holdDir, run }), { message: /no such node: n9/ });
});

test('a hold left by a process that is gone is taken over', async (t) => {
  const { holdDir } = await setup(t);
  const release = await holdConsole(holdDir, 'n0', 2 ** 22 + 12345);
  const again = await holdConsole(holdDir, 'n0');
  await again();
  await release();
  t.false(existsSync(holdFile(holdDir, 'n0')));
});
