// Lists of regular expressions from one environment variable, such as
// TRANSFER_ALLOW=1\d{3},+49.* or TRANSFER_DENY=(900|0900)\d*,[0-9,]*#.
//
// Patterns are separated by commas outside {}, [] and (), so quantifiers
// (`9{1,3}`), classes (`[0-9,]`) and groups (`(a,b)`) keep theirs; `\,` is a
// literal comma too. Each pattern is trimmed; empty ones are skipped.
//
// Every pattern is ANCHORED: it must match the whole destination. `1\d{3}`
// means exactly a 4-digit extension starting with 1 (it matches '1234' but
// neither '91234' nor '12345'); write `1\d{3}.*` to mean "starts with".
// Matching is case-sensitive.

export function parseRegexList(text: string | undefined, variable: string): RegExp[] {
  if (!text) return [];
  return splitPatterns(text)
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
    .map((p) => compileAnchored(p, variable));
}

function compileAnchored(pattern: string, variable: string): RegExp {
  try {
    // Compiled alone first: a pattern such as `a)|(b` would otherwise close
    // the anchoring group early and match anything ending in b.
    new RegExp(pattern);
    return new RegExp(`^(?:${pattern})$`);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`${variable}: invalid regular expression "${pattern}": ${reason}`);
  }
}

// A small scanner, not a regex parser: it only needs to know whether a comma
// is at top level. Inside a class, brackets of other kinds are literal.
function splitPatterns(text: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let parens = 0;
  let braces = 0;
  let inClass = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') {
      i++; // the escaped character is literal, whatever it is
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    switch (c) {
      case '[':
        inClass = true;
        break;
      case '(':
        parens++;
        break;
      case ')':
        parens = Math.max(0, parens - 1);
        break;
      case '{':
        braces++;
        break;
      case '}':
        braces = Math.max(0, braces - 1);
        break;
      case ',':
        if (parens === 0 && braces === 0) {
          parts.push(text.slice(start, i));
          start = i + 1;
        }
        break;
    }
  }
  parts.push(text.slice(start));
  return parts;
}
