// The composition root: builds every client and service once from the decoded configuration. Both hosts
// (Azure's, through functions/index.ts, and local/) and the tests get their Services from here.
import { TableAuditLog } from './audit/auditLog';
import type { AuditLog } from './audit/auditEvent';
import { createTokenVerifier, type TokenVerifier } from './auth/tokenVerifier';
import { type Clock, systemClock } from './clock';
import type { ServiceConfig } from './config';
import { PoisonQueue } from './hosting/queueFailures';
import { PersonalDataEventProcessor } from './records/personalDataEventProcessor';
import { TenantDirectory } from './residency/tenantDirectory';
import { IdempotencyStore } from './requests/idempotencyStore';
import { RequestRepository } from './requests/requestRepository';
import { DataSubjectRequestService } from './requests/requestService';
import type { StorageClientOptions } from './storage/storageAccount';
import { StorageAccounts } from './storage/storageAccounts';
import { WorkQueue } from './storage/workQueue';

export interface Services {
  config: ServiceConfig;
  clock: Clock;
  storage: StorageAccounts;
  directory: TenantDirectory;
  verifyToken: TokenVerifier;
  audit: AuditLog;
  poison: PoisonQueue;
  workQueue: WorkQueue;
  requests: DataSubjectRequestService;
  events: PersonalDataEventProcessor;
}

export interface ServiceOptions {
  clock?: Clock;
  storage?: StorageClientOptions;
}

export function createServices(config: ServiceConfig, options: ServiceOptions = {}): Services {
  const clock = options.clock ?? systemClock;
  const storage = new StorageAccounts(config.storage, options.storage);
  const directory = new TenantDirectory(storage, clock);
  const audit = new TableAuditLog(clock);
  const workQueue = new WorkQueue(storage.global);
  const requests = new DataSubjectRequestService(
    new RequestRepository(),
    new IdempotencyStore(clock),
    audit,
    workQueue,
    clock,
  );
  const poison = new PoisonQueue(storage.global, clock);
  return {
    config,
    clock,
    storage,
    directory,
    verifyToken: createTokenVerifier(config.auth),
    audit,
    poison,
    workQueue,
    requests,
    events: new PersonalDataEventProcessor(directory, audit, poison),
  };
}
