// Collection paging of SPEC §3: `top` (1..200, default 50), an opaque `skipToken`, and a `nextLink`.
import { z } from 'zod';

import type { Page, PageRequest } from '../paging';

export const pagingQuery = {
  top: z.coerce.number().int().min(1).max(200).default(50).describe('Page size, 1 to 200.'),
  skipToken: z.string().min(1).max(4096).optional().describe('Opaque token from a previous nextLink.'),
};

export const pageRequestOf = (query: { top: number; skipToken?: string }): PageRequest => ({
  top: query.top,
  ...(query.skipToken ? { continuation: query.skipToken } : {}),
});

export const collectionSchema = <T extends z.ZodType>(item: T) =>
  z.object({ value: z.array(item), nextLink: z.string().optional() });

/** `{value, nextLink}`: the next link repeats the request's own query with the new skipToken. */
export function collection<T>(page: Page<T>, requestUrl: string): { value: T[]; nextLink?: string } {
  if (!page.continuation) return { value: page.items };
  const next = new URL(requestUrl);
  next.searchParams.set('skipToken', page.continuation);
  return { value: page.items, nextLink: next.toString() };
}
