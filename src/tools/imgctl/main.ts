#!/usr/bin/env node
import { toolMain } from '../common/run.js';

await toolMain(async (argv) => {
  const { imgctl } = await import('./imgctl.js');
  await imgctl(argv);
});
