/**
 * UTF-8 stream framing: terminal output arrives in arbitrary chunks, and a multi-byte character may be
 * split across two of them. JSON mode must send whole characters, so the incomplete tail of a chunk is
 * held back and prepended to the next one.
 */

/** Length of the longest prefix of `bytes` that does not end inside a multi-byte character. */
export function completeUtf8Length(bytes: Uint8Array): number {
  const end = bytes.length;
  // A character is at most 4 bytes: look back at most 3 for the lead byte of the last one.
  for (let i = end - 1; i >= Math.max(0, end - 4); i--) {
    const byte = bytes[i]!;
    if ((byte & 0b1100_0000) === 0b1000_0000) continue; // continuation byte
    const need = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return end - i >= need ? end : i;
  }
  return end; // no lead byte nearby: invalid UTF-8, pass it on and let the decoder replace it
}

/**
 * Where the piece of `bytes` that starts at `start` ends: at most `max` bytes on, and not inside a
 * multi-byte character (unless no character starts in that span: invalid input is cut where it must be).
 */
export function utf8CutBefore(bytes: Uint8Array, start: number, max: number): number {
  const end = Math.min(bytes.length, start + max);
  if (end === bytes.length) return end;
  const cut = completeUtf8Length(bytes.subarray(start, end));
  return cut > 0 ? start + cut : end;
}
