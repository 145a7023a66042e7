/**
 * A label value safe to expose: well-formed Unicode (lone surrogates replaced), bounded length.
 * Quotes, backslashes and newlines are escaped by the exposition format itself.
 */
export function safeLabelValue(v: string, max = 256): string {
  const wellFormed = v.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
  if (wellFormed.length <= max) return wellFormed;
  // Cut on a code point boundary: never leave the high half of a surrogate pair behind.
  let end = max - 1;
  const last = wellFormed.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return wellFormed.slice(0, end) + '\u2026';
}
