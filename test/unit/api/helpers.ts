import type { Admin, AddAdminOptions, NewAdmin, SettingKey, Store } from '../../../src/appliance/db/store.js';
import type { SupervisorHealthReport } from '../../../src/appliance/api/supervisor-client.js';

/** An in-memory Store for API tests that do not care about persistence. */
export function memoryStore(): Store {
  const admins = new Map<string, Admin>();
  const settings = new Map<string, string>();
  const store: Store = {
    backend: 'memory',
    listAdmins: async () => [...admins.values()].sort((a, b) => a.name.localeCompare(b.name)),
    getAdmin: async (name: string) => admins.get(name),
    addAdmin: async (admin: NewAdmin, _options?: AddAdminOptions) => {
      const added = { ...admin, addedAt: new Date(0).toISOString() };
      admins.set(admin.name, added);
      return added;
    },
    removeAdmin: async (name: string) => admins.delete(name),
    getSetting: async (key: SettingKey) => settings.get(key),
    setSetting: async (key: SettingKey, value: string) => void settings.set(key, value),
    deleteSetting: async (key: SettingKey) => settings.delete(key),
    transaction: async (fn) => fn(store),
  };
  return store;
}

export const healthyReport: SupervisorHealthReport = {
  status: 'healthy',
  services: {
    api: { state: 'ready', pid: 101, restarts: 0, since: '2025-01-01T00:00:00.000Z', lastExit: null },
    dhcpd: { state: 'ready', pid: 102, restarts: 1, since: '2025-01-01T00:00:01.000Z', lastExit: { code: 1, signal: null } },
  },
};

export const fatalReport: SupervisorHealthReport = {
  status: 'unhealthy',
  services: {
    ...healthyReport.services,
    tftpd: { state: 'fatal', pid: null, restarts: 5, since: '2025-01-01T00:00:02.000Z', lastExit: { code: 1, signal: null } },
  },
};
