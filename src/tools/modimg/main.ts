#!/usr/bin/env node
import { toolMain } from '../common/run.js';

await toolMain(async (argv) => {
  const { modimg } = await import('./modimg.js');
  await modimg(argv);
});
