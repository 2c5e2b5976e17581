// The scanner behind scripts/tidy.mjs: a tokenizer for TypeScript/JavaScript and C/C++ that knows strings,
// template literals (with nested `${}`), regex literals and comments, and two finders on its tokens:
// function bodies (for the function-length rule) and catches that ignore their error (for the empty-catch
// rule). It is not a parser: it matches brackets and reads the few tokens around them, which is enough for
// the code squall writes. test/tidy.test.ts feeds it the tricky cases.

/**
 * @typedef {{ kind: 'id' | 'num' | 'str' | 'tpl' | 'regex' | 'comment' | 'punct', text: string,
 *   line: number, endLine: number }} Token
 *   `line` is where the token starts and `endLine` where it ends (1-based); they differ for multi-line strings,
 *   templates and block comments. A template literal with substitutions gives one 'tpl' token per literal
 *   piece (up to and including the `${` or the closing backquote) with the substitutions' tokens between.
 */

/** Keywords after which a `/` starts a regex literal rather than dividing. */
const REGEX_AFTER_WORDS = new Set([
  'return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield',
  'await',
]);

const ID_START = /[A-Za-z_$#\u00c0-\uffff]/;
const ID_PART = /[\w$\u00c0-\uffff]/;

/**
 * Splits source text into tokens. `lang` is 'js' (TypeScript and JavaScript) or 'c' (C and C++: no
 * templates or regex literals; single quotes are character literals).
 * @param {string} text
 * @param {'js' | 'c'} lang
 * @returns {Token[]}
 */
export function tokenize(text, lang) {
  const tokens = [];
  // One entry per open `{` (false) or `${` (true): a `}` that closes a `${` resumes the template around it.
  const braces = [];
  let at = 0;
  let line = 1;
  const push = (kind, start, startLine) => {
    tokens.push({ kind, text: text.slice(start, at), line: startLine, endLine: line });
  };
  const advance = (to) => {
    for (; at < to && at < text.length; at++) if (text[at] === '\n') line++;
  };
  /** Reads template characters from `at` up to and including the closing backquote or a `${`. */
  const templatePiece = (start, startLine) => {
    while (at < text.length) {
      const c = text[at];
      if (c === '\\') { advance(at + 2); continue; }
      if (c === '`') { advance(at + 1); break; }
      if (c === '$' && text[at + 1] === '{') { advance(at + 2); braces.push(true); break; }
      advance(at + 1);
    }
    push('tpl', start, startLine);
  };
  while (at < text.length) {
    const c = text[at];
    const start = at;
    const startLine = line;
    if (c === '\n' || c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') { advance(at + 1); continue; }
    if (c === '/' && text[at + 1] === '/') {
      const end = text.indexOf('\n', at);
      advance(end < 0 ? text.length : end);
      push('comment', start, startLine);
      continue;
    }
    if (c === '/' && text[at + 1] === '*') {
      const end = text.indexOf('*/', at + 2);
      advance(end < 0 ? text.length : end + 2);
      push('comment', start, startLine);
      continue;
    }
    if (c === '"' || (c === "'" && (lang === 'js' || !/\w/.test(text[at - 1] ?? '')))) {
      advance(at + 1);
      while (at < text.length && text[at] !== c && text[at] !== '\n') advance(at + (text[at] === '\\' ? 2 : 1));
      advance(at + 1);
      push('str', start, startLine);
      continue;
    }
    if (lang === 'js' && c === '`') {
      advance(at + 1);
      templatePiece(start, startLine);
      continue;
    }
    if (lang === 'js' && c === '}' && braces.length > 0 && braces[braces.length - 1] === true) {
      braces.pop();
      advance(at + 1);
      templatePiece(start, startLine);
      continue;
    }
    if (lang === 'js' && c === '/' && regexMayStart(tokens)) {
      advance(at + 1);
      let inClass = false;
      while (at < text.length && text[at] !== '\n') {
        const r = text[at];
        if (r === '\\') { advance(at + 2); continue; }
        if (r === '[') inClass = true;
        else if (r === ']') inClass = false;
        else if (r === '/' && !inClass) break;
        advance(at + 1);
      }
      advance(at + 1);
      while (at < text.length && /[a-z]/i.test(text[at])) advance(at + 1);
      push('regex', start, startLine);
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(text[at + 1] ?? ''))) {
      // Digits, letters (hex, exponents, suffixes), `_` and `'` separators, and a sign right after an exponent.
      advance(at + 1);
      while (at < text.length) {
        const d = text[at];
        if (/[\w.]/.test(d) || (lang === 'c' && d === "'" && /\w/.test(text[at + 1] ?? ''))) advance(at + 1);
        else if ((d === '+' || d === '-') && /[eEpP]/.test(text[at - 1]) && !/^0x/i.test(text.slice(start, at))) {
          advance(at + 1);
        } else break;
      }
      push('num', start, startLine);
      continue;
    }
    if (ID_START.test(c)) {
      advance(at + 1);
      while (at < text.length && ID_PART.test(text[at])) advance(at + 1);
      push('id', start, startLine);
      continue;
    }
    if (c === '=' && text[at + 1] === '>') advance(at + 2);
    else if (c === '?' && text[at + 1] === '.' && !/[0-9]/.test(text[at + 2] ?? '')) advance(at + 2);
    else if (c === ':' && text[at + 1] === ':') advance(at + 2);
    else {
      if (c === '{') braces.push(false);
      else if (c === '}') braces.pop();
      advance(at + 1);
    }
    push('punct', start, startLine);
  }
  return tokens;
}

/** Whether a `/` after these tokens starts a regex literal: it does where an expression may begin. */
function regexMayStart(tokens) {
  for (let i = tokens.length - 1; i >= 0; i--) {
    const t = tokens[i];
    if (t.kind === 'comment') continue;
    if (t.kind === 'id') return REGEX_AFTER_WORDS.has(t.text);
    if (t.kind === 'num' || t.kind === 'str' || t.kind === 'regex') return false;
    // A template piece ending in `${` is followed by an expression; one ending in a backquote is a value.
    if (t.kind === 'tpl') return t.text.endsWith('${');
    return !(t.text === ')' || t.text === ']' || t.text === '}');
  }
  return true;
}

/**
 * For every bracket token, the index of its partner (in the same array), or -1 when it has none. Only
 * 'punct' tokens take part; template substitutions are balanced by the tokenizer.
 * @param {Token[]} tokens
 */
export function matchBrackets(tokens) {
  const partner = new Array(tokens.length).fill(-1);
  const open = [];
  const pairs = { ')': '(', ']': '[', '}': '{' };
  tokens.forEach((t, i) => {
    if (t.kind !== 'punct') return;
    if (t.text === '(' || t.text === '[' || t.text === '{') open.push(i);
    else if (t.text in pairs) {
      // Pop to the nearest opener of the same kind, so one stray bracket does not unbalance the rest.
      for (let k = open.length - 1; k >= 0; k--) {
        if (tokens[open[k]].text !== pairs[t.text]) continue;
        partner[i] = open[k];
        partner[open[k]] = i;
        open.length = k;
        break;
      }
    }
  });
  return partner;
}

/** Words that take a parenthesised head and a block, and so are not functions. */
const CONTROL = new Set(['if', 'for', 'while', 'switch', 'catch', 'with']);
/** Words that start a statement and never appear in a type: a return-type scan that meets one went too far. */
const STATEMENT_WORDS = new Set([
  'if', 'return', 'const', 'let', 'var', 'for', 'while', 'do', 'switch', 'throw', 'try',
]);
/** Tokens after which a `{` in a type annotation opens an object type, not a body. */
const TYPE_BRACE_AFTER = new Set([':', '|', '&', '<', ',', '(', '[', '=>', 'keyof', 'typeof', '?']);

/**
 * The functions of a TypeScript text whose body is a block: declarations, expressions, methods, accessors,
 * constructors and arrow functions. `line` is the line of the parameter list's `(` (of the parameter for
 * `x => {`), `endLine` that of the body's closing `}`.
 * @param {string} text
 * @returns {{ name: string, line: number, endLine: number }[]}
 */
export function findFunctions(text) {
  const tokens = tokenize(text, 'js').filter((t) => t.kind !== 'comment');
  const partner = matchBrackets(tokens);
  const found = [];
  const add = (name, line, body) => {
    if (body < 0 || tokens[body]?.text !== '{' || tokens[body].kind !== 'punct' || partner[body] < 0) return;
    found.push({ name, line, endLine: tokens[partner[body]].line });
  };
  tokens.forEach((t, i) => {
    if (t.kind !== 'punct') return;
    if (t.text === '=>' && tokens[i - 1]?.kind === 'id') {
      add(nameBefore(tokens, partner, i - 1), tokens[i - 1].line, i + 1);
      return;
    }
    if (t.text !== ')' || partner[i] < 0) return;
    const open = partner[i];
    const before = tokens[open - 1];
    if (before?.kind === 'id' && CONTROL.has(before.text)) return;
    if (before?.text === 'await' && tokens[open - 2]?.text === 'for') return;
    const next = tokens[i + 1];
    if (next?.text === '=>') { add(nameBefore(tokens, partner, open), tokens[open].line, i + 2); return; }
    if (next?.text === '{') { add(nameBefore(tokens, partner, open), tokens[open].line, i + 1); return; }
    if (next?.text !== ':') return;
    // A return type: an arrow's ends at its `=>`; a method's or function's at its body's `{`.
    const named = before !== undefined && before.text !== 'async' && before.text !== 'return'
      && (before.kind === 'id' || before.kind === 'str' || ['>', ']', '*'].includes(before.text));
    const end = endOfReturnType(tokens, partner, i + 2, named);
    if (end >= 0) add(nameBefore(tokens, partner, open), tokens[open].line, tokens[end].text === '=>' ? end + 1 : end);
  });
  return found;
}

/**
 * From the first token of a return type, the index of the token that ends it: the body's `{` for a named
 * function, the `=>` for an arrow; -1 when there is none (a signature without a body, or not a type at all).
 */
function endOfReturnType(tokens, partner, from, named) {
  let angles = 0;
  for (let j = from; j < tokens.length; j++) {
    const t = tokens[j];
    if (t.kind !== 'punct' && t.kind !== 'id') continue;
    // Generic arguments are not brackets to the tokenizer; count them here so their commas stay inside.
    if (t.text === '<') { angles++; continue; }
    if (t.text === '>' && angles > 0) { angles--; continue; }
    if (t.text === '=>' && !named && angles === 0) return j;
    if (t.text === '{' && t.kind === 'punct') {
      const prev = tokens[j - 1];
      if (j > from && !TYPE_BRACE_AFTER.has(prev.text)) return named ? j : -1;
      if (partner[j] < 0) return -1;
      j = partner[j];
      continue;
    }
    if (t.text === '(' || t.text === '[') {
      if (partner[j] < 0) return -1;
      j = partner[j];
      continue;
    }
    if (t.text === ',' && angles > 0) continue;
    if (t.kind === 'id' && STATEMENT_WORDS.has(t.text)) return -1;
    if ([';', ')', ']', '}', '=', ','].includes(t.text)) return -1;
  }
  return -1;
}

/** Keywords that can stand before a function expression's parameters without naming it. */
const NOT_NAMES = new Set([
  'return', 'function', 'new', 'await', 'yield', 'typeof', 'void', 'else', 'default', 'in', 'of',
]);

/** A readable name for the function whose parameter list (or single parameter) starts at `at`. */
function nameBefore(tokens, partner, at) {
  let k = at - 1;
  if (tokens[k]?.text === '>') {
    // Skip generic parameters back to their `<`.
    let depth = 0;
    for (; k >= 0; k--) {
      if (tokens[k].text === '>') depth++;
      else if (tokens[k].text === '<' && --depth === 0) break;
    }
    k--;
  }
  if (tokens[k]?.text === 'async') k--;
  if (tokens[k]?.text === 'function') k -= tokens[k - 1]?.text === 'async' ? 2 : 1;
  const t = tokens[k];
  if (t?.kind === 'id' && !NOT_NAMES.has(t.text)) return t.text;
  if (t?.text === '=' || t?.text === ':') {
    const owner = tokens[k - 1];
    if (owner?.kind === 'id' || owner?.kind === 'str') return owner.text;
  }
  if (t?.text === ']' && partner[k] >= 0) return tokens.slice(partner[k], k + 1).map((x) => x.text).join('');
  return '(anonymous)';
}

/**
 * The catches of a text that ignore their error without saying why: an empty `catch { }` or
 * `catch (e) { }` block, and a `.catch(...)` whose handler does nothing (`() => {}`, `() => undefined`,
 * `(e) => void 0`, `function () {}`). A comment inside the block or the handler, or on the line of the
 * `catch` or of the block's or the call's end, says why and so passes.
 * @param {string} text
 * @param {'js' | 'c'} lang
 * @returns {{ line: number, form: string }[]}
 */
export function findSilentCatches(text, lang) {
  const all = tokenize(text, lang);
  const commentLines = new Set();
  for (const t of all) if (t.kind === 'comment') for (let l = t.line; l <= t.endLine; l++) commentLines.add(l);
  const tokens = all.filter((t) => t.kind !== 'comment');
  const partner = matchBrackets(tokens);
  // Whether any comment lies between two code tokens or shares a line with either.
  const explained = (from, to) => {
    for (let l = tokens[from].line; l <= tokens[to].endLine; l++) if (commentLines.has(l)) return true;
    return false;
  };
  const found = [];
  tokens.forEach((t, i) => {
    if (t.kind !== 'id' || t.text !== 'catch') return;
    const prev = tokens[i - 1]?.text;
    if (prev === '.' || prev === '?.') {
      const open = i + 1;
      if (tokens[open]?.text !== '(' || partner[open] < 0) return;
      if (!doesNothing(tokens, partner, open + 1, partner[open])) return;
      if (!explained(i, partner[open])) found.push({ line: t.line, form: '.catch() handler that does nothing' });
      return;
    }
    let body = i + 1;
    if (tokens[body]?.text === '(' && partner[body] >= 0) body = partner[body] + 1;
    if (tokens[body]?.text !== '{' || partner[body] !== body + 1) return;
    if (!explained(i, body + 1)) found.push({ line: t.line, form: 'empty catch block' });
  });
  return found;
}

/** Whether tokens [from, to) are exactly a handler that does nothing with its argument. */
function doesNothing(tokens, partner, from, to) {
  let k = from;
  if (tokens[k]?.text === 'async') k++;
  if (tokens[k]?.text === 'function') {
    k++;
    if (tokens[k]?.kind === 'id') k++;
    if (tokens[k]?.text !== '(' || partner[k] < 0) return false;
    k = partner[k] + 1;
    return tokens[k]?.text === '{' && partner[k] === k + 1 && k + 2 === to;
  }
  if (tokens[k]?.text === '(' && partner[k] >= 0) k = partner[k] + 1;
  else if (tokens[k]?.kind === 'id') k++;
  else return false;
  if (tokens[k]?.text !== '=>') return false;
  k++;
  const rest = tokens.slice(k, to).map((t) => t.text).join(' ');
  return rest === '{ }' || rest === 'undefined' || rest === 'void 0';
}
