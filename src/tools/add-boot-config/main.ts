#!/usr/bin/env node
import { toolMain } from '../common/run.js';

await toolMain(async (argv) => {
  const { addBootConfigTool } = await import('./add-boot-config.js');
  await addBootConfigTool(argv);
});
