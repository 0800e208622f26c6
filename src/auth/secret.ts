import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Config } from '../config'
import type { Logger } from '../observability/logger'

const SECRET_FILE = 'jwt-secret'

const generate = () => Buffer.from(crypto.getRandomValues(new Uint8Array(48))).toString('base64url')

/**
 * JWT_SECRET when set. Otherwise a secret generated once and kept (mode 0600) in the data
 * directory, so tokens survive a restart; with an in-memory database it lives as long as the process.
 */
export function resolveJwtSecret(config: Config, logger: Logger): string {
  if (config.jwtSecret) return config.jwtSecret
  if (config.dataDir === null) {
    logger.warn('JWT_SECRET is not set and the database is in memory: using a random secret; tokens end with this process')
    return generate()
  }
  const path = join(config.dataDir, SECRET_FILE)
  if (existsSync(path)) {
    const secret = readFileSync(path, 'utf8').trim()
    if (secret.length < 32) throw new Error(`${path} holds a secret shorter than 32 characters; delete it or set JWT_SECRET`)
    logger.warn({ path }, 'JWT_SECRET is not set: using the secret generated earlier in the data directory')
    return secret
  }
  mkdirSync(config.dataDir, { recursive: true })
  const secret = generate()
  writeFileSync(path, secret + '\n', { mode: 0o600, flag: 'wx' })
  logger.warn({ path }, 'JWT_SECRET is not set: generated a secret and stored it in the data directory; set JWT_SECRET in production')
  return secret
}
