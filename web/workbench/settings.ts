// What the workbench takes from the service's conformance artifacts (profiles/), served with the app:
// the canonical base, the concordance and follow-up codes and the case's business statuses, by name.
export interface Coded {
  code: string;
  display: string;
}

export interface Settings {
  canonical: string;
  concordance: Coded[];
  followUp: Coded[];
  businessStatus: Coded[];
}

let loaded: Settings | undefined;

export async function loadSettings(): Promise<Settings> {
  loaded ??= (await (await fetch('settings.json')).json()) as Settings;
  return loaded;
}

export const settings = (): Settings => loaded as Settings;
export const statusName = (code: string): string => settings().businessStatus.find((c) => c.code === code)?.display ?? code;
