#!/usr/bin/env node
import { toolMain } from '../common/run.js';

await toolMain(async (argv) => {
  const { attribctl } = await import('./attribctl.js');
  await attribctl(argv);
});
