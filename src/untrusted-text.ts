// Untrusted values (destinations, webhook answers) shown in log lines and
// refusal details: at most PREVIEW_CHARS long, and in a detail JSON-quoted,
// so that control characters cannot forge log lines or SIP headers
// downstream.
const PREVIEW_CHARS = 40;

export function preview(value: string, max = PREVIEW_CHARS): string {
  const cut = truncate(value, max);
  return cut === value ? JSON.stringify(value) : `${JSON.stringify(cut)}…`;
}

export function truncate(value: string, max = PREVIEW_CHARS): string {
  const chars = Array.from(value);
  return chars.length > max ? chars.slice(0, max).join('') : value;
}
