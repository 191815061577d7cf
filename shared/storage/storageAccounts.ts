// The global account (tenant directory, queues) and one account per open geography. A geography is open
// exactly when a storage account is configured for it.
import type { ServiceConfig } from '../config';
import { DomainError } from '../errors';
import { GEOGRAPHIES, type Geography } from '../vocabulary/geographies';
import { StorageAccount, type StorageClientOptions } from './storageAccount';

export class StorageAccounts {
  readonly global: StorageAccount;
  private readonly byGeography = new Map<Geography, StorageAccount>();

  constructor(config: ServiceConfig['storage'], options: StorageClientOptions = {}) {
    this.global = new StorageAccount('GLOBAL', config.global, options);
    for (const geography of GEOGRAPHIES) {
      const setting = config.geographies[geography];
      if (setting) this.byGeography.set(geography, new StorageAccount(geography, setting, options));
    }
  }

  openGeographies(): ReadonlySet<Geography> {
    return new Set(this.byGeography.keys());
  }

  /** The account of a geography; a tenant whose geography was closed since is a configuration fault. */
  geography(geography: Geography): StorageAccount {
    const account = this.byGeography.get(geography);
    if (!account)
      throw new DomainError('Internal', `No storage account is configured for geography ${geography}.`);
    return account;
  }

  all(): StorageAccount[] {
    return [this.global, ...this.byGeography.values()];
  }
}
