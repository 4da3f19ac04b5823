// Slow suites: they build on a real engine, real network namespaces and the real image.
export default {
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  files: ['test/integration/**/*.test.ts'],
  concurrency: 1,
  serial: true,
  failFast: false,
  timeout: '10m',
  verbose: true,
};
