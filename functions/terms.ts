// Terms and privacy statement (SPEC §10): PUT .../terms publishes a version (Privacy.Admin); GET .../terms
// serves the current one in a language; GET .../terms/versions lists them; each signed-in user accepts
// exactly the text shown (POST .../terms/acceptances), reads (GET .../me) and withdraws (DELETE .../me) it;
// GET .../terms/acceptances lists every user's acceptance for the admins.
import { z } from 'zod';

import type { Principal } from '../shared/auth/principal';
import { actorOf } from '../shared/auth/principal';
import { operation } from '../shared/http/apiOperation';
import { collection, collectionSchema, pageRequestOf, pagingQuery } from '../shared/http/paging';
import { BODY_ERRORS, TENANT_ERRORS, WRITE_ERRORS } from '../shared/http/standardResponses';
import type { HttpFunction } from '../shared/hosting/functionDefinition';
import { acceptTermsSchema, languageSchema, publishTermsSchema } from '../shared/terms/termsVersion';

const versionFields = {
  version: z.number().int(),
  language: z.string(),
  title: z.string(),
  summary: z.string().optional(),
  sha256: z.string().describe('Hex SHA-256 of `text` as UTF-8: what an acceptance binds to.'),
  requireReacceptance: z.boolean(),
  publishedAt: z.string(),
  publishedBy: z.string(),
  defaultLanguage: z.string().describe("The tenant's default language (the first it published)."),
};
const termsVersionSchema = z.object({ ...versionFields, text: z.string() }).meta({ id: 'TermsVersion' });
const versionSummarySchema = z.object(versionFields).meta({ id: 'TermsVersionSummary' });

const historySchema = z.array(
  z.object({
    action: z.enum(['accepted', 'withdrawn']),
    version: z.number().int(),
    sha256: z.string(),
    at: z.string(),
  }),
);
const acceptanceSchema = z
  .object({
    objectId: z.string(),
    upn: z.string().optional(),
    version: z.number().int(),
    language: z.string(),
    sha256: z.string(),
    acceptedAt: z.string(),
    deviceName: z.string().optional(),
    withdrawnAt: z.string().optional(),
    acceptedLatest: z
      .boolean()
      .describe('Not withdrawn, and no later version of its language asked for acceptance again.'),
    currentVersion: z.number().int().optional(),
    history: historySchema,
  })
  .meta({ id: 'TermsAcceptance' });

/** The caller's own acceptances, one per language (not paged: a user accepts in a few languages at most). */
const acceptanceListSchema = z.object({ value: z.array(acceptanceSchema) });

const userOf = (principal: Principal) => ({
  objectId: principal.objectId,
  ...(principal.upn ? { upn: principal.upn } : {}),
});

const termsLocation = (tenantId: string, language: string) =>
  `/api/tenants/${tenantId}/terms?language=${encodeURIComponent(language)}`;

export const terms: HttpFunction = {
  kind: 'http',
  name: 'terms',
  route: 'tenants/{tenantId}/terms',
  operations: {
    GET: operation({
      operationId: 'getTerms',
      summary:
        "The current terms and privacy statement in a language (the tenant's default language where that one has none).",
      access: { kind: 'tenant', roles: 'anyUser' },
      query: z.strictObject({ language: languageSchema.optional() }),
      responses: [
        {
          status: 200,
          description: 'The version to show, with its text and SHA-256.',
          schema: termsVersionSchema,
        },
        ...TENANT_ERRORS,
      ],
      async handle({ services, tenant, query }) {
        return { status: 200, body: await services.terms.current(tenant, query.language) };
      },
    }),
    PUT: operation({
      operationId: 'publishTerms',
      summary: 'Publish a new version of the terms in a language; numbered, bound to its text by SHA-256.',
      access: { kind: 'tenant', roles: ['Privacy.Admin'] },
      body: publishTermsSchema,
      responses: [
        { status: 201, description: 'The version published.', schema: termsVersionSchema },
        ...BODY_ERRORS,
        ...TENANT_ERRORS,
        ...WRITE_ERRORS,
      ],
      async handle({ services, tenant, principal, body, requestId }) {
        const published = await services.terms.publish(tenant, body, actorOf(principal), requestId);
        return {
          status: 201,
          body: published,
          headers: { Location: termsLocation(tenant.tenantId, published.language) },
        };
      },
    }),
  },
};

export const termsVersions: HttpFunction = {
  kind: 'http',
  name: 'termsVersions',
  route: 'tenants/{tenantId}/terms/versions',
  operations: {
    GET: operation({
      operationId: 'listTermsVersions',
      summary: 'Every published version of the terms, newest first (without their text).',
      access: { kind: 'tenant', roles: 'anyUser' },
      responses: [
        {
          status: 200,
          description: 'The versions.',
          schema: z.object({ value: z.array(versionSummarySchema) }),
        },
        ...TENANT_ERRORS,
      ],
      async handle({ services, tenant }) {
        return { status: 200, body: { value: await services.terms.versions(tenant) } };
      },
    }),
  },
};

export const termsAcceptances: HttpFunction = {
  kind: 'http',
  name: 'termsAcceptances',
  route: 'tenants/{tenantId}/terms/acceptances',
  operations: {
    POST: operation({
      operationId: 'acceptTerms',
      summary:
        'Accept the version shown: its number and the SHA-256 of its text; refused (409 InvalidState) if that is not the current text.',
      access: { kind: 'tenant', roles: 'anyUser' },
      body: acceptTermsSchema,
      responses: [
        { status: 201, description: 'Your acceptance.', schema: acceptanceSchema },
        ...BODY_ERRORS,
        ...TENANT_ERRORS,
        ...WRITE_ERRORS,
        { status: 409, description: 'InvalidState: not the current version or not its text.' },
      ],
      async handle({ services, tenant, principal, body, requestId }) {
        const accepted = await services.terms.accept(tenant, userOf(principal), body, requestId);
        return {
          status: 201,
          body: accepted,
          headers: { Location: `/api/tenants/${tenant.tenantId}/terms/acceptances/me` },
        };
      },
    }),
    GET: operation({
      operationId: 'listTermsAcceptances',
      summary:
        "Every user's acceptance: version, when, whether it still stands, withdrawn (restricted subjects left out).",
      access: { kind: 'tenant', roles: ['Privacy.Admin', 'Privacy.Reader'] },
      query: z.strictObject({ ...pagingQuery }),
      responses: [
        { status: 200, description: 'A page of acceptances.', schema: collectionSchema(acceptanceSchema) },
        ...TENANT_ERRORS,
      ],
      async handle({ services, tenant, query, request }) {
        const page = await services.terms.list(tenant, pageRequestOf(query));
        return { status: 200, body: collection(page, request.url) };
      },
    }),
  },
};

export const termsAcceptanceMe: HttpFunction = {
  kind: 'http',
  name: 'termsAcceptanceMe',
  route: 'tenants/{tenantId}/terms/acceptances/me',
  operations: {
    GET: operation({
      operationId: 'getMyTermsAcceptance',
      summary: 'Your acceptances of the terms, one per language, with their history.',
      access: { kind: 'tenant', roles: 'anyUser' },
      responses: [
        {
          status: 200,
          description: 'Your acceptances.',
          schema: acceptanceListSchema,
        },
        ...TENANT_ERRORS,
      ],
      async handle({ services, tenant, principal }) {
        return { status: 200, body: { value: await services.terms.mine(tenant, userOf(principal)) } };
      },
    }),
    DELETE: operation({
      operationId: 'withdrawMyTermsAcceptance',
      summary: 'Withdraw your acceptance; the withdrawal is recorded and audited.',
      access: { kind: 'tenant', roles: 'anyUser' },
      responses: [
        {
          status: 200,
          description: 'Your acceptances, withdrawn.',
          schema: acceptanceListSchema,
        },
        ...TENANT_ERRORS,
        ...WRITE_ERRORS,
      ],
      async handle({ services, tenant, principal, requestId }) {
        const withdrawn = await services.terms.withdraw(tenant, userOf(principal), requestId);
        return { status: 200, body: { value: withdrawn } };
      },
    }),
  },
};
