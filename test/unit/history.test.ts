// TransferHistory: what GET /transfers shows, with bounded memory.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TransferHistory } from '../../src/transfer/history.js';
import type { TransferStart, TransferStep, TransferSummary } from '../../src/transfer/observer.js';

function start(id: string, over: Partial<TransferStart> = {}): TransferStart {
  return { transferId: id, kind: 'blind', origin: 'refer', sourceChannelId: `src-${id}`, sourceCallId: `call-${id}@pbx`, destination: '1003', startedAt: '2025-01-01T00:00:00.000Z', ...over };
}

function step(id: string, name: string, fields: Record<string, unknown> = {}): TransferStep {
  return { transferId: id, at: '2025-01-01T00:00:00.100Z', step: name, level: 'info', message: name, fields };
}

function summary(id: string, over: Partial<TransferSummary> = {}): TransferSummary {
  return {
    transferId: id,
    kind: 'blind',
    sourceChannelId: `src-${id}`,
    destination: '1003',
    result: 'completed',
    reason: undefined,
    sipfrags: [100, 200],
    bridgeIds: ['b1'],
    durationMs: 42,
    ...over,
  };
}

describe('TransferHistory', () => {
  it('shows a transfer in flight with its steps and the sipfrags sent so far', () => {
    const h = new TransferHistory({ size: 10 });
    h.started(start('t1'));
    h.step(step('t1', 'requested', { destination: '1003' }));
    h.step(step('t1', 'progress', { state: 'channel_progress', sipfrag: 100 }));
    // Not sent (the transferer was gone): not something the phone heard.
    h.step(step('t1', 'progress', { state: 'channel_answered', sent: false }));
    h.step(step('t1', 'dial', { legChannelId: 'transfer-1' }));

    expect(h.finished()).toEqual([]);
    const [t] = h.inFlight();
    expect(t).toEqual({
      transferId: 't1',
      kind: 'blind',
      origin: 'refer',
      sourceChannelId: 'src-t1',
      sourceCallId: 'call-t1@pbx',
      destination: '1003',
      startedAt: '2025-01-01T00:00:00.000Z',
      sipfrags: [100],
      steps: [
        { at: '2025-01-01T00:00:00.100Z', step: 'requested', level: 'info', message: 'requested', fields: { destination: '1003' } },
        expect.objectContaining({ step: 'progress', fields: { state: 'channel_progress', sipfrag: 100 } }),
        expect.objectContaining({ step: 'progress', fields: { state: 'channel_answered', sent: false } }),
        expect.objectContaining({ step: 'dial' }),
      ],
      droppedSteps: 0,
    });
  });

  it('moves a finished transfer to the history with its summary and steps', () => {
    const h = new TransferHistory({ size: 10 });
    h.started(start('t1', { kind: 'attended', sourceCallId: undefined }));
    h.step(step('t1', 'progress', { sipfrag: 100 }));
    h.step(step('t1', 'progress', { sipfrag: 503 }));
    h.finished(summary('t1', { kind: 'attended', result: 'rejected', reason: 'unknown dialog', sipfrags: [100, 503] }));

    expect(h.inFlight()).toEqual([]);
    const [t] = h.finished();
    expect(t).toMatchObject({
      transferId: 't1',
      kind: 'attended',
      sourceCallId: null,
      result: 'rejected',
      reason: 'unknown dialog',
      sipfrags: [100, 503],
      bridgeIds: ['b1'],
      durationMs: 42,
      startedAt: '2025-01-01T00:00:00.000Z',
      droppedSteps: 0,
    });
    expect(t!.steps.map((s) => s.fields.sipfrag)).toEqual([100, 503]);
    expect(Date.parse(t!.finishedAt)).not.toBeNaN();
    // Plain data: survives JSON as it is.
    expect(JSON.parse(JSON.stringify(h.finished()))).toEqual(h.finished());
  });

  it('keeps only the last N finished transfers, most recent first', () => {
    const h = new TransferHistory({ size: 3 });
    for (let i = 1; i <= 5; i++) {
      h.started(start(`t${i}`));
      h.finished(summary(`t${i}`));
    }
    expect(h.finished().map((t) => t.transferId)).toEqual(['t5', 't4', 't3']);
  });

  it('keeps the last N whatever the sequence (property)', () => {
    fc.assert(
      fc.property(fc.nat(20), fc.nat(60), (size, n) => {
        const h = new TransferHistory({ size });
        for (let i = 0; i < n; i++) {
          h.started(start(`t${i}`));
          h.finished(summary(`t${i}`));
        }
        const expected = Array.from({ length: Math.min(size, n) }, (_, k) => `t${n - 1 - k}`);
        expect(h.finished().map((t) => t.transferId)).toEqual(expected);
        expect(h.inFlight()).toEqual([]);
      }),
    );
  });

  it('with size 0 keeps no finished transfer, but still shows those in flight', () => {
    const h = new TransferHistory({ size: 0 });
    h.started(start('t1'));
    h.started(start('t2'));
    h.finished(summary('t1'));
    expect(h.finished()).toEqual([]);
    expect(h.inFlight().map((t) => t.transferId)).toEqual(['t2']);
  });

  it('bounds the steps kept per transfer, still counting the sipfrags', () => {
    const h = new TransferHistory({ size: 1, maxSteps: 5 });
    h.started(start('t1'));
    for (let i = 0; i < 1000; i++) h.step(step('t1', 'hold', { i }));
    h.step(step('t1', 'progress', { sipfrag: 100 }));
    const [t] = h.inFlight();
    expect(t!.steps).toHaveLength(5);
    expect(t!.droppedSteps).toBe(996);
    expect(t!.sipfrags).toEqual([100]);
    h.finished(summary('t1'));
    expect(h.finished()[0]).toMatchObject({ droppedSteps: 996 });
    expect(h.finished()[0]!.steps).toHaveLength(5);
  });

  it('ignores steps of transfers it never saw start', () => {
    const h = new TransferHistory({ size: 2 });
    h.step(step('ghost', 'progress', { sipfrag: 100 }));
    expect(h.inFlight()).toEqual([]);
    // A finish without a start is still recorded, from its summary.
    h.finished(summary('ghost'));
    expect(h.finished()[0]).toMatchObject({ transferId: 'ghost', steps: [], sourceCallId: null });
  });

  it('hands out copies: changing a view changes nothing kept', () => {
    const h = new TransferHistory({ size: 2 });
    h.started(start('t1'));
    h.step(step('t1', 'progress', { sipfrag: 100 }));
    const view = h.inFlight()[0]!;
    view.steps[0]!.fields.sipfrag = 999;
    view.sipfrags.push(7);
    expect(h.inFlight()[0]).toMatchObject({ sipfrags: [100], steps: [{ fields: { sipfrag: 100 } }] });
    h.finished(summary('t1'));
    h.finished()[0]!.sipfrags.push(1);
    expect(h.finished()[0]!.sipfrags).toEqual([100, 200]);
  });

  it('refuses a negative or fractional size', () => {
    expect(() => new TransferHistory({ size: -1 })).toThrow(RangeError);
    expect(() => new TransferHistory({ size: 1.5 })).toThrow(RangeError);
  });

  it('tells its subscribers each start, kept step and end, until they unsubscribe', () => {
    const h = new TransferHistory({ size: 10, maxSteps: 1 });
    const heard: unknown[] = [];
    const unsubscribe = h.subscribe((e) => heard.push(e.type === 'step' ? [e.type, e.transferId, e.step.step] : [e.type, e.transfer.transferId, e.transfer.steps.length]));
    h.started(start('t1'));
    h.step(step('t1', 'requested'));
    // Beyond maxSteps: counted, not kept, so not told either.
    h.step(step('t1', 'dial'));
    h.finished(summary('t1'));
    unsubscribe();
    h.started(start('t2'));
    expect(heard).toEqual([
      ['started', 't1', 0],
      ['step', 't1', 'requested'],
      ['finished', 't1', 1],
    ]);
  });

  it('tells subscribers of ends even when it keeps no finished transfer, and drops a subscriber that throws', () => {
    const h = new TransferHistory({ size: 0 });
    const ends: string[] = [];
    h.subscribe(() => {
      throw new Error('broken page');
    });
    h.subscribe((e) => e.type === 'finished' && ends.push(`${e.transfer.transferId}:${e.transfer.result}`));
    h.started(start('t1'));
    h.finished(summary('t1', { result: 'failed' }));
    h.started(start('t2'));
    h.finished(summary('t2'));
    expect(ends).toEqual(['t1:failed', 't2:completed']);
    expect(h.finished()).toEqual([]);
  });

  it('gives the latest finished transfers alone, most recent first', () => {
    const h = new TransferHistory({ size: 3 });
    for (const id of ['t1', 't2', 't3', 't4']) {
      h.started(start(id));
      h.finished(summary(id));
    }
    expect(h.latestFinished(2).map((t) => t.transferId)).toEqual(['t4', 't3']);
    expect(h.latestFinished(10).map((t) => t.transferId)).toEqual(['t4', 't3', 't2']);
    expect(h.latestFinished(0)).toEqual([]);
  });
});
