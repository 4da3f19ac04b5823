#!/usr/bin/env node
import { toolMain } from '../common/run.js';

await toolMain(async (argv) => {
  const { mkramfs } = await import('./mkramfs.js');
  await mkramfs(argv);
});
