import test from 'ava';
import { ensure, isSafeAttrKey, isSafeAttrValue, isSafeCmdline, isSafeName, isValidAdminName, isValidMac, normalizeMac } from '../../../src/lib/validate.js';

test('MACs in colon or dash form, any case, are valid and normalize to lowercase colons', (t) => {
  t.is(isValidMac('52:54:00:00:00:01'), true);
  t.is(isValidMac('52-54-00-AB-cd-EF'), true);
  t.is(normalizeMac('52-54-00-AB-cd-EF'), '52:54:00:ab:cd:ef');
  t.is(normalizeMac('52:54:00:AB:CD:EF'), '52:54:00:ab:cd:ef');
});

test('malformed, mixed-separator, all-zero and multicast MACs are refused with a reason', (t) => {
  for (const bad of ['52:54:00:zz:00:01', '52:54:00:00:00', '52:54:00:00:00:01:02', '52:54-00:00:00:01', '5254.0000.0001', '', '52:54:00:00:00:1', ' 52:54:00:00:00:01']) {
    t.is(typeof isValidMac(bad), 'string', bad);
    t.is(normalizeMac(bad), null, bad);
  }
  t.regex(isValidMac('00:00:00:00:00:00') as string, /all-zero/);
  t.regex(isValidMac('ff:ff:ff:ff:ff:ff') as string, /multicast or broadcast/);
  t.regex(isValidMac('01:00:5e:00:00:01') as string, /multicast/);
});

test('safe names: letters, digits, dot, underscore, dash; start alphanumeric; up to 63', (t) => {
  for (const ok of ['n0', 'DefaultBoot', 'rocky-9.4_x86', '0abc', 'a'.repeat(63)]) t.is(isSafeName(ok), true, ok);
  t.regex(isSafeName('') as string, /empty/);
  t.regex(isSafeName('-n0') as string, /start with a letter or digit/);
  t.regex(isSafeName('.hidden') as string, /start/);
  t.regex(isSafeName('a'.repeat(64)) as string, /64 characters long \(limit 63\)/);
  t.is(isSafeName('n0;reboot'), 'name contains ";" (allowed: letters, digits, ".", "_", "-")');
  t.regex(isSafeName('n0 x') as string, /U\+0020 \(space\)/);
  t.regex(isSafeName('n0\n') as string, /newline/);
  t.regex(isSafeName('a/b') as string, /"\/"/);
  t.regex(isSafeName('nö') as string, /"ö"/);
});

test('attribute keys: optional leading underscore, then a letter', (t) => {
  for (const ok of ['_boot_config', '_boot_style', 'rack', 'a.b-c_d', `_${'a'.repeat(64)}`]) t.is(isSafeAttrKey(ok), true, ok);
  t.regex(isSafeAttrKey('') as string, /empty/);
  t.regex(isSafeAttrKey('__x') as string, /must start with a letter/);
  t.regex(isSafeAttrKey('9lives') as string, /must start with a letter/);
  t.regex(isSafeAttrKey('a'.repeat(65)) as string, /65 characters long/);
  t.regex(isSafeAttrKey('a=b') as string, /"="/);
  t.regex(isSafeAttrKey('a{b}') as string, /"\{"/);
});

test('attribute values: printable text, none of ; { } quotes backslash newline NUL, up to 1024', (t) => {
  for (const ok of ['', 'DefaultBoot', 'ipmi:///admin:pa$$w0rd@172.45.88.1', 'rack 3, row 2', 'Zürich', 'x'.repeat(1024)]) {
    t.is(isSafeAttrValue(ok), true, ok);
  }
  for (const [bad, reason] of [
    ['a;b', '";"'],
    ['a{b', '"{"'],
    ['a}b', '"}"'],
    ['a"b', `'"'`],
    ["a'b", `"'"`],
    ['a\\b', '"\\"'],
    ['a\nb', 'newline'],
    ['a\0b', 'NUL'],
    ['a\tb', 'tab'],
    ['a\u202eb', 'U+202E'],
    ['a\u2028b', 'U+2028'],
  ] as const) {
    const got = isSafeAttrValue(bad);
    t.is(typeof got, 'string', bad);
    t.true((got as string).includes(reason), `${JSON.stringify(bad)} -> ${String(got)}`);
  }
  t.regex(isSafeAttrValue('x'.repeat(1025)) as string, /1025 characters long \(limit 1024\)/);
});

test('kernel command lines: printable ASCII without quotes, ; {} backslash or newlines, up to 2048', (t) => {
  t.is(isSafeCmdline('console=ttyS0,115200 quiet rd.neednet=1 ip=dhcp root=live:http://10.0.0.1/img'), true);
  t.is(isSafeCmdline(''), true);
  for (const bad of ['a "b"', "a 'b'", 'a;reboot', 'a ${x}', 'a\\b', 'a\nb', 'a\tb', 'a`id`', 'é']) {
    t.is(typeof isSafeCmdline(bad), 'string', bad);
  }
  t.regex(isSafeCmdline('x'.repeat(2049)) as string, /limit 2048/);
});

test('ensure throws the reason with a label, and passes valid values', (t) => {
  t.notThrows(() => ensure(isSafeName('n0'), 'node name'));
  t.throws(() => ensure(isSafeName('n0;x'), 'node name'), { message: /^node name: name contains ";"/ });
});

test('admin names: 1-32 of a-z 0-9 _ -, starting with a letter or _', (t) => {
  for (const ok of ['alice', '_svc', 'a-b_c9', 'a'.repeat(32)]) t.is(isValidAdminName(ok), true, ok);
  for (const bad of ['', 'Alice', '9lives', '-x', 'a'.repeat(33), 'root;', 'al ice', 'alice\n']) {
    t.is(isValidAdminName(bad), 'use 1-32 of a-z 0-9 _ -, starting with a letter or _', bad);
  }
});
