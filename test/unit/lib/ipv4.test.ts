import test from 'ava';
import {
  broadcastOf,
  inSubnet,
  intToIp,
  ipToInt,
  isIPv4,
  isPrivateIPv4,
  isValidIPv4,
  looksLikeIPv4,
  netmaskToPrefix,
  networkOf,
  prefixToNetmask,
} from '../../../src/lib/ipv4.js';

test('IPv4 addresses: dotted quads 0-255 without leading zeros', (t) => {
  for (const ok of ['0.0.0.0', '10.0.0.1', '192.168.122.100', '255.255.255.255']) t.is(isValidIPv4(ok), true, ok);
  for (const bad of ['256.0.0.1', '10.0.0', '10.0.0.1.2', '010.0.0.1', '10.0.0.-1', '1e1.0.0.1', ' 10.0.0.1', '10.0.0.1\n', '']) {
    t.is(typeof isValidIPv4(bad), 'string', bad);
  }
  t.regex(isValidIPv4('10.0.0.300') as string, /300 is larger than 255/);
});

test('ipToInt and intToIp convert both ways over the whole space', (t) => {
  t.is(ipToInt('0.0.0.0'), 0);
  t.is(ipToInt('10.0.0.1'), 167772161);
  t.is(ipToInt('255.255.255.255'), 0xffffffff);
  t.is(intToIp(0xffffffff), '255.255.255.255');
  t.is(intToIp(ipToInt('192.168.122.100') + 1), '192.168.122.101');
  t.throws(() => ipToInt('10.0.0.256'), { message: 'invalid IPv4 address "10.0.0.256"' });
  t.throws(() => intToIp(2 ** 32));
  t.throws(() => intToIp(-1));
  t.throws(() => intToIp(1.5));
});

test('subnets: masks, networks, broadcasts and membership', (t) => {
  t.is(prefixToNetmask(24), '255.255.255.0');
  t.is(prefixToNetmask(0), '0.0.0.0');
  t.is(prefixToNetmask(32), '255.255.255.255');
  t.is(prefixToNetmask(20), '255.255.240.0');
  t.is(intToIp(networkOf('10.10.24.100', 22)), '10.10.24.0');
  t.is(intToIp(broadcastOf('10.10.24.100', 22)), '10.10.27.255');
  t.true(inSubnet('192.168.122.7', '192.168.122.0', 24));
  t.true(inSubnet('192.168.123.7', '192.168.122.100', 23));
  t.false(inSubnet('192.168.123.7', '192.168.122.0', 24));
  t.true(inSubnet(ipToInt('10.1.2.3'), '10.0.0.0', 8));
  t.throws(() => prefixToNetmask(33));
});

test('private ranges', (t) => {
  t.true(isPrivateIPv4('10.1.2.3'));
  t.true(isPrivateIPv4('172.31.255.1'));
  t.false(isPrivateIPv4('172.32.0.1'));
  t.true(isPrivateIPv4('192.168.0.1'));
  t.false(isPrivateIPv4('192.169.0.1'));
});

test('RFC 1918 ranges', (t) => {
  t.true(isPrivateIPv4('10.0.0.1'));
  t.true(isPrivateIPv4('172.16.5.4'));
  t.true(isPrivateIPv4('172.31.255.1'));
  t.false(isPrivateIPv4('172.32.0.1'));
  t.true(isPrivateIPv4('192.168.1.1'));
  t.false(isPrivateIPv4('192.169.1.1'));
});

test('netmasks convert to prefix lengths and back; a non-contiguous mask is refused', (t) => {
  for (let prefix = 0; prefix <= 32; prefix++) t.is(netmaskToPrefix(prefixToNetmask(prefix)), prefix);
  t.is(netmaskToPrefix('255.255.240.0'), 20);
  t.throws(() => netmaskToPrefix('255.0.255.0'), { message: 'invalid netmask "255.0.255.0"' });
  t.throws(() => netmaskToPrefix('255.255.255'), { message: 'invalid IPv4 address "255.255.255"' });
});

test('isIPv4 is isValidIPv4 as a boolean; looksLikeIPv4 only checks the shape', (t) => {
  t.true(isIPv4('10.0.0.1'));
  t.false(isIPv4('10.0.0.01'));
  t.false(isIPv4('10.0.0.256'));
  t.false(isIPv4('10.0.0.1\n'));
  t.true(looksLikeIPv4('999.1.1.1'));
  t.false(looksLikeIPv4('n1.2.3.4'));
  t.false(isPrivateIPv4('not an address'));
});
