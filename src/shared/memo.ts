/**
 * One value per key object, made on first use and dropped with the key: state a service keeps per
 * store (caches), without a module-level singleton that two apps in one process would share.
 */
export function perKey<K extends object, T>(make: (key: K) => T): (key: K) => T {
  const made = new WeakMap<K, T>()
  return (key) => {
    let value = made.get(key)
    if (value === undefined) made.set(key, (value = make(key)))
    return value
  }
}
