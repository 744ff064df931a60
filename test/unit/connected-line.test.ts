import { describe, expect, it } from 'vitest';
import { callerIdFixes, connectedLineValue, decideConnectedLines, identityOf, type Party } from '../../src/transfer/connected-line.js';

// alice called in; carol's leg was dialled (1003) with alice's caller id, as the service dials.
const alice: Party = { channelId: 'alice', caller: { name: 'Alice', number: '1001' }, dialled: undefined };
const carolLeg: Party = { channelId: 'carol', caller: { name: 'Alice', number: '1001' }, dialled: '1003' };

describe('identityOf', () => {
  it('a channel that called in is its caller id; a leg we dialled is the number dialled, whatever its caller id says', () => {
    expect(identityOf(alice)).toEqual({ name: 'Alice', number: '1001' });
    expect(identityOf(carolLeg)).toEqual({ name: '', number: '1003' });
  });
});

describe('connectedLineValue', () => {
  it('"Name" <number>, or <number> without a name', () => {
    expect(connectedLineValue({ name: 'Carol', number: '1003' })).toBe('"Carol" <1003>');
    expect(connectedLineValue({ name: '', number: '1003' })).toBe('<1003>');
    expect(connectedLineValue({ name: '  ', number: '+4930123' })).toBe('<+4930123>');
  });

  it('names from phones: quotes and backslashes escaped (ast_callerid_parse unescapes them), commas and parentheses kept, control characters dropped', () => {
    expect(connectedLineValue({ name: 'Alice "Al" (Sales), Jr.', number: '1001' })).toBe('"Alice \\"Al\\" (Sales), Jr." <1001>');
    expect(connectedLineValue({ name: 'back\\slash', number: '1001' })).toBe('"back\\\\slash" <1001>');
    expect(connectedLineValue({ name: 'two\r\nlines\u0000', number: '1001' })).toBe('"twolines" <1001>');
    expect(connectedLineValue({ name: '<1999> x', number: '1001' })).toBe('"<1999> x" <1001>');
  });

  it('no value for a number Asterisk could not carry back unchanged, or none at all', () => {
    expect(connectedLineValue({ name: 'Carol', number: '' })).toBeUndefined();
    expect(connectedLineValue({ name: 'Carol', number: '10>03' })).toBeUndefined();
    expect(connectedLineValue({ name: 'Carol', number: '1003 <1004' })).toBeUndefined();
    expect(connectedLineValue({ name: '', number: 'x'.repeat(65) })).toBeUndefined();
  });
});

describe('decideConnectedLines', () => {
  it('each side is told the other: alice the number dialled for carol, carol alice\'s caller id', () => {
    expect(decideConnectedLines([alice], [carolLeg])).toEqual({
      sets: [
        { channelId: 'alice', value: '<1003>' },
        { channelId: 'carol', value: '"Alice" <1001>' },
      ],
      skipped: [],
    });
  });

  it('two dialled legs (alice was the callee): each is told the number dialled for the other', () => {
    const aliceLeg: Party = { channelId: 'alice', caller: { name: 'Bob', number: '1002' }, dialled: '1001' };
    expect(decideConnectedLines([aliceLeg], [carolLeg]).sets).toEqual([
      { channelId: 'alice', value: '<1003>' },
      { channelId: 'carol', value: '<1001>' },
    ]);
  });

  it('not a one-to-one call: nobody is told anything', () => {
    const dave: Party = { channelId: 'dave', caller: { name: 'Dave', number: '1004' }, dialled: undefined };
    expect(decideConnectedLines([alice, dave], [carolLeg])).toEqual({ sets: [], skipped: ['not a two-party call (2 with 1)'] });
    expect(decideConnectedLines([alice], [])).toEqual({ sets: [], skipped: ['not a two-party call (1 with 0)'] });
  });

  it('never tells a phone it talks to itself, nor a number it cannot show', () => {
    const aliceAgain: Party = { channelId: 'leg', caller: { name: 'Alice', number: '1001' }, dialled: '1001' };
    expect(decideConnectedLines([alice], [aliceAgain]).sets).toEqual([]);
    const anonymous: Party = { channelId: 'anon', caller: { name: 'Anonymous', number: '' }, dialled: undefined };
    expect(decideConnectedLines([anonymous], [carolLeg])).toEqual({
      sets: [{ channelId: 'anon', value: '<1003>' }],
      skipped: ['carol: anon has no number to show'],
    });
  });
  it('nor that it talks to the transferer who just left (a leg another application dialled for his call carries his caller id)', () => {
    const carolByApp: Party = { channelId: 'carol', caller: { name: 'Bob', number: '1002' }, dialled: undefined };
    expect(decideConnectedLines([alice], [carolByApp], ['1002'])).toEqual({
      sets: [{ channelId: 'carol', value: '"Alice" <1001>' }],
      skipped: ["alice: the other party has the transferer's number"],
    });
  });
});

describe('callerIdFixes', () => {
  it('a dialled leg whose caller id is not its party gets the number dialled; channels that called in, and legs already right, are left alone', () => {
    const right: Party = { channelId: 'right', caller: { name: '', number: '1004' }, dialled: '1004' };
    expect(callerIdFixes([alice, carolLeg, right])).toEqual([{ channelId: 'carol', value: '<1003>' }]);
  });
});
