// The node initramfs: builder, cpio writer, module closure.
export { buildInitramfs, findKernel, findModulesDir, listKernelReleases, DEFAULT_BUSYBOX, InitramfsError } from './build.js';
export type { BuildInitramfsOptions, InitramfsResult } from './build.js';
export { CpioArchive } from './cpio.js';
export { moduleClosure, parseModulesDep, REQUIRED_MODULES, NETWORK_MODULES } from './modules.js';
export type { ModuleClosure, ModuleInfo } from './modules.js';
