/**
 * Sets `key` in a map used as a bounded memory: past `max` entries the oldest (the first
 * inserted, as a Map iterates) is dropped, so a stream of new keys never grows it without bound.
 */
export function rememberBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.set(key, value)
  if (map.size > max) map.delete(map.keys().next().value!)
}
