// Console log workers against a real BMC: OpenIPMI's ipmi_sim with serial-over-LAN on a TCP "serial
// port" this test serves, driven by real ipmitool processes as the API runs them. The session comes up
// and stays up, the password is in no command line, an interactive hold makes the worker step aside and
// come back, a stale session is deactivated, and a wrong password costs one log line however many
// attempts it takes.
import test from 'ava';
import { execa } from 'execa';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { consoleAttach } from '../../src/appliance/admin/commands/console.js';
import { holdConsole } from '../../src/appliance/console/hold.js';
import { ConsoleManager, followDatabase, type WantedConsole } from '../../src/appliance/console/manager.js';
import { storagePaths } from '../../src/lib/storage-layout.js';
import { nodectl } from '../../src/tools/nodectl/nodectl.js';
import { clusterFixture } from '../unit/tools/harness.js';
import { execaRunner } from '../../src/appliance/power/command.js';
import { parsePowerTarget, type IpmiTarget } from '../../src/appliance/power/uri.js';
import { allCommandLines, eventually, IpmiSim, stopAllIpmiSims } from '../helpers/ipmi-sim.js';
import { requireTools } from '../helpers/tools.js';
import { tempDir } from './helpers.js';

const ipmiTest = requireTools('ipmi_sim', 'ipmitool');
const fixture = clusterFixture(test, 'console');
const ADDR = '127.0.17.1';
const PORT = 6231;
const SERIAL_PORT = 9117;
const PASSWORD = `S3c$${Math.random().toString(16).slice(2, 8)}`;
const dir = tempDir('cw-console');
const sim = new IpmiSim({ dir: join(dir, 'bmc'), addr: ADDR, port: PORT, password: PASSWORD, sol: `tcp:${ADDR}:${SERIAL_PORT}` });
const uri = (password = PASSWORD) => `ipmi:///admin:${encodeURIComponent(password)}@${ADDR}:${PORT}`;
const want = (u: string): WantedConsole => ({ node: 'n0', uri: u, target: parsePowerTarget(u).target as IpmiTarget });

// The node's serial port: ipmi_sim connects here; what the test writes is what the node "prints".
let serial: Socket | undefined;
const server = createServer((socket) => {
  serial = socket;
  socket.on('error', () => undefined);
});

ipmiTest.before(async () => {
  await new Promise<void>((resolve) => server.listen(SERIAL_PORT, ADDR, resolve));
  await sim.start();
});

test.after.always(async () => {
  serial?.destroy();
  server.close();
  await stopAllIpmiSims();
  await execa('rm', ['-rf', dir], { reject: false });
});

function manager(said: string[]) {
  return new ConsoleManager({ dir: join(dir, 'consoles'), holdDir: join(dir, 'held'), run: execaRunner, say: (l) => said.push(l) });
}

const solProcesses = () => allCommandLines().filter((l) => l.startsWith('ipmitool ') && l.includes(' sol activate') && l.includes(ADDR));

ipmiTest.serial('the worker holds a SOL session; the password is in no command line; an interactive hold makes it step aside and resume', async (t) => {
  const said: string[] = [];
  const m = manager(said);
  try {
    await m.reconcile([want(uri())]);
    t.true(await eventually(() => m.states().n0 === 'connected', 15_000), JSON.stringify({ states: m.states(), said }));
    t.is(solProcesses().length, 1);
    t.false(allCommandLines().some((l) => l.includes(PASSWORD)));
    t.regex(said.join('\n'), /console n0: logging the serial console of BMC 127\.0\.17\.1/);

    const release = await holdConsole(join(dir, 'held'), 'n0');
    try {
      t.true(await eventually(() => m.states().n0 === 'held' && solProcesses().length === 0, 10_000), JSON.stringify({ states: m.states(), said }));
      // The interactive side (as cw-appliance console does) ends the session the worker left, then has the BMC's only SOL session.
      const env = { IPMI_PASSWORD: PASSWORD };
      const base = ['-I', 'lanplus', '-C', '3', '-H', ADDR, '-p', String(PORT), '-U', 'admin', '-E', 'sol'];
      await execa('ipmitool', [...base, 'deactivate'], { env, reject: false });
      const probed = await execa('stdbuf', ['-o0', 'ipmitool', ...base, 'activate'], { env, reject: false, stdin: 'pipe', timeout: 4000 });
      t.regex(String(probed.stdout), /SOL Session operational/, String(probed.stderr));
      // Still held: the worker has not taken the session back meanwhile.
      t.is(m.states().n0, 'held');
      await execa('ipmitool', [...base, 'deactivate'], { env, reject: false });
    } finally {
      await release();
    }
    t.true(await eventually(() => m.states().n0 === 'connected', 15_000), JSON.stringify({ states: m.states(), said }));
  } finally {
    await m.stopAll();
  }
  t.true(await eventually(() => solProcesses().length === 0, 5000));
});

ipmiTest.serial('a stale session on the BMC is deactivated, then the worker connects', async (t) => {
  const env = { IPMI_PASSWORD: PASSWORD };
  const args = ['-I', 'lanplus', '-C', '3', '-H', ADDR, '-p', String(PORT), '-U', 'admin', '-E', 'sol', 'activate'];
  // A client that dies without deactivating leaves the payload active on the BMC.
  const stale = execa('ipmitool', args, { env, reject: false, stdin: 'pipe' });
  // Time for the BMC to open it (its stdin is no terminal, so ipmitool never says when): two seconds were
  // once not enough on a busy machine.
  await new Promise((r) => setTimeout(r, 5000));
  stale.kill('SIGKILL');
  await stale;
  const blocked = await execa('ipmitool', args, { env, reject: false, stdin: 'pipe', timeout: 5000 });
  t.regex(String(blocked.stderr), /already active/, 'the BMC keeps the dead session');
  const said: string[] = [];
  const m = manager(said);
  try {
    await m.reconcile([want(uri())]);
    t.true(await eventually(() => m.states().n0 === 'connected', 20_000), JSON.stringify({ states: m.states(), said }));
    t.regex(said.join('\n'), /stale SOL session blocks BMC 127\.0\.17\.1: deactivating it/);
  } finally {
    await m.stopAll();
  }
});

ipmiTest.serial('a wrong password: backoff, one line for all attempts, never the password', async (t) => {
  const said: string[] = [];
  const m = manager(said);
  const before = Date.now();
  try {
    await m.reconcile([want(uri('wrong-password'))]);
    t.true(await eventually(() => m.states().n0 === 'backoff', 15_000));
    // Attempts after about 1 s and 2 s more: still one line.
    await new Promise((r) => setTimeout(r, 6000));
  } finally {
    await m.stopAll();
  }
  const lines = said.filter((l) => /reconnecting/.test(l));
  t.is(lines.length, 1, lines.join('\n'));
  t.regex(lines[0] ?? '', /BMC 127\.0\.17\.1: .*(Unable to establish|RMCP\+).*reconnecting with backoff/);
  t.false(said.join('\n').includes('wrong-password'));
  t.true(Date.now() - before < 30_000);
});

ipmiTest.serial('end to end: _console_log=yes through the API starts the worker; serial lines land timestamped in STORAGE/logs/consoles/n0.log; cw-nodectl console --log replays them', async (t) => {
  const c = await fixture.start();
  const paths = storagePaths(c.storage);
  const said: string[] = [];
  const m = new ConsoleManager({ dir: paths.consolesDir, holdDir: join(dir, 'held'), run: execaRunner, say: (l) => said.push(l) });
  // The API calls trigger() after each change request; this API (the tools' test harness) does not, so
  // the worker follows by its polling.
  const consoles = followDatabase(c.store, m, { intervalMs: 500, say: (l) => said.push(l) });
  try {
    await c.ok(nodectl, ['create', 'mac=52:54:00:00:00:01']);
    await c.ok(nodectl, ['-i', 'n0', 'update', `power_uri=${uri()}`]);
    t.false(await eventually(() => said.some((l) => /logging the serial console/.test(l)), 3000), 'no worker before the attribute');
    await c.ok(nodectl, ['-i', 'n0', 'set', '_console_log=yes']);
    t.true(await eventually(() => said.some((l) => /logging the serial console/.test(l)), 15_000), JSON.stringify({ states: m.states(), said, nodes: await c.client().get('/nodes') }));
    const file = join(paths.consolesDir, 'n0.log');
    for (let i = 0; i < 20 && !(existsSync(file) && readFileSync(file, 'utf8').includes('Debian GNU/Linux 12 n0 ttyS0')); i++) {
      serial?.write(`[  OK  ] Reached target \x1b[1mMulti-User System\x1b[0m.\r\nDebian GNU/Linux 12 n0 ttyS0\r\n`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    t.regex(text, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z Debian GNU\/Linux 12 n0 ttyS0$/m, `log: ${JSON.stringify(text)}; said: ${said.join(' | ')}`);
    t.regex(text, /Z \[  OK  \] Reached target Multi-User System\.$/m, 'terminal controls are removed');
    t.is(statSync(file).mode & 0o777, 0o640);
    t.false(text.includes(PASSWORD));
    const replay = await c.ok(nodectl, ['-i', 'n0', 'console', '--log', '--lines', '2']);
    t.is(replay.trim().split('\n').length, 2);
    t.regex(replay, /Z Debian GNU\/Linux 12 n0 ttyS0\n$/);
    // Turning the attribute off stops the worker and its ipmitool.
    await c.ok(nodectl, ['-i', 'n0', 'set', '_console_log=no']);
    t.true(await eventually(() => said.some((l) => /no longer logged/.test(l)) && solProcesses().length === 0, 10_000), said.join(' | '));
  } finally {
    await consoles.stop();
  }
});

ipmiTest.serial('cw-appliance console takes the SOL session from the log worker, ~. ends it, and the worker logs again', async (t) => {
  const c = await fixture.start();
  const paths = storagePaths(c.storage);
  await c.ok(nodectl, ['create', 'mac=52:54:00:00:00:02']);
  await c.ok(nodectl, ['-i', 'n0', 'update', `power_uri=${uri()}`]);
  const said: string[] = [];
  const holdDir = join(dir, 'held');
  const m = new ConsoleManager({ dir: paths.consolesDir, holdDir, run: execaRunner, say: (l) => said.push(l) });
  const file = join(paths.consolesDir, 'n0.log');
  const logText = () => (existsSync(file) ? readFileSync(file, 'utf8') : '');
  try {
    await m.reconcile([want(uri())]);
    t.true(await eventually(() => m.states().n0 === 'connected', 15_000), said.join(' | '));
    let shown = '';
    const ctx = { paths, env: {}, out: () => undefined, supervisorHealth: async () => ({ status: 'healthy', services: {} }) as never };
    await consoleAttach(ctx, 'n0', {
      holdDir,
      say: () => undefined,
      // The admin's terminal: ipmitool with a pipe; it types ~. once the node's line was shown.
      terminal: async (command) => {
        const p = execa('stdbuf', ['-o0', command.file, ...command.args], { env: command.env ?? {}, stdin: 'pipe', reject: false, timeout: 30_000 });
        const writer = setInterval(() => serial?.write('interactive-marker\r\n'), 300);
        p.stdout?.on('data', (chunk: Buffer) => {
          shown += chunk.toString('utf8');
          if (shown.includes('interactive-marker')) {
            clearInterval(writer);
            p.stdin?.write('\r~.');
          }
        });
        const r = await p;
        clearInterval(writer);
        return typeof r.exitCode === 'number' ? r.exitCode : 1;
      },
    });
    t.regex(shown, /SOL Session operational/);
    t.regex(shown, /interactive-marker/);
    t.regex(shown, /terminated ipmitool/, 'ended by the escape');
    t.true(said.some((l) => /interactive session holds the console/.test(l)), said.join(' | '));
    t.notRegex(logText(), /interactive-marker/, 'what the interactive session saw is not in the log');
    // Given back: the worker reconnects and logs again.
    t.true(await eventually(() => m.states().n0 === 'connected', 20_000), JSON.stringify({ states: m.states(), said }));
    for (let i = 0; i < 20 && !logText().includes('after-interactive'); i++) {
      serial?.write('after-interactive\r\n');
      await new Promise((r) => setTimeout(r, 500));
    }
    t.regex(logText(), /Z after-interactive$/m);
  } finally {
    await m.stopAll();
  }
});
