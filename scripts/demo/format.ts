// Text rendering of ladders: aligned columns, ANSI colours only when asked.
import { PBX, type Step } from './ladder.js';

export interface Style {
  bold(s: string): string;
  dim(s: string): string;
  green(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  cyan(s: string): string;
  magenta(s: string): string;
}

const ansi = (open: number, close: number) => (s: string) => `\u001b[${open}m${s}\u001b[${close}m`;
const plain = (s: string) => s;

export function makeStyle(color: boolean): Style {
  if (!color) return { bold: plain, dim: plain, green: plain, red: plain, yellow: plain, cyan: plain, magenta: plain };
  return {
    bold: ansi(1, 22),
    dim: ansi(2, 22),
    green: ansi(32, 39),
    red: ansi(31, 39),
    yellow: ansi(33, 39),
    cyan: ansi(36, 39),
    magenta: ansi(35, 39),
  };
}

/** Colours only on a terminal, and never with NO_COLOR set (https://no-color.org). */
export function wantsColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return stream.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === '');
}

const WIDTH = 60;
const MESSAGE_WIDTH = 40;

export function heading(title: string, style: Style): string {
  const text = `── ${title} `;
  return style.bold(text + '─'.repeat(Math.max(3, WIDTH - text.length)));
}

function colourMessage(message: string, style: Style): string {
  if (message.startsWith('REFER')) return style.bold(style.yellow(message));
  if (message.startsWith('NOTIFY')) {
    const code = Number(/SIP\/2\.0 (\d+)/.exec(message)?.[1]);
    return style.cyan('NOTIFY') + (code >= 300 || code === 0 ? style.red(message.slice(6)) : message.slice(6));
  }
  if (/^[2]\d\d /.test(message)) return style.green(message);
  if (/^[3-6]\d\d /.test(message) || message === 'CANCEL') return style.red(message);
  if (message === 'BYE') return style.magenta(message);
  return message;
}

export function formatStep(step: Step, style: Style): string {
  if (step.kind === 'bridge') return ` ${style.magenta(`bridge ${step.bridge}`)}  ${step.text}`;
  const from = step.from.padEnd(5);
  const to = step.to.padEnd(8);
  const arrow = `${step.from === PBX ? style.dim(from) : style.bold(from)} ${style.dim('→')} ${step.to === PBX ? style.dim(to) : style.bold(to)}`;
  const note = step.note ? ` ${style.dim(step.note)}` : '';
  const message = colourMessage(step.message, style);
  const pad = ' '.repeat(Math.max(1, MESSAGE_WIDTH - step.message.length));
  return ` ${arrow} ${note ? message + pad + note.trimStart() : message}`;
}
