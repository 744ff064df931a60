// A transfer's ladder diagram, from the steps the service recorded (the
// same steps as GET /transfers and the log lines). Two parts: ladderRows()
// decides what is drawn (pure), renderLadder() draws it as SVG. All text is
// set with textContent: caller names and destinations come from phones.

const SVG = 'http://www.w3.org/2000/svg';

/** The lifelines, left to right. */
export const LANES = ['transferer', 'pbx', 'transferees', 'target'];
const LANE_TITLES = {
  transferer: 'Transferer (phone)',
  pbx: 'Asterisk + ari-transfer',
  transferees: 'Transferee',
  target: 'Target',
};

const SIPFRAG_REASONS = { 100: 'Trying', 180: 'Ringing', 183: 'Session Progress', 200: 'OK', 503: 'Service Unavailable', 603: 'Decline' };

/** Colours by step level; drawn as attributes, so that the page's look does not depend on the style sheet. */
export const COLOURS = { info: '#1d4ed8', warn: '#b45309', error: '#b91c1c' };

/**
 * What the ladder shows: arrows { kind: 'arrow', from, to, label, step, level, dashed }
 * and notes on a lifeline { kind: 'note', lane, label, step, level }, in the
 * order the steps were recorded.
 */
export function ladderRows(transfer) {
  const laneOf = channelLanes(transfer);
  const rows = [];
  const arrow = (s, from, to, label, extra = {}) => rows.push({ kind: 'arrow', from, to, label, step: s.step, level: s.level, dashed: false, ...extra });
  const note = (s, label) => rows.push({ kind: 'note', lane: 'pbx', label, step: s.step, level: s.level });
  for (const s of transfer.steps) {
    const f = s.fields ?? {};
    switch (s.step) {
      case 'requested':
        arrow(s, 'transferer', 'pbx', transfer.destination ? `REFER to ${transfer.destination}` : 'REFER');
        arrow(s, 'pbx', 'transferer', '202 Accepted');
        break;
      case 'progress':
        if (f.sent === false) arrow(s, 'pbx', 'transferer', `NOTIFY not sent (${String(f.state ?? '')})`, { dashed: true });
        else arrow(s, 'pbx', 'transferer', `NOTIFY ${sipfragText(f.sipfrag)}`);
        break;
      case 'dial':
        if (s.level === 'error') note(s, s.message);
        else arrow(s, 'pbx', 'target', `dial ${String(f.dialString ?? f.destination ?? '')}`.trim());
        break;
      case 'hold':
        if (s.level !== 'info') arrow(s, 'pbx', 'transferees', 'ringback failed');
        else arrow(s, 'pbx', 'transferees', f.mode === 'moh' ? 'music on hold' : 'ringback');
        break;
      case 'unhold':
        arrow(s, 'pbx', 'transferees', 'stop ringback failed');
        break;
      case 'stop-moh':
        arrow(s, 'pbx', 'transferees', 'stop music on hold');
        break;
      case 'move':
        arrow(s, 'pbx', 'transferees', s.level === 'info' ? "move to the target's bridge" : 'move failed');
        break;
      case 'undo-move':
        arrow(s, 'pbx', 'transferees', s.level === 'info' ? 'move back' : 'move back failed');
        break;
      case 'join':
        if (f.channelId === undefined) note(s, s.message);
        else arrow(s, 'pbx', 'target', s.level === 'info' ? "join the transferee's bridge" : 'join failed');
        break;
      case 'hangup':
        if (typeof f.channelId !== 'string') note(s, s.message);
        else arrow(s, 'pbx', laneOf(f.channelId), s.level === 'info' ? 'hang up (BYE)' : 'hang-up failed');
        break;
      case 'remove':
        arrow(s, 'pbx', 'transferer', s.level === 'error' ? 'take out failed' : 'replaced leg taken out');
        break;
      case 'destroy-bridge':
        note(s, s.level === 'error' ? 'bridge not deleted' : 'bridge deleted');
        break;
      case 'policy':
        note(s, f.allowed === false ? `policy: refused (${String(f.rule ?? '')})` : 'policy: allowed');
        break;
      case 'plan':
        note(s, 'plan: ' + s.message.replace(/ planned.*$/, '').replace(/ transfer$/, ''));
        break;
      default:
        note(s, `${s.step}: ${s.message}`);
    }
  }
  return rows;
}

/** Which lifeline each channel the steps name belongs to. */
function channelLanes(transfer) {
  const lanes = new Map([[transfer.sourceChannelId, 'transferer']]);
  const set = (id, lane) => typeof id === 'string' && !lanes.has(id) && lanes.set(id, lane);
  for (const s of transfer.steps) {
    const f = s.fields ?? {};
    set(f.replacedChannelId, 'transferer');
    for (const id of [].concat(f.transferees ?? [])) set(id, 'transferees');
    for (const id of [].concat(f.targets ?? [])) set(id, 'target');
    set(f.legChannelId, 'target');
    if (['hold', 'move', 'undo-move', 'stop-moh'].includes(s.step)) set(f.channelId, 'transferees');
    if (s.step === 'join') set(f.channelId, 'target');
  }
  // The transferer phone's other legs (its consultation call) are the ones left.
  return (id) => lanes.get(id) ?? 'transferer';
}

function sipfragText(code) {
  const reason = SIPFRAG_REASONS[code];
  return reason ? `${code} ${reason}` : String(code);
}

// Geometry, in SVG units (= CSS pixels).
const MARGIN = 90;
const LANE_GAP = 180;
const HEADER = 40;
const ROW = 26;

export function laneX(lane) {
  return MARGIN + LANES.indexOf(lane) * LANE_GAP;
}

/** The ladder of `rows` as an <svg class="ladder">; each row a <g class="row"> with data-step and data-label. */
export function renderLadder(doc, rows) {
  const width = MARGIN * 2 + LANE_GAP * (LANES.length - 1);
  const height = HEADER + rows.length * ROW + 10;
  const svg = el(doc, 'svg', { class: 'ladder', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
  svg.append(el(doc, 'rect', { x: 0, y: 0, width, height, fill: '#ffffff' }));
  for (const lane of LANES) {
    const x = laneX(lane);
    const title = el(doc, 'text', { class: 'lane-title', x, y: 16, 'text-anchor': 'middle', fill: '#111827', 'font-size': 12, 'font-weight': 'bold' });
    title.textContent = LANE_TITLES[lane];
    svg.append(title, el(doc, 'line', { class: 'lifeline', x1: x, y1: 24, x2: x, y2: height - 4, stroke: '#9ca3af', 'stroke-width': 1, 'stroke-dasharray': '4 3' }));
  }
  rows.forEach((row, i) => svg.append(row.kind === 'arrow' ? arrowRow(doc, row, HEADER + i * ROW + 16) : noteRow(doc, row, HEADER + i * ROW + 16)));
  return svg;
}

function arrowRow(doc, row, y) {
  const colour = COLOURS[row.level] ?? COLOURS.info;
  const x1 = laneX(row.from);
  const x2 = laneX(row.to);
  const dir = Math.sign(x2 - x1);
  const g = el(doc, 'g', { class: `row arrow level-${row.level}`, 'data-step': row.step, 'data-label': row.label, 'data-from': row.from, 'data-to': row.to });
  const line = el(doc, 'line', { class: 'arrow-line', x1, y1: y, x2: x2 - dir * 8, y2: y, stroke: colour, 'stroke-width': 2 });
  if (row.dashed) line.setAttribute('stroke-dasharray', '6 4');
  const head = el(doc, 'polygon', { class: 'arrow-head', points: `${x2},${y} ${x2 - dir * 9},${y - 5} ${x2 - dir * 9},${y + 5}`, fill: colour });
  const label = el(doc, 'text', { class: 'arrow-label', x: (x1 + x2) / 2, y: y - 5, 'text-anchor': 'middle', fill: '#111827', 'font-size': 11 });
  label.textContent = row.label;
  g.append(line, head, label);
  return g;
}

function noteRow(doc, row, y) {
  const colour = COLOURS[row.level] ?? COLOURS.info;
  const x = laneX(row.lane);
  const w = Math.min(LANE_GAP * 2 - 20, 14 + row.label.length * 6);
  const g = el(doc, 'g', { class: `row note level-${row.level}`, 'data-step': row.step, 'data-label': row.label });
  const box = el(doc, 'rect', { class: 'note-box', x: x - w / 2, y: y - 12, width: w, height: 18, rx: 3, fill: '#f3f4f6', stroke: colour, 'stroke-width': 1 });
  const label = el(doc, 'text', { class: 'note-label', x, y: y + 1, 'text-anchor': 'middle', fill: '#111827', 'font-size': 11 });
  label.textContent = row.label;
  g.append(box, label);
  return g;
}

function el(doc, name, attributes) {
  const node = doc.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, String(v));
  return node;
}
