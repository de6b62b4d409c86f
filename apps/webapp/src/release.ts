/**
 * What each release says. v2 is the "new version" of the demo: another message and a new field. The page colour is
 * not a release's: it is the colour of the deployment the release runs in (APP_COLOR, the chart's
 * versions.<v>.color), so the next release, deployed to the other colour, is painted by where it runs.
 */
import type { AppColor } from './config.js';

export interface Release {
  message: string;
  /** Only in v2 and later: what the release added. */
  features?: string[];
}

const RELEASES: Record<string, Release> = {
  v1: { message: 'Hello from v1, the stable release' },
  v2: {
    message: 'Hello from v2, the new release',
    features: ['features list in the JSON answer'],
  },
};

export function releaseFor(version: string): Release {
  return RELEASES[version] ?? { message: `Hello from ${version}` };
}

/** The page colour of each deployment colour (CSS hex); a process outside blue-green is neutral grey. */
const PAGE_COLORS: Record<AppColor, string> = { green: '#2e7d32', blue: '#1565c0' };
const NEUTRAL_COLOR = '#616161';

export function pageColor(color: AppColor | null): string {
  return color === null ? NEUTRAL_COLOR : PAGE_COLORS[color];
}
