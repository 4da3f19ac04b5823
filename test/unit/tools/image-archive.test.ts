import test from 'ava';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IMAGE_CONTENT, IMAGE_MANIFEST, readImageArchive, type ImageManifest } from '../../../src/tools/imgctl/image-archive.js';
import { tempDir } from '../lib/keys.js';

function fixture(t: { teardown(fn: () => void): void }) {
  const { dir, cleanup } = tempDir('cw-imgarch-');
  t.teardown(cleanup);
  const content = Buffer.alloc(300_000, 7);
  writeFileSync(join(dir, IMAGE_CONTENT), content);
  const manifest: ImageManifest = {
    format: 'cw-image',
    formatVersion: 1,
    exportedAt: '2026-12-06T10:00:00.000Z',
    image: { name: 'compute', description: 'd', size: content.length, checksum: `sha256:${createHash('sha256').update(content).digest('hex')}` },
    bootconfigs: [{ name: 'DefaultBoot', description: '', cmdline: 'quiet', kernel: 'vmlinuz', initramfs: null }],
  };
  const writeManifest = (m: unknown) => writeFileSync(join(dir, IMAGE_MANIFEST), JSON.stringify(m));
  writeManifest(manifest);
  const pack = (name: string, members: string[]) => {
    const out = join(dir, name);
    execFileSync('tar', ['-cf', out, '-C', dir, ...members]);
    return out;
  };
  return { dir, content, manifest, writeManifest, pack };
}

test('an image archive is read in a stream and its content checked', async (t) => {
  const f = fixture(t);
  const archive = f.pack('ok.tar', [IMAGE_MANIFEST, IMAGE_CONTENT]);
  const out = join(f.dir, 'out.img');
  t.deepEqual(await readImageArchive(archive, out), f.manifest);
  t.deepEqual(readFileSync(out), f.content);
  t.is(statSync(out).mode & 0o777, 0o600);
});

test('damaged, reordered, foreign or hostile image archives are refused', async (t) => {
  const f = fixture(t);
  const good = readFileSync(f.pack('ok.tar', [IMAGE_MANIFEST, IMAGE_CONTENT]));
  const damaged = Buffer.from(good);
  damaged[good.length - 20_000] = damaged[good.length - 20_000]! ^ 0xff;
  writeFileSync(join(f.dir, 'damaged.tar'), damaged);
  const cases: Array<[string, RegExp]> = [
    ['damaged.tar', /has checksum sha256:\w+ \(300000 bytes\), not sha256:/],
    [f.pack('reordered.tar', [IMAGE_CONTENT, IMAGE_MANIFEST]), /first member is "image\.img", not cw-image\.json/],
  ];
  writeFileSync(join(f.dir, 'cut.tar'), good.subarray(0, 100_000));
  cases.push(['cut.tar', /truncated/]);
  writeFileSync(join(f.dir, 'extra'), 'x');
  cases.push([f.pack('extra.tar', [IMAGE_MANIFEST, IMAGE_CONTENT, 'extra']), /holds "extra", which an image archive does not contain/]);
  symlinkSync('/etc/passwd', join(f.dir, 'link'));
  cases.push([f.pack('link.tar', [IMAGE_MANIFEST, 'link']), /SymbolicLink entry/]);
  f.writeManifest({ ...f.manifest, image: { ...f.manifest.image, name: '../etc' } });
  cases.push([f.pack('badname.tar', [IMAGE_MANIFEST, IMAGE_CONTENT]), /image\.name is missing or not a valid name/]);
  f.writeManifest({ format: 'cw-backup' });
  cases.push([f.pack('foreign.tar', [IMAGE_MANIFEST, IMAGE_CONTENT]), /not a cw-headnode image archive/]);
  for (const [name, pattern] of cases) {
    const out = join(f.dir, `${name.replace(/\W/g, '_')}.out`);
    const archive = name.startsWith('/') ? name : join(f.dir, name);
    const err = await t.throwsAsync(readImageArchive(archive, out), undefined, name);
    t.regex(err.message, pattern, name);
  }
});
