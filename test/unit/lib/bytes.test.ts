import test from 'ava';
import { formatByteLimit, formatBytes, formatBytesLikeEngines } from '../../../src/lib/bytes.js';

test('formatBytes: binary units, one decimal below 10', (t) => {
  t.is(formatBytes(0), '0 B');
  t.is(formatBytes(1023), '1023 B');
  t.is(formatBytes(1024), '1.0 KiB');
  t.is(formatBytes(340 * 1024 ** 2), '340 MiB');
  t.is(formatBytes(1.5 * 1024 ** 3), '1.5 GiB');
  t.is(formatBytes(2048 * 1024 ** 5), '2048 PiB');
});

test('formatBytesLikeEngines: decimal units without a space, like docker images', (t) => {
  t.is(formatBytesLikeEngines(512), '512B');
  t.is(formatBytesLikeEngines(512_000), '512kB');
  t.is(formatBytesLikeEngines(250_000_000), '250MB');
  t.is(formatBytesLikeEngines(1_214_000_000), '1.21GB');
});

test('formatByteLimit: exact, in the largest unit that divides the limit', (t) => {
  t.is(formatByteLimit(512 * 1024 ** 2), '512 MiB');
  t.is(formatByteLimit(1024 ** 2), '1 MiB');
  t.is(formatByteLimit(1536 * 1024), '1536 KiB');
  t.is(formatByteLimit(4 * 1024 ** 3), '4 GiB');
  t.is(formatByteLimit(1000), '1000-byte');
});
