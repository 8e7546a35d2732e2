// The reviewers' workbench, assembled for the server: people's sign-in (auth/sign-in.ts) and the web
// app under /workbench, which reads and writes everything through the FHIR API with the person's token.
import express, { type Router } from 'express';
import type { Connection } from 'mongoose';
import type { AuditTrail } from '../access/audit.js';
import type { Authentication } from '../auth/authentication.js';
import { startSignIn, type SignIn } from '../auth/sign-in.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';

export interface Workbench {
  routes: Router;
  signIn: SignIn;
}

export async function installWorkbench(config: Config, connection: Connection, auth: Authentication, audit: AuditTrail, log: Logger): Promise<Workbench> {
  const signIn = await startSignIn(config, connection, auth, audit, log);
  const routes = express.Router();
  routes.use(signIn.routes);
  return { routes, signIn };
}
