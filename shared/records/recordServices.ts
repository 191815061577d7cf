// The records capability's services, built together (they share key stores and caches): the composition root
// and tests that need only records build them here.
import type { Clock } from '../clock';
import { Pseudonymizer } from '../crypto/pseudonymizer';
import { SubjectKeyStore } from '../records/subjectKeys';
import { ExpiryIndex } from '../retention/expiryIndex';
import { RecordCounts } from './recordCounts';
import { RecordRetention } from './recordRetention';
import { RecordStore } from './recordStore';
import { RecordWriter } from './recordWriter';
import { RestrictionStore } from './restrictions';
import { SubjectErasure } from './subjectErasure';
import { SubjectIdentity } from './subjectIdentity';
import { type PackageTransfer, SubjectMerge } from './subjectMerge';

export interface RecordServices {
  subjectKeys: SubjectKeyStore;
  pseudonymizer: Pseudonymizer;
  expiry: ExpiryIndex;
  identity: SubjectIdentity;
  records: RecordStore;
  restrictions: RestrictionStore;
  erasure: SubjectErasure;
  retention: RecordRetention;
  counts: RecordCounts;
}

export interface RecordServiceOptions {
  /** Moves a subject's export packages when an alias's own subject merges into an object subject. */
  transferPackages: PackageTransfer;
  subjectKeys?: SubjectKeyStore;
  pseudonymizer?: Pseudonymizer;
  expiry?: ExpiryIndex;
  /** What "due soon" is measured from (the located path of batches); the system clock by default. */
  clock?: Clock;
}

export function createRecordServices(options: RecordServiceOptions): RecordServices {
  const subjectKeys = options.subjectKeys ?? new SubjectKeyStore();
  const pseudonymizer = options.pseudonymizer ?? new Pseudonymizer();
  const expiry = options.expiry ?? new ExpiryIndex();
  const identity = new SubjectIdentity(pseudonymizer);
  const counts = new RecordCounts();
  const writer = new RecordWriter(subjectKeys, expiry, counts);
  const restrictions = new RestrictionStore();
  const merge = new SubjectMerge(identity, writer, subjectKeys, restrictions, options.transferPackages);
  return {
    subjectKeys,
    pseudonymizer,
    expiry,
    identity,
    records: new RecordStore(subjectKeys, pseudonymizer, identity, writer, merge, options.clock),
    restrictions,
    erasure: new SubjectErasure(subjectKeys, identity, restrictions, counts),
    retention: new RecordRetention(subjectKeys, expiry, counts, writer),
    counts,
  };
}
