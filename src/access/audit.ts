// The audit trail: one FHIR AuditEvent for every request that reaches patient data, an export (its
// kick-off, status and files), an attachment or the token endpoint, whether it succeeded or was refused: who (client, user, role,
// institution, address), what (the records and patients touched, or the query), when and with what
// outcome. Written by the service alone, after the response; the API never changes or deletes one
// (policy.ts), and admins search them by patient, agent, date and outcome. The events of requests
// answered within a few milliseconds of each other are written in one insert.
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { AuditEvent, AuditEventAgent, AuditEventEntity, Bundle, Coding } from '@medplum/fhirtypes';
import { principalOf } from '../auth/bearer.js';
import type { Conformance } from '../conformance/artifacts.js';
import type { Reply } from '../fhir/interactions.js';
import type { Logger } from '../logger.js';
import type { Repository } from '../store/repository.js';

/** How long an event waits for others to be written with it. */
const batchMs = 10;
/** Records named in one AuditEvent, at most (a search page names its matches up to this many). */
const entitiesAtMost = 100;
const resourcePath = /^([A-Z][A-Za-z]+)(?:\/([A-Za-z0-9\-.]{1,64}))?/;

const eventType = {
  rest: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'RESTful Operation' },
  login: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110114', display: 'User Authentication' },
};
const interactionSystem = 'http://hl7.org/fhir/restful-interaction';
const entityType = (code: '1' | '2', display: string): Coding => ({ system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code, display });
const patientRole: Coding = { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1', display: 'Patient' };
const queryRole: Coding = { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '24', display: 'Query' };

/** What the request touched, as the FHIR router saw it (see noteAccess). */
interface Touched {
  records: string[];
  patients: string[];
}

/** Called by the FHIR router with each reply it sends: the records and patients it holds. */
export function noteAccess(res: Response, reply: Reply): void {
  const body = reply.body;
  const records = !body
    ? []
    : body.resourceType === 'Bundle'
      ? recordsIn(body)
      : body.resourceType === 'OperationOutcome' || !body.id
        ? []
        : [`${body.resourceType}/${body.id}`];
  res.locals.touched = { records, patients: reply.patients ?? [] } satisfies Touched;
}

function recordsIn(bundle: Bundle): string[] {
  return (bundle.entry ?? [])
    .flatMap((e) => (e.resource?.id && e.resource.resourceType !== 'OperationOutcome' ? [`${e.resource.resourceType}/${e.resource.id}`] : []))
    .slice(0, entitiesAtMost);
}

export class AuditTrail {
  private readonly roleSystem: string | undefined;
  /** Events being written: a stop waits for them before the database closes. */
  private readonly writing = new Set<Promise<void>>();
  /** The events that will be written together, and when they are. */
  private batch?: { events: AuditEvent[]; written: Promise<void> };

  constructor(
    private readonly repository: Repository,
    conformance: Conformance,
    private readonly site: string,
    private readonly log: Logger,
  ) {
    this.roleSystem = [...conformance.codeSystems.values()].find((cs) => cs.id === 'access-role')?.url;
  }

  /**
   * Middleware: records the request once its answer is sent. `kind` says what the mount point
   * serves: the REST API (and what lies beside it) or the token endpoint; `open` names requests not
   * worth recording (the CapabilityStatement); `answered` those whose answer says they are not
   * (an authorization request that went on to the sign-in page rather than being refused).
   */
  recorder(kind: 'rest' | 'login', open: (req: Request) => boolean = () => false, answered: (res: Response) => boolean = () => true): RequestHandler {
    return (req: Request, res: Response, next: NextFunction) => {
      if (open(req)) return next();
      const { path, baseUrl } = req;
      res.on('finish', () => {
        if (!answered(res)) return;
        const written = this.record(kind, req, res, baseUrl, path).catch((err: unknown) => {
          // The request is answered already; the failure is an alert for the operator (no patient data in it).
          this.log.error({ code: (err as { code?: unknown }).code, name: (err as Error).name }, 'audit event not recorded');
        });
        this.writing.add(written);
        void written.finally(() => this.writing.delete(written));
      });
      next();
    };
  }

  /** Waits for the events of answered requests to be written (at a stop, before the database closes). */
  async drain(): Promise<void> {
    await Promise.all([...this.writing]);
  }

  private async record(kind: 'rest' | 'login', req: Request, res: Response, baseUrl: string, path: string): Promise<void> {
    // A sign-in refused by a redirect back to the app (RFC 6749 4.1.2.1) notes the status it stands for.
    const status = (res.locals.refusedStatus as number | undefined) ?? res.statusCode;
    const touched = res.locals.touched as Touched | undefined;
    const target = kind === 'rest' ? targetOf(baseUrl, path) : undefined;
    const records = touched?.records.length ? touched.records : target ? [target] : [];
    const entity: AuditEventEntity[] = [
      ...records.map((reference) => ({ what: { reference }, type: entityType('2', 'System Object') })),
      ...(touched?.patients ?? []).slice(0, entitiesAtMost).map((reference) => ({ what: { reference }, type: entityType('1', 'Person'), role: patientRole })),
    ];
    const query = withoutCredentials(new URL(req.originalUrl, 'http://query/').search.slice(1));
    if (baseUrl === '/bulk')
      entity.push({ type: entityType('2', 'System Object'), description: `bulk export ${path.split('/').filter(Boolean).join(' ')}`.slice(0, 200) });
    if (query && kind === 'rest')
      entity.push({
        type: entityType('2', 'System Object'),
        role: queryRole,
        query: Buffer.from(query).toString('base64'),
        description: `${req.method} ${baseUrl}${path}`,
      });
    const [interaction, action] = kind === 'login' ? ['login', 'E'] : interactionOf(req, baseUrl, path);
    const event: AuditEvent = {
      resourceType: 'AuditEvent',
      type: eventType[kind],
      subtype: [
        {
          system: kind === 'login' ? 'http://dicom.nema.org/resources/ontology/DCM' : interactionSystem,
          code: kind === 'login' ? '110122' : interaction,
          display: kind === 'login' ? 'Login' : (operationName(path) ?? interaction),
        },
      ],
      action: action as AuditEvent['action'],
      recorded: new Date().toISOString(),
      outcome: status < 400 ? '0' : status < 500 ? '4' : '8',
      outcomeDesc: `${status} ${STATUS_CODES[status] ?? ''}`.trim(),
      agent: this.agentsOf(req, res),
      source: {
        site: this.site,
        observer: { display: 'second-opinion service' },
        type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }],
      },
      ...(entity.length ? { entity } : {}),
    };
    await this.write(event);
  }

  /** Adds the event to the batch being gathered (starting one), settled when that batch is written. */
  private write(event: AuditEvent): Promise<void> {
    if (!this.batch) {
      const events: AuditEvent[] = [];
      const written = new Promise((resolve) => setTimeout(resolve, batchMs)).then(async () => {
        this.batch = undefined;
        await this.repository.createMany(events, {});
      });
      this.batch = { events, written };
    }
    this.batch.events.push({ ...event, id: randomUUID() });
    return this.batch.written;
  }

  private agentsOf(req: Request, res: Response): AuditEventAgent[] {
    const principal = principalOf(res);
    const network = { address: req.ip ?? req.socket.remoteAddress ?? 'unknown', type: '2' as const };
    if (!principal) {
      // Refused before a token was verified: who it claimed to be is not known, only where it came from.
      // A client's id at the token endpoint, a person's user name at the sign-in page.
      const body = req.body as { client_id?: unknown; username?: unknown } | undefined;
      const id = body?.client_id ?? body?.username;
      const claimed = typeof id === 'string' ? { altId: id.slice(0, 200) } : {};
      return [{ who: { display: 'unauthenticated client' }, requestor: true, network, ...claimed }];
    }
    const agent: AuditEventAgent = {
      who: principal.fhirUser
        ? { reference: principal.fhirUser }
        : { identifier: { system: principal.issuer, value: principal.subject }, display: `client ${principal.subject}` },
      altId: principal.subject,
      requestor: true,
      network,
      ...(principal.role ? { role: [{ coding: [{ ...(this.roleSystem ? { system: this.roleSystem } : {}), code: principal.role }] }] } : {}),
    };
    // The institution a referring system acts for, as a second agent: searchable by `agent` too.
    return principal.institution
      ? [agent, { who: { reference: principal.institution }, requestor: false, type: { text: 'institution the client acts for' } }]
      : [agent];
  }
}

/** Query parameters that carry a credential: their values never reach the audit trail. */
const credentialParameters =
  /^(access_token|refresh_token|id_token|token|code|code_verifier|client_secret|client_assertion|password|secret|api_?key|key|assertion)$/i;

/** The query as recorded: as sent, but for every credential's value, replaced by `redacted`. */
export function withoutCredentials(query: string): string {
  return query
    .split('&')
    .map((part) => {
      const name = part.split('=')[0];
      const decoded = (() => {
        try {
          return decodeURIComponent(name.replace(/\+/g, ' '));
        } catch {
          return name;
        }
      })();
      return credentialParameters.test(decoded.trim()) ? `${name}=redacted` : part;
    })
    .join('&');
}

/** The record a request names in its path (`Type/id`), when it names one. */
function targetOf(base: string, path: string): string | undefined {
  if (base === '/attachments') return `Binary/${path.split('/')[1] ?? ''}`;
  if (base === '/bulk') return undefined; // an export's status and files: the query and description say which
  const match = resourcePath.exec(path.slice(1));
  return match?.[2] && !match[2].startsWith('$') && match[2] !== '_search' ? `${match[1]}/${match[2]}` : undefined;
}

function operationName(path: string): string | undefined {
  return path.split('/').find((p) => p.startsWith('$'));
}

/** The FHIR interaction (restful-interaction code) and the AuditEvent action of a request. */
function interactionOf(req: Request, baseUrl: string, path: string): [string, string] {
  const parts = path.split('/').filter(Boolean);
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  if (operationName(path)) return ['operation', 'E'];
  if (baseUrl !== '/fhir') return ['read', 'R'];
  if (!parts.length) return [(req.body as { type?: string } | undefined)?.type === 'batch' ? 'batch' : 'transaction', 'E'];
  if (parts.length === 1 || parts[1] === '_search') return method === 'POST' && parts.length === 1 ? ['create', 'C'] : ['search-type', 'R'];
  if (parts[2] === '_history') return parts[3] ? ['vread', 'R'] : ['history-instance', 'R'];
  if (method === 'PUT') return ['update', 'U'];
  if (method === 'PATCH') return ['patch', 'U'];
  if (method === 'DELETE') return ['delete', 'D'];
  return ['read', 'R'];
}
