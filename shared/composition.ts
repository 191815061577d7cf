// The composition root: builds every client and service once from the decoded configuration. Both hosts
// (Azure's, through functions/index.ts, and local/) and the tests get their Services from here.
import { TableAuditLog } from './audit/auditLog';
import type { AuditLog } from './audit/auditEvent';
import { createTokenVerifier, type TokenVerifier } from './auth/tokenVerifier';
import { type Clock, systemClock } from './clock';
import type { ServiceConfig } from './config';
import { createKeyProviders, type GeographyKeys } from './crypto/keyProviders';
import { SubjectKeyStore } from './records/subjectKeys';
import { PackageStore } from './exports/packageStore';
import { PoisonQueue } from './hosting/queueFailures';
import { PersonalDataEventProcessor } from './records/personalDataEventProcessor';
import { PoisonedEvents } from './records/poisonedEvents';
import { createRecordServices } from './records/recordServices';
import type { RecordStore } from './records/recordStore';
import { TenantDirectory } from './residency/tenantDirectory';
import { DirectoryWriteFence, fencedKeys } from './residency/writeFence';
import { MigrationStore } from './migration/migrationStore';
import { AccessRequestStore } from './operatorAccess/accessRequestStore';
import { OperatorAccessService } from './operatorAccess/operatorAccessService';
import { RecordBrowser } from './records/recordBrowser';
import { PrivacyReportService } from './reports/privacyReportService';
import { TermsService } from './terms/termsService';
import { ProcessingRegisterService } from './transparency/processingRegisterService';
import { TermsStore } from './terms/termsStore';
import { AdminContacts } from './records/adminContacts';
import { AlertRequestFulfilment } from './alertRequests/alertRequestFulfilment';
import { AlertRequestRecovery } from './alertRequests/alertRequestRecovery';
import { AlertRequestService } from './alertRequests/alertRequestService';
import { AlertRequestStore } from './alertRequests/alertRequestStore';
import { DeviceRecords } from './records/deviceRecords';
import { ResidencyMover } from './migration/residencyMover';
import { ResidencyService } from './migration/residencyService';
import type { WriteFence } from './storage/residencyGuard';
import { ExpiryIndex } from './retention/expiryIndex';
import { RetentionPurge } from './purge/retentionPurge';
import { IdempotencyStore } from './requests/idempotencyStore';
import { PackageLinks } from './requests/packageLinks';
import { RequestDeadlines } from './requests/requestDeadlines';
import { RequestRecovery } from './requests/requestRecovery';
import { RequestFulfilment } from './requests/requestFulfilment';
import { RequestRepository } from './requests/requestRepository';
import { DataSubjectRequestService } from './requests/requestService';
import type { RestrictionStore } from './records/restrictions';
import type { StorageClientOptions } from './storage/storageAccount';
import { StorageAccounts } from './storage/storageAccounts';
import { QUEUES } from './storage/names';
import { WorkQueue } from './storage/workQueue';

export interface Services {
  config: ServiceConfig;
  clock: Clock;
  storage: StorageAccounts;
  /**
   * Each geography's tenant key provider, unfenced: only the residency mover uses these directly (tenant
   * scopes carry fenced ones).
   */
  keys: GeographyKeys;
  directory: TenantDirectory;
  verifyToken: TokenVerifier;
  audit: AuditLog;
  poison: PoisonQueue;
  poisonedEvents: PoisonedEvents;
  workQueue: WorkQueue;
  requests: DataSubjectRequestService;
  deadlines: RequestDeadlines;
  recovery: RequestRecovery;
  events: PersonalDataEventProcessor;
  records: RecordStore;
  restrictions: RestrictionStore;
  fulfilment: RequestFulfilment;
  downloads: PackageLinks;
  retention: RetentionPurge;
  residency: ResidencyService;
  mover: ResidencyMover;
  operatorAccess: OperatorAccessService;
  adminContacts: AdminContacts;
  privacyReports: PrivacyReportService;
  terms: TermsService;
  processingRegister: ProcessingRegisterService;
  alertRequests: AlertRequestService;
  alertFulfilment: AlertRequestFulfilment;
  alertRecovery: AlertRequestRecovery;
}

export interface ServiceOptions {
  clock?: Clock;
  storage?: StorageClientOptions;
  keys?: GeographyKeys;
  /** How long one residency-work message works before handing over (tests shorten it to cross slices). */
  migrationSliceMs?: number;
}

export function createServices(config: ServiceConfig, options: ServiceOptions = {}): Services {
  const clock = options.clock ?? systemClock;
  const storage = new StorageAccounts(config.storage, options.storage);
  const keys = options.keys ?? createKeyProviders(config.keys);
  // The directory's scopes hand out fenced key providers; the fence needs the directory, hence the late set.
  const late: { fence?: DirectoryWriteFence } = {};
  const guard: WriteFence = {
    assertWritable: (tenantId, geography) => late.fence!.assertWritable(tenantId, geography),
  };
  const directory = new TenantDirectory(storage, fencedKeys(keys, guard), clock);
  const fence = (late.fence = new DirectoryWriteFence(
    directory,
    config.residency.fenceSeconds * 1000,
    config.residency.retryAfterSeconds,
  ));
  storage.fenceWrites(fence);
  const audit = new TableAuditLog(clock);
  const workQueue = new WorkQueue(storage.global);
  const repository = new RequestRepository();
  const expiry = new ExpiryIndex();
  // One key store for everyone: a data key destroyed here is forgotten by every reader of this instance.
  const subjectKeys = new SubjectKeyStore();
  const packages = new PackageStore(subjectKeys, expiry, clock);
  const { records, restrictions, erasure, retention, pseudonymizer, counts } = createRecordServices({
    subjectKeys,
    expiry,
    clock,
    // An alias's own subject merged into an object subject takes its packages along.
    transferPackages: async (tenant, from, to) => void (await packages.rewrap(tenant, from, to)),
  });
  // Invalid events keep no personal data in the global account: their payload is sealed in their geography.
  const poisonedEvents = new PoisonedEvents(directory, pseudonymizer, expiry, clock);
  const poison = new PoisonQueue(storage.global, clock, {
    [QUEUES.personalDataEvents]: (message, batch) => poisonedEvents.setAside(message, batch),
  });
  const idempotency = new IdempotencyStore(clock);
  const requests = new DataSubjectRequestService(
    repository,
    idempotency,
    audit,
    workQueue,
    clock,
    (tenant, subject) => records.subjectOf(tenant, subject),
  );
  const migrations = new MigrationStore(storage);
  const fenceWaitMs = 2 * config.residency.fenceSeconds * 1000;
  const browser = new RecordBrowser(subjectKeys);
  const accessRequests = new AccessRequestStore(storage);
  const downloads = new PackageLinks(
    requests,
    packages,
    directory,
    pseudonymizer,
    audit,
    (tenant, subjectKey) => records.currentSubject(tenant, subjectKey),
    clock,
  );
  // Alert data requests (SPEC §9): each extraction's package key is held under a data key of its own (a
  // pseudo subject `alertreq-<id>`), so the package store, links and expiry work for it unchanged.
  const alertRequests = new AlertRequestService(
    new AlertRequestStore(),
    new IdempotencyStore(clock),
    audit,
    workQueue,
    downloads,
    clock,
  );
  return {
    config,
    clock,
    operatorAccess: new OperatorAccessService(
      directory,
      accessRequests,
      audit,
      records,
      browser,
      restrictions,
      idempotency,
      clock,
    ),
    adminContacts: new AdminContacts(records, browser, clock),
    privacyReports: new PrivacyReportService(repository, counts, expiry, restrictions, migrations, clock),
    terms: new TermsService(new TermsStore(), records, browser, restrictions, audit, clock),
    processingRegister: new ProcessingRegisterService(accessRequests, config.operators, clock),
    residency: new ResidencyService(
      storage,
      directory,
      migrations,
      audit,
      workQueue,
      idempotency,
      clock,
      fenceWaitMs / 1000,
    ),
    mover: new ResidencyMover(storage, directory, keys, migrations, audit, workQueue, clock, {
      sliceMs: options.migrationSliceMs ?? 60_000,
    }),
    storage,
    keys,
    directory,
    verifyToken: createTokenVerifier(config.auth),
    audit,
    poison,
    poisonedEvents,
    workQueue,
    requests,
    deadlines: new RequestDeadlines(directory, requests, clock),
    recovery: new RequestRecovery(directory, requests, workQueue, clock),
    events: new PersonalDataEventProcessor(directory, audit, records, config.residency.fenceSeconds * 1000),
    records,
    restrictions,
    fulfilment: new RequestFulfilment(
      directory,
      requests,
      records,
      erasure,
      audit,
      restrictions,
      packages,
      clock,
    ),
    retention: new RetentionPurge(
      directory,
      records,
      retention,
      restrictions,
      expiry,
      audit,
      repository,
      workQueue,
      clock,
      fenceWaitMs,
    ),
    downloads,
    alertRequests,
    alertFulfilment: new AlertRequestFulfilment(
      directory,
      alertRequests,
      new DeviceRecords(subjectKeys, pseudonymizer),
      retention,
      restrictions,
      (tenant, subjectKey) => records.currentSubject(tenant, subjectKey),
      packages,
      audit,
      clock,
    ),
    alertRecovery: new AlertRequestRecovery(directory, alertRequests, workQueue, clock),
  };
}
