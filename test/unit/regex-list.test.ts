import { describe, expect, it } from 'vitest';
import { parseRegexList } from '../../src/regex-list.js';

describe('parseRegexList', () => {
  it('splits on top-level commas only', () => {
    const list = parseRegexList(' 1\\d{3} , ^9{1,3}$,[0-9,]+#,(a,b)c, x\\,y', 'TRANSFER_ALLOW');
    expect(list.map((r) => r.source)).toEqual([
      '^(?:1\\d{3})$',
      '^(?:^9{1,3}$)$',
      '^(?:[0-9,]+#)$',
      '^(?:(a,b)c)$',
      '^(?:x\\,y)$',
    ]);
    expect(list[1]!.test('999')).toBe(true);
    expect(list[2]!.test('1,2#')).toBe(true);
    expect(list[3]!.test('a,bc')).toBe(true);
    expect(list[4]!.test('x,y')).toBe(true);
  });

  it('treats brackets inside a class as literal', () => {
    const list = parseRegexList('[(]1,2', 'TRANSFER_ALLOW');
    expect(list.map((r) => r.source)).toEqual(['^(?:[(]1)$', '^(?:2)$']);
  });

  it('anchors every pattern', () => {
    const [ext] = parseRegexList('1\\d{3}', 'TRANSFER_ALLOW');
    expect(ext!.test('1234')).toBe(true);
    expect(ext!.test('91234')).toBe(false);
    expect(ext!.test('12345')).toBe(false);
    // An alternation stays inside the anchors.
    const [alt] = parseRegexList('100|200', 'TRANSFER_ALLOW');
    expect(alt!.test('100')).toBe(true);
    expect(alt!.test('1000')).toBe(false);
    expect(alt!.test('9200')).toBe(false);
  });

  it('names the variable and the pattern of an invalid expression', () => {
    expect(() => parseRegexList('1\\d{3},(', 'TRANSFER_DENY')).toThrow(/^TRANSFER_DENY: invalid regular expression "\(": .+/);
  });

  it('rejects a pattern that would close the anchoring group', () => {
    expect(() => parseRegexList('1)|(.*', 'TRANSFER_ALLOW')).toThrow(/^TRANSFER_ALLOW: invalid regular expression "1\)\|\(\.\*"/);
  });

  it('gives an empty list for absent or empty text', () => {
    expect(parseRegexList(undefined, 'TRANSFER_ALLOW')).toEqual([]);
    expect(parseRegexList('', 'TRANSFER_ALLOW')).toEqual([]);
    expect(parseRegexList(' , ,', 'TRANSFER_ALLOW')).toEqual([]);
  });
});
