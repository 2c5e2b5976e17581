// Long expected messages in the tests are regular expressions written in pieces, one a line, so that each
// piece stays a regex literal (escapes as the reader expects them) and the whole keeps under 120 columns.

/** The pieces' patterns one after the other, as one regular expression with `flags`. */
export function pattern(pieces: readonly RegExp[], flags = ''): RegExp {
  return new RegExp(pieces.map((p) => p.source).join(''), flags);
}
