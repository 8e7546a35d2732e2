// GET /attachments/{id}: attachment content retrieved from referring institutions; the records'
// Attachment.url points here. Seen only by a caller whose gate sees the record it came with.
import { pipeline } from 'node:stream/promises';
import express, { type Router } from 'express';
import { gateOf } from '../access/gate.js';
import type { Authentication } from '../auth/authentication.js';
import type { Repository } from '../store/repository.js';
import type { AttachmentStore } from '../store/attachments.js';
import { notFound } from '../base/outcome.js';

/** The stored content's key: what the store makes, nothing a caller could use to reach elsewhere. */
const attachmentKey = /^[0-9a-f]{32}$/;

/** Behind a token that may read Binary content; each attachment then behind the gate of the record it came with. */
export function attachmentRoutes(attachments: AttachmentStore, repository: Repository, auth: Pick<Authentication, 'authenticate' | 'requireScope'>): Router {
  const routes = express.Router();
  routes.use('/attachments', auth.authenticate, auth.requireScope('Binary', 'r'));
  routes.get('/attachments/:id', async (req, res) => {
    const stored = attachmentKey.test(req.params.id) ? await attachments.get(req.params.id) : undefined;
    const gate = gateOf(res, repository);
    gate.checkType('Binary', 'read');
    if (!stored || !(await gate.sees('Binary', stored.access))) {
      res
        .status(404)
        .type('application/fhir+json')
        .send(JSON.stringify(notFound('No such attachment').outcome));
      return;
    }
    res.status(200).type(stored.contentType).setHeader('content-length', stored.length);
    await pipeline(stored.stream(), res).catch(() => res.destroy()); // the client went away
  });
  return routes;
}
