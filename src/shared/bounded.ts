/**
 * Sets `key` in a map used as a bounded memory: past `max` entries the one set least recently is
 * dropped (a key set again moves to the end, as a Map iterates in insertion order), so a stream of
 * new keys never grows it without bound, and what is in use stays.
 */
export function rememberBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key)
  map.set(key, value)
  if (map.size > max) map.delete(map.keys().next().value!)
}
