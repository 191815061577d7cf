// Entity-group transactions: actions grouped by partition, at most 100 per transaction (the service's
// limits). A batch that fails because a row is already gone (a re-run after a crash, a concurrent run) is
// redone one action at a time, skipping what is missing, so deletes and merges stay idempotent.
import { RestError, type TableClient, type TransactionAction } from '@azure/data-tables';

export const BATCH_LIMIT = 100;
/** Transactions of different partitions in flight at once (each partition's own stay in order). */
export const PARALLEL_PARTITIONS = 8;

/** Submits the actions; returns how many took effect (rows already gone are not counted). */
export async function submitInBatches(
  table: TableClient,
  actions: readonly TransactionAction[],
): Promise<number> {
  const byPartition = new Map<string, TransactionAction[]>();
  for (const action of actions) {
    const partitionKey = action[1].partitionKey ?? '';
    const group = byPartition.get(partitionKey) ?? [];
    group.push(action);
    byPartition.set(partitionKey, group);
  }
  let done = 0;
  const groups = [...byPartition.values()];
  const worker = async () => {
    for (let group = groups.shift(); group; group = groups.shift()) {
      for (let i = 0; i < group.length; i += BATCH_LIMIT) {
        const batch = group.slice(i, i + BATCH_LIMIT);
        try {
          await table.submitTransaction(batch);
          done += batch.length;
        } catch (error) {
          if (!(error instanceof RestError && error.statusCode === 404)) throw error;
          done += await oneByOne(table, batch);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_PARTITIONS, groups.length) }, worker));
  return done;
}

async function oneByOne(table: TableClient, batch: readonly TransactionAction[]): Promise<number> {
  let done = 0;
  for (const action of batch) {
    const entity = action[1] as { partitionKey: string; rowKey: string };
    try {
      if (action[0] === 'delete') await table.deleteEntity(entity.partitionKey, entity.rowKey);
      else if (action[0] === 'update') await table.updateEntity(entity, action[2] ?? 'Merge');
      else if (action[0] === 'upsert') await table.upsertEntity(entity, action[2] ?? 'Merge');
      else await table.createEntity(entity);
      done++;
    } catch (error) {
      if (!(error instanceof RestError && (error.statusCode === 404 || error.statusCode === 409)))
        throw error;
    }
  }
  return done;
}
