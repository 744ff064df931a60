// Every recording scenario, in the order `record.ts` runs them.
import type { Scenario } from '../context.js';
import { bridgeTechnology } from './bridge-technology.js';
import { dialBusy, dialCongestion, dialRejected, dialTimeout, dialUnknown, dialUnreachable } from './dial-failures.js';
import { hold, holdAppMoh } from './hold.js';
import { multiApp } from './multi-app.js';
import { transfererByeAfterProgress, transfererByeBeforeProgress } from './transferer-hangup.js';

export const SCENARIOS: Scenario[] = [
  dialBusy,
  dialRejected,
  dialCongestion,
  dialUnreachable,
  dialUnknown,
  dialTimeout,
  hold,
  holdAppMoh,
  transfererByeBeforeProgress,
  transfererByeAfterProgress,
  multiApp,
  bridgeTechnology,
];
