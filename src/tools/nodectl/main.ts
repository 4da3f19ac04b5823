#!/usr/bin/env node
import { toolMain } from '../common/run.js';

await toolMain(async (argv) => {
  const { nodectl } = await import('./nodectl.js');
  await nodectl(argv);
});
