/** What each release looks like. v2 is the "new version" of the demo: another colour and a new field. */
export interface Release {
  /** Page colour (CSS hex). */
  color: string;
  message: string;
  /** Only in v2 and later: what the release added. */
  features?: string[];
}

const RELEASES: Record<string, Release> = {
  v1: { color: '#2e7d32', message: 'Hello from v1, the stable release' },
  v2: {
    color: '#1565c0',
    message: 'Hello from v2, the new release',
    features: ['blue theme', 'features list in the JSON answer'],
  },
};

export function releaseFor(version: string): Release {
  return RELEASES[version] ?? { color: '#616161', message: `Hello from ${version}` };
}
