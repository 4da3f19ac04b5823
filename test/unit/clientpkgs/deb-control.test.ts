// A DEB's name, version and architecture come from its own control file (not its file name), with
// dpkg-deb's control.tar compressed as gzip, xz, zstd or not at all; what is not a DEB is said plainly.
import test from 'ava';
import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, rm, truncate, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DebFormatError, parseControl, readDebControl } from '../../../src/appliance/clientpkgs/deb/control.js';
import { requireTools } from '../../helpers/tools.js';

const debTest = requireTools('dpkg-deb');

async function buildDeb(dir: string, compressor: string, control: string): Promise<string> {
  const root = join(dir, `root-${compressor}`);
  await mkdir(join(root, 'DEBIAN'), { recursive: true });
  await mkdir(join(root, 'usr', 'share', 'x'), { recursive: true });
  await writeFile(join(root, 'usr', 'share', 'x', 'data'), 'payload\n');
  await writeFile(join(root, 'DEBIAN', 'control'), control);
  const out = join(dir, `misnamed_9.9_${compressor}.deb`);
  await execa('dpkg-deb', ['--root-owner-group', `-Z${compressor}`, '-b', root, out], { stdin: 'ignore' });
  return out;
}

const CONTROL = 'Package: cw-extra\nVersion: 2:1.4~rc1-3\nArchitecture: amd64\nMaintainer: a <a@example.com>\nDescription: a test\n a longer\n .\n text\n';

debTest('the control file of a DEB built by dpkg-deb, whatever its compression and file name', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cw-deb-control-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const compressor of ['gzip', 'xz', 'zstd', 'none']) {
    const deb = await buildDeb(dir, compressor, CONTROL);
    t.deepEqual(await readDebControl(deb), { package: 'cw-extra', version: '2:1.4~rc1-3', architecture: 'amd64' }, compressor);
    t.is((await execa('dpkg-deb', ['-f', deb, 'Version'])).stdout, '2:1.4~rc1-3');
  }
});

debTest('a truncated DEB, a foreign ar archive, a text file: clear errors', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cw-deb-control-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const deb = await buildDeb(dir, 'xz', CONTROL);
  const size = (await stat(deb)).size;
  const cut = join(dir, 'cut.deb');
  await writeFile(cut, (await readFile(deb)).subarray(0, 8 + 60 + 4 + 60 + 20));
  await t.throwsAsync(readDebControl(cut), { instanceOf: DebFormatError, message: /control\.tar\.xz ends after the file does/ });
  await truncate(deb, size - 1);
  t.is((await readDebControl(deb)).package, 'cw-extra', 'only the control member is read: a cut in the data does not matter here');
  const foreign = join(dir, 'foreign.deb');
  await writeFile(foreign, '!<arch>\nhello.o/        0           0     0     644     4         `\nabcd');
  await t.throwsAsync(readDebControl(foreign), { message: 'not a DEB: the first member is not debian-binary' });
  const text = join(dir, 'text.deb');
  await writeFile(text, '#!/bin/sh\n');
  await t.throwsAsync(readDebControl(text), { message: 'not a DEB: no ar archive magic' });
});

test('parseControl: fields case-insensitive, continuation lines joined, the first paragraph only', (t) => {
  const fields = parseControl('Package: a\nversion:  1.0 \nDescription: short\n long\n  more\n\nPackage: b\n');
  t.is(fields.get('package'), 'a');
  t.is(fields.get('version'), '1.0');
  t.is(fields.get('description'), 'short\nlong\nmore');
  t.throws(() => parseControl(' leading\n'), { message: /continuation line before any field/ });
  t.throws(() => parseControl('no colon here\n'), { message: /not a field/ });
});
