// SMART scope arithmetic: v1 and v2 scopes read to one form, what they allow, how a refusal names the
// scope that is missing, and what the token endpoint grants of what a client asks for.
import { describe, expect, it } from '@jest/globals';
import { allows, narrowScopes, neededScope, parseScope, parseScopes } from '../../src/auth/scopes.js';

const permissions = (text: string): string[] => [...(parseScope(text)?.permissions ?? [])].sort();

describe('reading a scope', () => {
  it('v1 read and write are v2 rs and cud; * is all five', () => {
    expect(permissions('system/Patient.read')).toEqual(['r', 's']);
    expect(permissions('system/Patient.write')).toEqual(['c', 'd', 'u']);
    expect(permissions('user/*.*')).toEqual(['c', 'd', 'r', 's', 'u']);
    expect(permissions('system/Observation.rs')).toEqual(['r', 's']);
  });

  it.each([
    'system/Patient.dus',
    'system/Patient.rc',
    'system/Patient.',
    'system/patient.read',
    'admin/Patient.read',
    'openid',
    'system/Patient.read?category=x',
  ])('"%s" is no resource scope', (text) => {
    expect(parseScope(text)).toBeUndefined();
  });

  it('a v2 scope keeps its search restriction; a list drops what is not a resource scope', () => {
    expect(parseScope('system/Observation.rs?category=laboratory')?.query).toBe('category=laboratory');
    expect(parseScopes('openid system/Task.rs  launch fhirUser').map((s) => s.text)).toEqual(['system/Task.rs']);
    expect(parseScopes(undefined)).toEqual([]);
  });
});

describe('what scopes allow', () => {
  const scopes = parseScopes('system/Task.rs system/*.r patient/Observation.rs system/Condition.rs?code=x');

  it('a type scope or a wildcard, system or user context', () => {
    expect(allows(scopes, 'Task', 's')).toBe(true);
    expect(allows(scopes, 'Patient', 'r')).toBe(true);
    expect(allows(scopes, 'Patient', 's')).toBe(false);
    expect(allows(scopes, 'Task', 'u')).toBe(false);
  });

  it('patient-context and search-restricted scopes grant nothing here', () => {
    expect(allows(scopes, 'Observation', 's')).toBe(false);
    expect(allows(scopes, 'Condition', 's')).toBe(false);
  });

  it('a refusal names the missing scope in the context the token uses', () => {
    expect(neededScope(parseScopes('user/Task.rs'), 'Task', 'u')).toBe('user/Task.u');
    expect(neededScope(parseScopes('system/Task.rs user/Task.rs'), 'Task', 'u')).toBe('system/Task.u');
    expect(neededScope([], 'Patient', 'r')).toBe('system/Patient.r');
  });
});

describe('narrowing what a client asks for to what it may have', () => {
  const narrow = (requested: string, allowed: string): string[] => narrowScopes(parseScopes(requested), parseScopes(allowed)).sort();

  it('a scope the allowed ones cover whole is granted as asked', () => {
    expect(narrow('system/Patient.read system/Task.rs', 'system/*.rs')).toEqual(['system/Patient.read', 'system/Task.rs']);
  });

  it('a wider request gets the part that is allowed, in v2 form', () => {
    expect(narrow('system/*.cruds', 'system/Task.rs system/Patient.r')).toEqual(['system/Patient.r', 'system/Task.rs']);
    expect(narrow('system/Task.*', 'system/Task.read')).toEqual(['system/Task.rs']);
  });

  it('nothing for another context, an unrelated type, or a search-restricted request', () => {
    expect(narrow('user/Task.rs', 'system/*.rs')).toEqual([]);
    expect(narrow('system/Patient.rs', 'system/Task.rs')).toEqual([]);
    expect(narrow('system/Task.rs?status=ready', 'system/*.rs')).toEqual([]);
  });

  it('a part that a wider granted part holds is not granted twice', () => {
    expect(narrow('system/*.rs', 'system/*.r system/Task.r')).toEqual(['system/*.r']);
  });
});
