import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import test from 'ava';
import { clusterId, type TokenInput } from '../../../src/host/containerctl/cluster-id/cluster-id.js';
import { tempDir } from '../lib/keys.js';
import { MemoryEngine, testContext } from './memory-engine.js';

const TOKEN = 'tok_0123456789abcdef';

function setup() {
  const engine = new MemoryEngine();
  engine.addContainer({ name: 'cw-headnode' });
  engine.onExec = (cmd, env) => ({
    exitCode: 0,
    stdout: env.some((e) => e.startsWith('CW_CLUSTER_ID=')) ? 'Cluster ID set\n' : `${TOKEN}\n`,
    stderr: '',
  });
  return { engine, ctx: testContext(engine) };
}

function pipe(text: string): TokenInput {
  const stream = new PassThrough();
  stream.end(text);
  return stream;
}

function terminal(): TokenInput {
  const stream = new PassThrough() as PassThrough & TokenInput;
  stream.isTTY = true;
  return stream;
}

/** The token went in the exec's environment and appears in no word of its command line. */
function assertSentInEnv(t: import('ava').ExecutionContext, engine: MemoryEngine, token = TOKEN): void {
  t.is(engine.execs.length, 1);
  const exec = engine.execs[0]!;
  t.deepEqual(exec.cmd, ['cw-appliance', 'cluster-id']);
  t.false(exec.cmd.some((word) => word.includes(token)), 'the token is not in the argv');
  t.deepEqual(exec.env, [`CW_CLUSTER_ID=${token}`]);
}

test('cluster-id - reads the token from stdin and passes it in the environment, not the argv', async (t) => {
  const { engine, ctx } = setup();
  await clusterId({ token: '-' }, ctx, { stdin: pipe(`${TOKEN}\n`) });
  assertSentInEnv(t, engine);
  t.is(ctx.out.text, 'Cluster ID set\n');
  t.is(ctx.err.text, '');
});

test('cluster-id without TOKEN reads a piped stdin', async (t) => {
  const { engine, ctx } = setup();
  await clusterId({}, ctx, { stdin: pipe(`  ${TOKEN}\r\n`) });
  assertSentInEnv(t, engine);
  t.is(ctx.err.text, '');
});

test('cluster-id @FILE reads the token with the checked file reader', async (t) => {
  const { dir, cleanup } = tempDir();
  t.teardown(cleanup);
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  const { engine, ctx } = setup();
  await clusterId({ token: '@token' }, ctx, { stdin: terminal(), cwd: dir });
  assertSentInEnv(t, engine);
  t.is(ctx.err.text, '');

  const other = setup();
  await t.throwsAsync(clusterId({ token: '@/dev/zero' }, other.ctx, { stdin: terminal() }), { message: /is not a regular file/ });
  await t.throwsAsync(clusterId({ token: '@missing' }, other.ctx, { stdin: terminal(), cwd: dir }), { message: /no such file/ });
  writeFileSync(join(dir, 'empty'), '\n');
  await t.throwsAsync(clusterId({ token: '@empty' }, other.ctx, { stdin: terminal(), cwd: dir }), { message: /is empty, nothing changed/ });
  t.deepEqual(other.engine.execs, [], 'nothing was sent');
});

test('a TOKEN on the command line still works, with a warning on stderr, and is sent in the environment', async (t) => {
  const { engine, ctx } = setup();
  await clusterId({ token: TOKEN }, ctx, { stdin: terminal() });
  assertSentInEnv(t, engine);
  t.regex(ctx.err.text, /^WARNING: a cluster id given on the command line is visible in the process list/);
  t.false(ctx.err.text.includes(TOKEN), 'the warning does not repeat the token');
  t.is(ctx.out.text, 'Cluster ID set\n');
});

test('without TOKEN on a terminal, or with an empty pipe, the current cluster id is shown', async (t) => {
  for (const stdin of [terminal(), pipe('')]) {
    const { engine, ctx } = setup();
    await clusterId({}, ctx, { stdin });
    t.deepEqual(engine.execs, [{ id: engine.execs[0]!.id, cmd: ['cw-appliance', 'cluster-id'], env: [] }]);
    t.is(ctx.out.text, `${TOKEN}\n`);
  }
});

test('empty or oversized input changes nothing', async (t) => {
  const { engine, ctx } = setup();
  await t.throwsAsync(clusterId({ token: '-' }, ctx, { stdin: pipe('\n') }), { message: 'empty cluster id on stdin, nothing changed' });
  await t.throwsAsync(clusterId({ token: '  ' }, ctx, { stdin: terminal() }), { message: 'empty cluster id, nothing changed' });
  await t.throwsAsync(clusterId({ token: '-' }, ctx, { stdin: pipe('x'.repeat(5000)) }), { message: /too long/ });
  t.deepEqual(engine.execs, []);
});
