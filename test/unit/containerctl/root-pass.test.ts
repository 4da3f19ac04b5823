import { PassThrough } from 'node:stream';
import test from 'ava';
import { isPasswordHash } from '../../../src/lib/password.js';
import { passwordFromLines, readHidden, readNewPassword, rootPass, type PasswordInput } from '../../../src/host/containerctl/root-pass/root-pass.js';
import { MemoryEngine, TextSink, testContext } from './memory-engine.js';

test('piped input: first line is the password, a second line must match', (t) => {
  t.is(passwordFromLines('s3cret\n'), 's3cret');
  t.is(passwordFromLines('s3cret'), 's3cret');
  t.is(passwordFromLines('s3cret\r\ns3cret\r\n'), 's3cret');
  t.is(passwordFromLines('with spaces \n'), 'with spaces ');
  t.throws(() => passwordFromLines('s3cret\nother\n'), { message: 'passwords do not match, nothing changed' });
});

test('empty input is refused', (t) => {
  for (const input of ['', '\n', '\n\n', '\nsecret\n']) {
    t.throws(() => passwordFromLines(input), { message: 'empty password, nothing changed' }, JSON.stringify(input));
  }
});

function fakeTerminal(): PasswordInput & PassThrough {
  const stream = new PassThrough() as PassThrough & PasswordInput;
  stream.isTTY = true;
  stream.setRawMode = () => stream;
  return stream;
}

test('on a terminal: two prompts, no echo, backspace works', async (t) => {
  const tty = fakeTerminal();
  const prompts = new TextSink();
  const reading = readNewPassword(tty, prompts);
  tty.write('pw1x\u007f\r');
  await new Promise((r) => setImmediate(r));
  tty.write('pw1\r');
  t.is(await reading, 'pw1');
  t.is(prompts.text, 'New root password: \nRetype new root password: \n');
});

test('on a terminal: mismatch and Ctrl-C', async (t) => {
  const tty = fakeTerminal();
  const reading = readNewPassword(tty, new TextSink());
  tty.write('a\r');
  await new Promise((r) => setImmediate(r));
  tty.write('b\r');
  await t.throwsAsync(reading, { message: 'passwords do not match, nothing changed' });
  const again = fakeTerminal();
  const cancelled = readHidden('New root password: ', again, new TextSink());
  again.write('\u0003');
  await t.throwsAsync(cancelled, { message: 'cancelled, nothing changed' });
});

test('root-pass sends only a hash, in CW_ROOT_HASH, and prints what the appliance answers', async (t) => {
  const engine = new MemoryEngine();
  engine.addContainer({ name: 'cw-headnode' });
  engine.onExec = () => ({ exitCode: 0, stdout: 'Root password set\n', stderr: '' });
  const ctx = testContext(engine);
  const stdin = new PassThrough();
  stdin.end('correct horse\ncorrect horse\n');
  await rootPass({}, ctx, { stdin });
  const exec = engine.execs[0]!;
  t.deepEqual(exec.cmd, ['cw-appliance', 'root-pass']);
  t.is(exec.env.length, 1);
  const hash = exec.env[0]!.replace(/^CW_ROOT_HASH=/, '');
  t.true(isPasswordHash(hash));
  t.false(exec.env[0]!.includes('correct horse'));
  t.is(ctx.out.text, 'Root password set\n');
});

test('root-pass with empty stdin changes nothing', async (t) => {
  const engine = new MemoryEngine();
  engine.addContainer({ name: 'cw-headnode' });
  const stdin = new PassThrough();
  stdin.end('\n');
  await t.throwsAsync(rootPass({}, testContext(engine), { stdin }), { message: 'empty password, nothing changed' });
  t.deepEqual(engine.execs, []);
});
