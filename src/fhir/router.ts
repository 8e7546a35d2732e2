// The FHIR REST surface at /fhir: maps HTTP to the interactions, and every failure to an OperationOutcome.
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import accepts from 'accepts';
import fresh from 'fresh';
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import type { Resource } from '@medplum/fhirtypes';
import type { Logger } from '../logger.js';
import { capabilityStatement } from '../conformance/capability.js';
import { gateOf, type Gate } from '../access/gate.js';
import { noteAccess } from '../access/audit.js';
import { type FhirService, type Reply } from './interactions.js';
import {
  badRequest,
  FhirError,
  informational,
  methodNotAllowed,
  notAcceptable,
  notFound,
  outcomeOf,
  payloadTooLarge,
  unsupportedMediaType,
} from '../base/outcome.js';
import { jsonDepthLimit } from '../http/hardening.js';
import { requestIdOf } from '../http/request-log.js';
import { conditionalWriteRefused, processBundle } from './transaction.js';
import { subsetOf, subsetResource } from './subset.js';
import type { QueryParams } from './search/search.js';
import type { OperationTable } from '../operations/index.js';
import { invokeOperation } from '../operations/invoke.js';

const fhirJson = 'application/fhir+json';
const jsonPatch = 'application/json-patch+json';
/**
 * What every answer here is, as content negotiation offers it: FHIR R4 JSON in UTF-8 (also under JSON's
 * generic and older names). FHIR names the version major.minor (4.0); some clients send 4.0.1.
 */
const answerTypes = [
  `${fhirJson}; fhirVersion=4.0; charset=utf-8`,
  `${fhirJson}; fhirVersion=4.0.1; charset=utf-8`,
  'application/json; charset=utf-8',
  'text/json; charset=utf-8',
  'application/json+fhir; charset=utf-8',
];
/** `_format`'s short names (FHIR http.html), as the media types they stand for. */
const formatNames: Record<string, string> = { json: fhirJson, xml: 'application/fhir+xml', ttl: 'text/turtle', html: 'text/html' };
type FhirRequest = Request<Record<string, string>>;

type Action = (req: FhirRequest, gate: Gate) => Promise<Reply> | Reply;
type Route = [method: 'get' | 'post' | 'put' | 'patch' | 'delete', path: string, action: Action];

/**
 * The FHIR REST routes, read top to bottom: a request is answered by the first row whose method and
 * path match, else 405 (or 404 where the path names no resource type). `authorize` is the check of
 * the caller's scopes (auth/fhir-access.ts) that every interaction passes.
 */
export function fhirRouter(
  service: FhirService,
  operations: OperationTable,
  options: { maxBodyBytes: number; maxJsonDepth: number; log: Logger; authorize: RequestHandler },
): Router {
  const metadata = capabilityStatement(service.conformance, service.fhirBase);
  const query = (req: Request): QueryParams => req.query as QueryParams;
  const self = (req: Request): URL => new URL(`${service.fhirBase}${req.url}`);
  const operation: Action = (req, gate) => invokeOperation(service, operations, req, req.params.type ?? '', req.params.id, req.params.operation, gate);

  const routes: Route[] = [
    ['get', '/metadata', () => ({ status: 200, body: metadata })],
    ['post', '/', (req, gate) => processBundle(service, req.body, gate)],
    // Operations, at system, type and instance level (operations/index.ts).
    ['get', '/$operation', operation],
    ['post', '/$operation', operation],
    ['get', '/:type/$operation', operation],
    ['post', '/:type/$operation', operation],
    ['get', '/:type/:id/$operation', operation],
    ['post', '/:type/:id/$operation', operation],
    ['get', '/:type', (req, gate) => service.search(req.params.type, query(req), self(req), gate, lenient(req))],
    ['post', '/:type', (req, gate) => service.create(req.params.type, req.body, req.get('If-None-Exist'), gate)],
    ['post', '/:type/_search', (req, gate) => searchByPost(service, req, gate)],
    // Conditional update and delete are not offered: 400, as FHIR asks of a server without them.
    ['put', '/:type', conditional],
    ['delete', '/:type', conditional],
    // Type-level search by GET and type history are not offered: not reads of an id "_search".
    ['get', '/:type/_search', unsupported],
    ['get', '/:type/_history', unsupported],
    ['get', '/:type/:id', (req, gate) => partOf(req, () => service.read(req.params.type, req.params.id, gate))],
    ['put', '/:type/:id', (req, gate) => service.update(req.params.type, req.params.id, req.body, req.get('If-Match'), gate)],
    ['patch', '/:type/:id', (req, gate) => service.patch(req.params.type, req.params.id, req.body, req.get('If-Match'), gate)],
    ['delete', '/:type/:id', (req, gate) => service.delete(req.params.type, req.params.id, gate)],
    ['get', '/:type/:id/_history', (req, gate) => service.history(req.params.type, req.params.id, query(req), gate)],
    ['get', '/:type/:id/_history/:version', (req, gate) => partOf(req, () => service.vread(req.params.type, req.params.id, req.params.version, gate))],
    // What else a path of a resource type may hold is not offered.
    ['post', '/:type/:id', unsupported],
    ['get', '/:type/:id/:part', unsupported],
    ['post', '/:type/:id/:part', unsupported],
  ];

  const router = express.Router();
  router.use(requireJsonAnswer);
  router.use(requireJsonBody);
  router.use(express.json({ type: ['application/fhir+json', 'application/json', jsonPatch], limit: options.maxBodyBytes, strict: false, verify: requireUtf8 }));
  router.use(express.urlencoded({ extended: false, limit: options.maxBodyBytes, verify: requireUtf8 }));
  router.use(jsonDepthLimit(options.maxJsonDepth));
  router.use(options.authorize);
  // Every interaction runs behind the caller's gate (access/gate.ts): role, institution, case.
  const handle = (action: Action) => async (req: Request, res: Response) => {
    await send(req, res, await action(req as FhirRequest, gateOf(res, service.repository)));
  };
  for (const [method, path, action] of routes) router[method](pathPattern(path), handle(action));
  router.all(/.*/, handle(unsupported));
  router.use(errorHandler(options.log));
  return router;
}

/**
 * A route's path as the expression express matches it with: `:name` is one segment, `$operation` an
 * operation's name (`$code`, or `%24code` as some clients encode it), other segments are literal and
 * case-sensitive, and a trailing slash is allowed.
 */
export function pathPattern(path: string): RegExp {
  const segments = path
    .split('/')
    .filter(Boolean)
    .map((segment) => {
      if (segment === '$operation') return '/(?<operation>(?:\\$|%24)[^/]*)';
      if (segment.startsWith(':')) return `/(?<${segment.slice(1)}>[^/]+)`;
      return `/${segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`;
    });
  return new RegExp(`^${segments.join('')}/?$`);
}

/** POST {type}/_search: the query's parameters and the body's, one search (the Bundle's self link without them). */
function searchByPost(service: FhirService, req: FhirRequest, gate: Gate): Promise<Reply> {
  service.checkType(req.params.type);
  return service.search(
    req.params.type,
    { ...(req.query as QueryParams), ...searchParameters(req.body) },
    new URL(`${service.fhirBase}/${req.params.type}`),
    gate,
    lenient(req),
  );
}

/** Whether the client asked that search parameters the server does not know be left out rather than refused (FHIR's `Prefer: handling=lenient`). */
function lenient(req: Request): boolean {
  return /\bhandling=lenient\b/.test(req.get('Prefer') ?? '');
}

/** A read's answer cut to what `_summary` or `_elements` ask for (checked before the read); its ETag stays the record's. */
async function partOf(req: FhirRequest, read: () => Promise<Reply>): Promise<Reply> {
  const subset = subsetOf(req.params.type, req.query);
  const reply = await read();
  return reply.body ? { ...reply, body: subsetResource(reply.body, subset) } : reply;
}

function conditional(req: FhirRequest): never {
  throw conditionalWriteRefused(req.method === 'PUT' ? 'PUT' : 'DELETE');
}

function unsupported(req: FhirRequest): never {
  const type = req.params.type;
  if (type && !/^[A-Z][A-Za-z]+$/.test(type)) {
    throw notFound(`No FHIR endpoint at ${req.path}`);
  }
  throw methodNotAllowed(`${req.method} ${req.baseUrl}${req.path} is not supported`);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A body that is not valid UTF-8 answers 400: decoding it would store replacement characters in place of what was sent. */
function requireUtf8(_req: Request, _res: Response, body: Buffer): void {
  try {
    strictUtf8.decode(body);
  } catch {
    throw badRequest('The request body is not valid UTF-8');
  }
}

/** A POST _search body's parameters: each a string or a list of strings, as a form or a query carries them. */
function searchParameters(body: unknown): QueryParams {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw badRequest('A _search body holds search parameters: a form, or a JSON object of strings');
  for (const [name, value] of Object.entries(body)) {
    if (typeof value !== 'string' && !(Array.isArray(value) && value.every((v) => typeof v === 'string'))) {
      throw badRequest(`Search parameter "${name}" must be a string or a list of strings`, name);
    }
  }
  return body as QueryParams;
}

/**
 * The answer will be FHIR R4 JSON: a client that asks (by `_format`, else by Accept) only for what
 * it is not (XML, Turtle, HTML, another FHIR version) is answered 406, not sent what it cannot read.
 */
function requireJsonAnswer(req: Request, _res: Response, next: NextFunction): void {
  const format = req.query._format;
  if (format !== undefined && typeof format !== 'string') return next(badRequest('_format is given once', '_format'));
  const asked = format === undefined ? req.headers.accept : (formatNames[format.trim().toLowerCase()] ?? format);
  // accepts() reads only the request's headers.
  if (!asked || accepts({ headers: { accept: asked } } as IncomingMessage).type(answerTypes)) return next();
  const by = format === undefined ? 'Accept' : '_format';
  next(notAcceptable(`This server answers FHIR R4 JSON (${fhirJson}) only; ${by} asks for "${asked.slice(0, 200)}"`, by));
}

/**
 * A body of a POST or PUT is FHIR JSON (or a form, for POST _search), of a PATCH a JSON Patch; anything
 * else answers 415 before parsing. Other methods carry none here.
 */
function requireJsonBody(req: Request, _res: Response, next: NextFunction): void {
  const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
  if (!hasBody || (req.method !== 'POST' && req.method !== 'PUT' && req.method !== 'PATCH')) return next();
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (req.method === 'PATCH') {
    return next(
      type === jsonPatch
        ? undefined
        : unsupportedMediaType(`A PATCH is a JSON Patch (${jsonPatch}); FHIRPath Patch and others are not supported, got "${type || 'none'}"`),
    );
  }
  const allowed = type === fhirJson || type === 'application/json' || (type === 'application/x-www-form-urlencoded' && req.path.endsWith('/_search'));
  next(allowed ? undefined : unsupportedMediaType(`Content-Type must be ${fhirJson}, got "${type || 'none'}"`));
}

async function send(req: Request, res: Response, reply: Reply): Promise<void> {
  noteAccess(res, reply);
  if (reply.headers) res.set(reply.headers);
  if (reply.stream) {
    res.status(reply.status).type(fhirJson);
    for await (const chunk of reply.stream) {
      if (!res.write(chunk)) await once(res, 'drain');
    }
    res.end();
    return;
  }
  const written = reply.written;
  if (written?.meta?.versionId) {
    res.setHeader('ETag', `W/"${written.meta.versionId}"`);
    if (written.meta.lastUpdated) res.setHeader('Last-Modified', new Date(written.meta.lastUpdated).toUTCString());
    if (reply.status === 201) {
      res.setHeader('Location', `${req.protocol}://${req.get('host')}${req.baseUrl}/${written.resourceType}/${written.id}/_history/${written.meta.versionId}`);
    }
  }
  if (req.method === 'GET' && reply.status === 200 && written && unchanged(req, res)) {
    res.status(304).end();
    return;
  }
  const prefer = req.get('Prefer') ?? '';
  let body: Resource | undefined = reply.body;
  if (written && /return=minimal/.test(prefer)) body = undefined;
  if (written && /return=OperationOutcome/.test(prefer)) body = informational(`${written.resourceType}/${written.id} version ${written.meta?.versionId}`);
  res.status(reply.status);
  if (body) {
    // _pretty=true: indented, for a person reading it (FHIR http.html); else as compact as JSON goes.
    res.type(fhirJson).send(JSON.stringify(body, undefined, req.query._pretty === 'true' ? 2 : undefined));
  } else {
    res.end();
  }
}

/**
 * A conditional read (If-None-Match, If-Modified-Since) of a record the client holds already, judged on
 * the answer's ETag and Last-Modified. The request's Cache-Control is left out: fetch() sends no-cache
 * with every conditional request, and it speaks to caches, not to the server that holds the record.
 */
function unchanged(req: Request, res: Response): boolean {
  const { 'if-none-match': ifNoneMatch, 'if-modified-since': ifModifiedSince } = req.headers;
  return fresh(
    { 'if-none-match': ifNoneMatch, 'if-modified-since': ifModifiedSince },
    { etag: res.getHeader('ETag'), 'last-modified': res.getHeader('Last-Modified') },
  );
}

export function errorHandler(log: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const error = toFhirError(err);
    if (error.status >= 500) {
      // Messages may quote stored values; log where it failed, not what it held.
      const e = err as Error & { code?: unknown };
      log.error(
        {
          requestId: requestIdOf(res),
          name: e?.name,
          code: e?.code,
          stack: e?.stack?.split('\n').slice(1, 6).join('\n'),
          method: req.method,
          path: (req.route as { path?: string } | undefined)?.path,
        },
        'request failed',
      );
    }
    res.status(error.status).type(fhirJson).send(JSON.stringify(error.outcome));
  };
}

function toFhirError(err: unknown): FhirError {
  if (err instanceof FhirError) return err;
  const e = err as { type?: string; status?: number };
  if (e?.type === 'entity.too.large') return payloadTooLarge('The request body is larger than this server accepts');
  if (e?.type === 'entity.parse.failed') return badRequest('The request body is not valid JSON');
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') return unsupportedMediaType('Unsupported body encoding');
  if (e?.status && e.status >= 400 && e.status < 500)
    return new FhirError(e.status, outcomeOf([{ severity: 'error', code: 'invalid', details: { text: 'Bad request' } }]));
  return new FhirError(500, outcomeOf([{ severity: 'error', code: 'exception', details: { text: 'Internal server error' } }]));
}
