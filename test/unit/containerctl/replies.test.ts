import test from 'ava';
import { demuxFrames, errorLine, parseLoadReply, splitJsonObjects } from '../../../src/host/containerctl/engine/replies.js';

test('Docker: one Loaded image line per tag', (t) => {
  const reply = '{"stream":"Loaded image: cw-headnode:0.1.0\\n"}\n{"stream":"Loaded image: cw-headnode:latest\\n"}\n';
  t.deepEqual(parseLoadReply(reply), { loaded: ['cw-headnode:0.1.0', 'cw-headnode:latest'], error: undefined });
});

test('Podman: localhost/ names, comma separated, no trailing newline', (t) => {
  const reply = '{"stream":"Loaded image: localhost/cw-headnode:0.1.0,localhost/cw-headnode:latest"}';
  t.deepEqual(parseLoadReply(reply).loaded, ['localhost/cw-headnode:0.1.0', 'localhost/cw-headnode:latest']);
});

test('an error inside a 200 reply is found', (t) => {
  const reply =
    '{"status":"Loading layer","progressDetail":{"current":512,"total":1024}}\r\n' +
    '{"errorDetail":{"message":"Error processing tar file(exit status 1): unexpected EOF"},"error":"Error processing tar file(exit status 1): unexpected EOF"}\n';
  const parsed = parseLoadReply(reply);
  t.is(parsed.error, 'Error processing tar file(exit status 1): unexpected EOF');
  t.deepEqual(parsed.loaded, []);
});

test('untagged images are reported by id', (t) => {
  t.deepEqual(parseLoadReply('{"stream":"Loaded image ID: sha256:abc\\n"}').loaded, ['sha256:abc']);
});

test('concatenated objects split even with braces inside strings', (t) => {
  t.deepEqual(splitJsonObjects('{"a":"}{"}{"b":{"c":1}}'), [{ a: '}{' }, { b: { c: 1 } }]);
});

test('multiplexed log frames are split by stream', (t) => {
  const frame = (type: number, text: string) => {
    const header = Buffer.alloc(8);
    header[0] = type;
    header.writeUInt32BE(Buffer.byteLength(text), 4);
    return Buffer.concat([header, Buffer.from(text)]);
  };
  const frames = demuxFrames(Buffer.concat([frame(1, '[dhcpd] up\n'), frame(2, '[sshd] oops\n')]));
  t.deepEqual(
    frames.map((f) => [f.stream, f.data.toString()]),
    [
      [1, '[dhcpd] up\n'],
      [2, '[sshd] oops\n'],
    ],
  );
  t.deepEqual(demuxFrames(Buffer.from('plain tty text')).map((f) => f.data.toString()), ['plain tty text']);
});

test('the ERROR: line of a failed cw-appliance command', (t) => {
  t.is(errorLine('warning: x\nERROR: invalid admin name "Bob"\n'), 'invalid admin name "Bob"');
  t.is(errorLine('just noise\n'), undefined);
});
