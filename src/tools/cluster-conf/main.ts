#!/usr/bin/env node
import { toolMain } from '../common/run.js';

await toolMain(async (argv) => {
  const { clusterConf } = await import('./cluster-conf.js');
  await clusterConf(argv);
});
