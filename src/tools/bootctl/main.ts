#!/usr/bin/env node
import { toolMain } from '../common/run.js';

await toolMain(async (argv) => {
  const { bootctl } = await import('./bootctl.js');
  await bootctl(argv);
});
