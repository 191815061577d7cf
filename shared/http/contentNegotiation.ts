// Which representation a caller asked for with its Accept header: JSON unless it names another one the route
// offers (text/csv, text/html), alone or among others, and not with q=0.

/** Whether `accept` asks for `mediaType` (case-insensitive, parameters ignored, `q=0` refuses it). */
export function accepts(accept: string | null, mediaType: string): boolean {
  const wanted = mediaType.toLowerCase();
  return (accept ?? '')
    .split(',')
    .some(
      (part) =>
        part.trim().toLowerCase().split(';')[0]?.trim() === wanted && !/;\s*q=0(\.0*)?\s*(;|$)/i.test(part),
    );
}
