import { runCommand } from '../../lib/errors.js';
import { cwAppliance } from './cli.js';

await runCommand(() => cwAppliance(process.argv.slice(2)));
