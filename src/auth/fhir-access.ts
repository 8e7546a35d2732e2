// What each FHIR interaction needs of the caller's SMART scopes, checked in one place: a middleware
// in the FHIR router that every request passes after its body is parsed and before any interaction
// runs. It reads the request the way router.ts routes it (and a Bundle's entries the way
// transaction.ts runs them); a refusal is 403 with an OperationOutcome naming the scopes missing.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { BundleEntry, OperationOutcomeIssue } from '@medplum/fhirtypes';
import { badRequest, outcomeOf } from '../base/outcome.js';
import { supportedParameters } from '../store/search/parameters.js';
import { principalOf } from './bearer.js';
import { allows, neededScope, type Permission } from './scopes.js';

export interface Need {
  type: string;
  permission: Permission;
  /** Where in the request the need comes from (a Bundle entry, an _include), as an OperationOutcome expression. */
  where?: string;
}

type OperationNeeds = (type: string, id: string | undefined) => Need[];

const resourceTypeName = /^[A-Z][A-Za-z]+$/;

/**
 * What each operation needs beyond a valid token. An operation not listed needs every permission on
 * the type it is called on, so a new one is closed until it is listed here.
 */
const operations: Record<string, OperationNeeds> = {
  // Type level it only judges the resource sent; on an instance it reads the stored one.
  validate: (type, id) => (id ? [{ type, permission: 'r' }] : []),
  'case-packet': () => [{ type: 'ServiceRequest', permission: 'r' }],
  submit: () => [{ type: 'ServiceRequest', permission: 'c' }],
  // A notification makes the service poll the institution, which can create requests.
  notify: () => [{ type: 'ServiceRequest', permission: 'c' }],
  verify: () => [{ type: 'DiagnosticReport', permission: 'r' }],
  redeliver: () => [{ type: 'DiagnosticReport', permission: 'u' }],
  // Group/{id}/$export reads the Group; the export checks `r` on each type it writes itself, at every level.
  export: (type) => (type === 'Group' ? [{ type: 'Group', permission: 'r' }] : []),
  'evaluate-measure': () => [{ type: 'Measure', permission: 'r' }],
};

/** 403 unless the caller's scopes cover everything the FHIR request needs; `realm` names the FHIR base. */
export function authorizeFhir(realm: string): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    let needs: Need[];
    try {
      // A "type" that cannot name a resource type is refused by the interaction itself (404), before
      // it reads or writes anything; left out here, it never reaches a header.
      needs = needsOf(req).filter((n) => resourceTypeName.test(n.type));
    } catch {
      return next(badRequest("The request URL, or a Bundle entry's request.url, is malformed"));
    }
    refuseMissing(res, needs, realm, next);
  };
}

/** 403 unless the caller's scopes allow `permission` on `type` (for what lies outside the FHIR router). */
export function requireScope(type: string, permission: Permission, realm: string): RequestHandler {
  return (_req: Request, res: Response, next: NextFunction) => refuseMissing(res, [{ type, permission }], realm, next);
}

function refuseMissing(res: Response, needs: Need[], realm: string, next: NextFunction): void {
  const scopes = principalOf(res)?.scopes ?? [];
  const missing = needs.filter((n) => !allows(scopes, n.type, n.permission));
  if (!missing.length) return next();
  const named = [...new Set(missing.map((n) => neededScope(scopes, n.type, n.permission)))];
  const issues: OperationOutcomeIssue[] = missing.map((n) => ({
    severity: 'error',
    code: 'forbidden',
    details: { text: `This request needs the scope ${neededScope(scopes, n.type, n.permission)} (or a wider one), which the access token does not grant` },
    ...(n.where ? { expression: [n.where] } : {}),
  }));
  res
    .status(403)
    .set('WWW-Authenticate', `Bearer realm="${realm}", error="insufficient_scope", scope="${named.join(' ')}"`)
    .type('application/fhir+json')
    .send(JSON.stringify(outcomeOf(issues)));
}

/** The needs of a request to the FHIR router (paths relative to /fhir), route by route as router.ts has them. */
export function needsOf(req: Request): Need[] {
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  // Decoded as express decodes route parameters, so that `%24submit` is `$submit` here too.
  const [type, id, sub, , ...more] = req.path.split('/').filter(Boolean).map(decodeURIComponent);
  if (more.length) return [];
  if (!type) return method === 'POST' ? bundleNeeds(req.body) : [];
  if (!id) {
    if (type === 'metadata' && method === 'GET') return [];
    if (method === 'GET') return [{ type, permission: 's' }, ...includeNeeds(req.query)];
    return method === 'POST' ? [{ type, permission: 'c' }] : [];
  }
  if (!sub) {
    if (method === 'PUT' || method === 'PATCH') return [{ type, permission: 'u' }];
    if (method === 'DELETE') return [{ type, permission: 'd' }];
    if (id.startsWith('$') && (method === 'GET' || method === 'POST')) return operationNeeds(type, undefined, id);
    if (id === '_search' && method === 'POST') return [{ type, permission: 's' }, ...includeNeeds({ ...req.query, ...(req.body as object) })];
    return method === 'GET' && id !== '_search' && id !== '_history' ? [{ type, permission: 'r' }] : [];
  }
  if (sub.startsWith('$') && (method === 'GET' || method === 'POST')) return operationNeeds(type, id, sub);
  // Instance history and vread are reads (SMART v2: `r`); express matches the literal `_history` in any case.
  return method === 'GET' && sub.toLowerCase() === '_history' ? [{ type, permission: 'r' }] : [];
}

function operationNeeds(type: string, id: string | undefined, name: string): Need[] {
  const code = name.slice(1);
  return Object.hasOwn(operations, code) ? operations[code](type, id) : (['c', 'r', 'u', 'd', 's'] as Permission[]).map((permission) => ({ type, permission }));
}

/** Included resources are read: `_include` needs `r` on each type its reference can point at, `_revinclude` on the referring type. */
function includeNeeds(query: unknown): Need[] {
  const needs: Need[] = [];
  for (const [key, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
    const include = key === '_include' || key.startsWith('_include:');
    if (!include && key !== '_revinclude' && !key.startsWith('_revinclude:')) continue;
    for (const spec of [value].flat().flatMap((v) => String(v).split(','))) {
      const [source, code, target] = spec.split(':');
      const types = !include ? [source] : target ? [target] : (supportedParameters(source).get(code)?.targets ?? []);
      needs.push(...types.map((type) => ({ type, permission: 'r' as const, where: key })));
    }
  }
  return needs;
}

/** Every entry of a transaction or batch, read as transaction.ts runs it; the Bundle is refused whole if one is not allowed. */
function bundleNeeds(body: unknown): Need[] {
  const entries = (body as { resourceType?: string; entry?: unknown } | undefined)?.resourceType === 'Bundle' ? (body as { entry?: unknown }).entry : undefined;
  if (!Array.isArray(entries)) return [];
  return (entries as BundleEntry[]).flatMap((entry, i): Need[] => {
    const { method, url } = entry?.request ?? {};
    if (typeof url !== 'string') return [];
    const where = `Bundle.entry[${i}]`;
    const parsed = new URL(url, 'http://entry/');
    const [type, id] = parsed.pathname.slice(1).split('/');
    switch (method) {
      case 'POST':
        return [{ type: url.split(/[/?]/)[0], permission: 'c', where }];
      case 'PUT':
        return [{ type: url.split(/[/?]/)[0], permission: 'u', where }];
      case 'DELETE':
        return [{ type, permission: 'd', where }];
      case 'GET':
      case 'HEAD':
        return id
          ? [{ type, permission: 'r', where }]
          : [
              { type, permission: 's', where },
              ...includeNeeds(Object.fromEntries([...new Set(parsed.searchParams.keys())].map((k) => [k, parsed.searchParams.getAll(k)]))).map((n) => ({
                ...n,
                where,
              })),
            ];
      default:
        return [];
    }
  });
}
