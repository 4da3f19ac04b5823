// cw-add-boot-config against a real API in-process: refusals that must come before anything is made.
import test from 'ava';
import { addBootConfigTool } from '../../../src/tools/add-boot-config/add-boot-config.js';
import { bootctl } from '../../../src/tools/bootctl/bootctl.js';
import { imgctl } from '../../../src/tools/imgctl/imgctl.js';
import { Cluster, Scratch } from './harness.js';

const scratch = new Scratch();
let cluster: Cluster;

test.before(async () => {
  const key = scratch.keygen('admin');
  cluster = await Cluster.start(scratch, 'abc', key, await scratch.agent('admin', [key]));
});

test.after.always(async () => {
  await cluster.close().catch(() => {});
  scratch.cleanup();
});

test('an image without content, on the head node or in the workspace, is refused in one line and no boot config is made', async (t) => {
  await cluster.ok(imgctl, ['create', 'name=Empty']);
  const r = await cluster.run(addBootConfigTool, ['--image', 'Empty', '--boot-config', 'EmptyBoot']);
  t.is(r.exitCode, 1);
  t.is(r.error, 'ERROR: image Empty has no content on the head node and is not in the workspace; build and upload it first (cw-modimg -i Empty --upload), or give --root DIR');
  const ls = await cluster.run(bootctl, ['ls']);
  t.notRegex(ls.out, /EmptyBoot/);
});

test('a missing image is refused in one line', async (t) => {
  const r = await cluster.run(addBootConfigTool, ['--image', 'NoSuchImage', '--boot-config', 'NoBoot']);
  t.is(r.exitCode, 1);
  t.is(r.error, 'ERROR: no such image: NoSuchImage (create it with cw-modimg --create --set-name NoSuchImage --upload)');
});
