// cw-clusterctl: cluster-wide objects. Package repositories and distros (what images are built from),
// and the default distro:
//
//   cw-clusterctl repos create name=CentOS_base urls=http://mirror.centos.org/centos/$releasever/os/$basearch/
//   cw-clusterctl distros create name=CentOS repos=CentOS_base release=7
//   cw-clusterctl distros import --name CentOS7 /etc/yum.repos.d/CentOS-Base.repo
//   cw-clusterctl --set-distro CentOS ; cw-clusterctl --get-distro
//   cw-clusterctl --set-domain hpc.example.org ; cw-clusterctl --get-domain
//   cw-clusterctl clientpkgs ls
//   cw-clusterctl heads ls ; cw-clusterctl heads rm head-c
//   cw-clusterctl --set-diskful-register diskful ; cw-clusterctl --get-diskful-register
//   cw-clusterctl --set-backup-interval 12h --set-backup-keep 14 ; cw-clusterctl --get-backup
import { basename } from 'node:path';
import { ExitError, errorMessage } from '../../lib/errors.js';
import { ApiError } from '../common/client/api-client.js';
import {
  cloneAction,
  createAction,
  listAction,
  removeAction,
  report,
  updateAction,
} from '../common/actions.js';
import { clip } from '../common/args.js';
import { DISTROS, isObject, NETS, REPOS, type ApiObject, type CollectionSpec } from '../common/collection.js';
import type { ToolContext, ToolIo } from '../common/context.js';
import { readLocalText } from '../../lib/local-files.js';
import { renderJson, safeText } from '../common/format.js';
import { runTool, type Action, type ToolSpec } from '../common/run.js';
import { clientPkgsActions } from './clientpkgs.js';
import { headsActions } from './heads.js';
import { parseYumRepo, YumRepoError, type YumRepo } from './yum-repo.js';

/** The actions of one collection (`repos ls`, `distros create`, ...). */
function collectionActions(spec: CollectionSpec): Record<string, Action> {
  return {
    ls: (ctx, words) => listAction(ctx, spec, words),
    list: (ctx, words) => listAction(ctx, spec, words),
    create: (ctx, words) => createAction(ctx, spec, words),
    update: (ctx, words) => updateAction(ctx, spec, words),
    clone: (ctx, words) => cloneAction(ctx, spec, words),
    rm: (ctx, words) => removeAction(ctx, spec, words),
    delete: (ctx, words) => removeAction(ctx, spec, words),
  };
}

/** `repos ACTION ...` / `distros ACTION ...`: the collection word, then an action of its table. */
function collection(name: string, actions: Record<string, Action>): Action {
  return async (ctx, words) => {
    const [action, ...rest] = words;
    if (action === undefined) throw new ExitError(`${name} needs an action: ${Object.keys(actions).join(', ')}`);
    const run = Object.hasOwn(actions, action) ? actions[action] : undefined;
    if (!run) throw new ExitError(`unknown action "${clip(action)}" for ${name} (${Object.keys(actions).join(', ')})`);
    await run(ctx, rest);
  };
}

/** `--set-domain NAME` (`--set-domain ''` restores the default), `--get-domain`; true when one of them was the whole command. */
async function clusterDomain(ctx: ToolContext): Promise<boolean> {
  const set = ctx.args.options.get('set-domain');
  const get = ctx.args.options.get('get-domain') === true;
  if (set === undefined && !get) return false;
  const api = ctx.api();
  if (typeof set === 'string') await api.patch<unknown>('/cluster', { domain: set === '' ? null : set });
  const current = await api.get<unknown>('/cluster');
  const domain = isObject(current) && typeof current.domain === 'string' ? current.domain : null;
  const { format } = ctx.args.common;
  if (format !== 'plain') ctx.out(renderJson({ domain }, format));
  else ctx.out(`Domain: ${domain === null ? 'none' : safeText(domain)}\n`);
  return ctx.args.words.length === 0;
}

/**
 * `--set-backup-interval 24h|off|''` and `--set-backup-keep N|''` (`''` restores the default), `--get-backup`;
 * true when they were the whole command.
 */
async function backupSchedule(ctx: ToolContext): Promise<boolean> {
  const interval = ctx.args.options.get('set-backup-interval');
  const keep = ctx.args.options.get('set-backup-keep');
  const get = ctx.args.options.get('get-backup') === true;
  if (interval === undefined && keep === undefined && !get) return false;
  const patch: Record<string, unknown> = {};
  if (typeof interval === 'string') patch.backup_interval = interval === '' ? null : interval;
  if (typeof keep === 'string') {
    if (keep !== '' && !/^\d{1,4}$/.test(keep)) throw new ExitError(`--set-backup-keep needs a number of backups, not "${clip(keep)}"`);
    patch.backup_keep = keep === '' ? null : Number(keep);
  }
  const api = ctx.api();
  if (Object.keys(patch).length > 0) await api.patch<unknown>('/cluster', patch);
  const current = await api.get<unknown>('/cluster');
  const shown = {
    backup_interval: isObject(current) && typeof current.backup_interval === 'string' ? current.backup_interval : null,
    backup_keep: isObject(current) && typeof current.backup_keep === 'number' ? current.backup_keep : null,
  };
  const { format } = ctx.args.common;
  if (format !== 'plain') ctx.out(renderJson(shown, format));
  else ctx.out(`Scheduled backups: every ${safeText(String(shown.backup_interval))}, newest ${String(shown.backup_keep)} kept (STORAGE/backup/)\n`);
  return ctx.args.words.length === 0;
}

/** `--set-diskful-register GROUP` (`''` turns it off), `--get-diskful-register`; true when one of them was the whole command. */
async function diskfulRegister(ctx: ToolContext): Promise<boolean> {
  const set = ctx.args.options.get('set-diskful-register');
  const get = ctx.args.options.get('get-diskful-register') === true;
  if (set === undefined && !get) return false;
  const api = ctx.api();
  if (typeof set === 'string') await api.patch<unknown>('/cluster', { diskful_register: set === '' ? null : set });
  const current = await api.get<unknown>('/cluster');
  const group = isObject(current) && typeof current.diskful_register === 'string' ? current.diskful_register : null;
  const { format } = ctx.args.common;
  if (format !== 'plain') ctx.out(renderJson({ diskful_register: group }, format));
  else ctx.out(`Diskful registration: ${group === null ? 'off (only nodes already known by MAC)' : `new nodes go to group ${safeText(group)}`}\n`);
  return ctx.args.words.length === 0;
}

/** `--set-distro NAME`, `--get-distro`; true when one of them was the whole command. */
async function defaultDistro(ctx: ToolContext): Promise<boolean> {
  const set = ctx.args.options.get('set-distro');
  const get = ctx.args.options.get('get-distro') === true;
  if (set === undefined && !get) return false;
  const api = ctx.api();
  if (typeof set === 'string') {
    if (set === '') throw new ExitError('--set-distro needs a distro name');
    await api.patch<unknown>('/cluster', { default_distro: set });
  }
  const current = await api.get<unknown>('/cluster');
  const name = isObject(current) && typeof current.default_distro === 'string' && current.default_distro !== '' ? current.default_distro : null;
  const { format } = ctx.args.common;
  if (format !== 'plain') ctx.out(renderJson({ default_distro: name }, format));
  else ctx.out(`Default distro: ${name === null ? 'none' : safeText(name)}\n`);
  return ctx.args.words.length === 0;
}

/**
 * `distros import FILE.repo... [--name NAME] [--release R] [--package-manager PM]`: one repo per enabled
 * section with a baseurl, then a distro naming them. If a step fails, what was created is removed again.
 */
async function distroImport(ctx: ToolContext, words: string[]): Promise<void> {
  if (words.length === 0) throw new ExitError('import needs one or more .repo files: distros import --name NAME FILE.repo');
  const repos: YumRepo[] = [];
  for (const file of words) {
    const text = await readLocalText(file, ctx, { label: file, keepNewline: true });
    let parsed: YumRepo[];
    try {
      parsed = parseYumRepo(text, file);
    } catch (err) {
      if (!(err instanceof YumRepoError)) throw err;
      if (err.problems.length > 1) for (const p of err.problems) ctx.err(`${safeText(p)}\n`);
      throw new ExitError(err.problems.length > 1 ? `${file}: ${err.problems.length} problems, nothing was done` : err.message);
    }
    for (const repo of parsed) {
      const why = !repo.enabled ? 'it is disabled (enabled=0)' : repo.urls.length === 0 ? `it has no baseurl${repo.mirrored ? ' (mirrorlist and metalink are not used)' : ''}` : '';
      if (why) {
        ctx.err(`WARNING: ${safeText(file)}:${repo.line}: skipping [${safeText(repo.id)}]: ${why}\n`);
        continue;
      }
      if (repos.some((r) => r.id === repo.id)) throw new ExitError(`${file}:${repo.line}: repo [${repo.id}] is also in an earlier file`);
      repos.push(repo);
    }
  }
  if (repos.length === 0) throw new ExitError(`no usable repositories in ${words.join(', ')}, nothing was done`);

  const nameOpt = ctx.args.options.get('name');
  const distroName = typeof nameOpt === 'string' && nameOpt !== '' ? nameOpt : basename(words[0] as string).replace(/\.repo$/, '');
  const distro: Record<string, unknown> = { name: distroName, repos: repos.map((r) => r.id) };
  for (const [opt, field] of [['release', 'release'], ['package-manager', 'package_manager']] as const) {
    const v = ctx.args.options.get(opt);
    if (typeof v === 'string') distro[field] = v;
  }

  const api = ctx.api();
  const created: ApiObject[] = [];
  const undo = async () => {
    for (const r of created.reverse()) await api.delete(`/repo/${encodeURIComponent(String(r.uid ?? r.name))}`).catch(() => {});
  };
  let result: ApiObject;
  try {
    for (const r of repos) {
      const body: Record<string, unknown> = { name: r.id, urls: r.urls, keys: r.keys };
      if (r.title) body.description = r.title;
      const answer = await api.post<unknown>('/repos', body);
      created.push(isObject(answer) ? (answer as ApiObject) : { name: r.id });
    }
    const answer = await api.post<unknown>('/distros', distro);
    result = isObject(answer) ? (answer as ApiObject) : { name: distroName };
  } catch (err) {
    await undo();
    if (err instanceof ApiError) throw new ExitError(`${err.message}, nothing was done`);
    throw new ExitError(errorMessage(err));
  }
  report(ctx, `Imported ${repos.length} repo${repos.length === 1 ? '' : 's'} (${repos.map((r) => r.id).join(', ')}) as`, DISTROS, [result]);
}

export const CLUSTERCTL: ToolSpec = {
  name: 'cw-clusterctl',
  synopsis: [
    'repos ls|list [-l|-L] [IDS]                     list package repositories',
    'repos create name=NAME urls=URL[,URL] [keys=...] add a repository',
    'repos update | clone | rm                        change, copy or delete the selected repositories (-i)',
    'distros ls|list [-l|-L] [IDS]                   list distros',
    'distros create name=NAME repos=REPO[,REPO] [release=R] [package_manager=dnf]',
    'distros import [--name NAME] [--release R] FILE.repo...  repos and a distro from yum .repo files',
    'distros update | clone | rm                      change, copy or delete the selected distros (-i)',
    'nets ls|list [-l|-L] | create | update | rm      cluster networks (cw-cluster-conf load makes them from ipranges)',
    'clientpkgs ls|list                               client packages for diskful nodes: name, version, type, size, TAR cached',
    'heads ls|list                                    the head nodes: health, leader, etcd version, database size',
    'heads rm NAME                                    remove a head from the etcd cluster (refused if the rest lose quorum)',
    '--set-distro NAME | --get-distro                 set or show the default distro for new images',
    '--set-domain NAME | --get-domain                 set or show the DNS domain of the node names (n3.NAME)',
    '--set-diskful-register GROUP | --get-diskful-register  create unknown diskful nodes that register in GROUP (\'\' = off)',
    '--set-backup-interval 24h|off [--set-backup-keep N] | --get-backup  the scheduled backups in STORAGE/backup/',
  ],
  options: [
    { long: 'set-distro', value: true, help: 'make NAME the default distro' },
    { long: 'get-distro', help: 'show the default distro' },
    { long: 'set-domain', value: true, help: "make NAME the cluster's DNS domain ('' restores cluster.internal)" },
    { long: 'get-domain', help: "show the cluster's DNS domain" },
    { long: 'set-diskful-register', value: true, help: "create diskful nodes that register with an unknown MAC in attribute group GROUP ('' turns it off)" },
    { long: 'get-diskful-register', help: 'show whether and where diskful nodes are created when they register' },
    { long: 'set-backup-interval', value: true, help: "time between scheduled backups: 24h, 90m, 7d or off ('' restores 24h)" },
    { long: 'set-backup-keep', value: true, help: "how many scheduled backups are kept ('' restores 7)" },
    { long: 'get-backup', help: 'show the backup schedule' },
    { long: 'name', value: true, help: 'distros import: name of the new distro (default: the file name)' },
    { long: 'release', value: true, help: 'distros import: release (fills $releasever)' },
    { long: 'package-manager', value: true, help: 'distros import: dnf, yum or apt' },
    { long: 'content', value: true, help: 'create/update: fields as JSON, or @file.json' },
  ],
  before: async (ctx) => {
    const domainOnly = await clusterDomain(ctx);
    const distroOnly = await defaultDistro(ctx);
    const registerOnly = await diskfulRegister(ctx);
    const backupOnly = await backupSchedule(ctx);
    return domainOnly || distroOnly || registerOnly || backupOnly;
  },
  actions: {
    repos: collection('repos', collectionActions(REPOS)),
    distros: collection('distros', { ...collectionActions(DISTROS), import: distroImport }),
    nets: collection('nets', collectionActions(NETS)),
    clientpkgs: collection('clientpkgs', clientPkgsActions),
    heads: collection('heads', headsActions),
  },
};

/** `cw-clusterctl ARGS...` without the process boundary. */
export function clusterctl(argv: readonly string[], io?: ToolIo): Promise<void> {
  return runTool(CLUSTERCTL, argv, io);
}
