#!/usr/bin/env node
import { toolMain } from '../common/run.js';

await toolMain(async (argv) => {
  const { clusterctl } = await import('./clusterctl.js');
  await clusterctl(argv);
});
