// The live page: what GET /live streams (see src/http/routes/live.ts),
// kept in `state` and drawn into the page. Every piece of text from the
// network goes in with textContent, never as markup.
import { ladderRows, renderLadder } from './ladder.js';

const MAX_FINISHED = 50;
const state = { inFlight: new Map(), finished: [] };
const status = document.getElementById('status');

const source = new EventSource('live');
source.addEventListener('open', () => setStatus('live', 'live'));
// EventSource retries by itself, except after an answer other than 200 (a 401 when the token changed).
source.addEventListener('error', () =>
  source.readyState === EventSource.CLOSED ? setStatus('closed', 'disconnected: reload the page (with ?token= if the token changed)') : setStatus('reconnecting', 'reconnecting…'),
);
on('snapshot', ({ transfers, calls }) => {
  state.inFlight = new Map(transfers.inFlight.map((t) => [t.transferId, t]));
  state.finished = transfers.finished;
  renderCalls(calls);
  renderInFlight();
  renderFinished();
});
on('calls', renderCalls);
on('transfer-started', (t) => {
  state.inFlight.set(t.transferId, t);
  renderInFlight();
});
on('transfer-step', ({ transferId, step }) => {
  const t = state.inFlight.get(transferId);
  if (!t) return;
  t.steps.push(step);
  if (step.step === 'progress' && step.fields.sent !== false && typeof step.fields.sipfrag === 'number') t.sipfrags.push(step.fields.sipfrag);
  renderInFlight();
});
on('transfer-finished', (t) => {
  state.inFlight.delete(t.transferId);
  state.finished = [t, ...state.finished].slice(0, MAX_FINISHED);
  renderInFlight();
  renderFinished();
});

function on(event, handle) {
  source.addEventListener(event, (e) => handle(JSON.parse(e.data)));
}

function setStatus(value, text) {
  status.dataset.state = value;
  status.textContent = text;
}

function renderCalls(calls) {
  document.getElementById('calls-totals').textContent = `(${plural(calls.totals.channels, 'channel')}, ${plural(calls.totals.bridges, 'bridge')})`;
  const rows = calls.calls.map((c) => callRow(c.bridgeName || c.bridgeId, c.parties, c.bridgeId));
  if (calls.alone.length) rows.push(callRow('(in no bridge)', calls.alone, ''));
  document.querySelector('#calls-table tbody').replaceChildren(...rows);
  const more = document.getElementById('calls-more');
  const hidden = calls.notShown.calls + calls.notShown.alone;
  more.hidden = hidden === 0;
  more.textContent = `and ${plural(calls.notShown.calls, 'more call')}, ${plural(calls.notShown.alone, 'more channel')} in no bridge`;
}

function plural(n, noun) {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function callRow(title, parties, bridgeId) {
  const tr = document.createElement('tr');
  tr.className = 'call';
  tr.dataset.bridgeId = bridgeId;
  const name = document.createElement('td');
  name.textContent = title;
  const cell = document.createElement('td');
  for (const p of parties) {
    const span = document.createElement('span');
    span.className = 'party';
    span.dataset.channelId = p.id;
    // The caller id Asterisk holds (for a leg placed to a phone: the number shown to it), then the channel.
    const who = p.caller.name || p.caller.number ? `${p.caller.name} <${p.caller.number}>` : '';
    const st = document.createElement('span');
    st.className = 'state';
    st.textContent = ` ${p.name} · ${p.state}${p.hangingUp ? ', hanging up' : ''}`;
    span.append(who, st);
    cell.append(span);
  }
  tr.append(name, cell);
  return tr;
}

// Newest first in both lists.
function renderInFlight() {
  fill('in-flight', [...state.inFlight.values()].reverse(), 'in flight');
}

function renderFinished() {
  fill('finished', state.finished, null);
}

function fill(sectionId, transfers, inFlightLabel) {
  const section = document.getElementById(sectionId);
  section.querySelector('.count').textContent = `(${transfers.length})`;
  section.querySelector('.empty').hidden = transfers.length > 0;
  section.querySelector('.transfers').replaceChildren(...transfers.map((t) => card(t, inFlightLabel ?? t.result)));
}

function card(t, result) {
  const article = document.createElement('article');
  article.className = 'transfer';
  article.dataset.transferId = t.transferId;
  article.dataset.kind = t.kind;
  article.dataset.result = result;
  const summary = document.createElement('div');
  summary.className = 'summary';
  const items = [
    ['kind', `${t.kind} transfer${t.destination ? ` to ${t.destination}` : ''}`],
    ['result', result],
    ['sipfrags', `NOTIFY ${t.sipfrags.join(' → ') || '—'}`],
    ['started', new Date(t.startedAt).toLocaleTimeString()],
  ];
  if (t.durationMs !== undefined) items.push(['duration', `${Math.round(t.durationMs)} ms`]);
  if (t.reason) items.push(['reason', t.reason]);
  for (const [cls, text] of items) {
    const span = document.createElement('span');
    span.className = cls;
    if (cls === 'result') span.dataset.result = result;
    span.textContent = text;
    summary.append(span);
  }
  article.append(summary, renderLadder(document, ladderRows(t)));
  if (t.droppedSteps) {
    const p = document.createElement('p');
    p.textContent = `${t.droppedSteps} later steps not kept`;
    article.append(p);
  }
  return article;
}
