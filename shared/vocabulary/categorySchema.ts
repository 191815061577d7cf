// The category of personal data as the API takes and gives it: one schema, described in words from the one
// table of words (categoryWords.ts), so the OpenAPI document names each category as the register does.
import { z } from 'zod';

import { RECORD_CATEGORIES } from './categories';
import { categoriesInWords } from './categoryWords';

export const categorySchema = z
  .enum(RECORD_CATEGORIES)
  .describe(`A category of personal data: ${categoriesInWords()}.`)
  .meta({ id: 'RecordCategory' });
