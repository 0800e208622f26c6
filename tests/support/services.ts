/** Helpers for tests that call the services directly, without HTTP. */
import { DomainError } from '../../src/shared/errors'
import type { DomainEvent } from '../../src/shared/events'
import type { User } from '../../src/users/model'
import * as users from '../../src/users/service'
import type { TestApp } from './app'
import { uniqueName } from './http'

/** A stored user, straight through the users service (no password hashing: these tests never log in). */
export const user = (t: TestApp, fullName: string | null = null, username = uniqueName()): Promise<User> =>
  users.create(t.deps.store, { username, fullName, passwordHash: 'not-a-real-hash' })

/** The error `fn` throws (or rejects with); fails the test when it throws nothing or something that is not a DomainError. */
export async function thrown(fn: () => unknown): Promise<DomainError> {
  try {
    await fn()
  } catch (error) {
    if (error instanceof DomainError) return error
    throw error
  }
  throw new Error('expected a DomainError, nothing was thrown')
}

/** The DomainError `promise` rejects with; fails the test when it resolves or rejects with something else. */
export async function rejected(promise: Promise<unknown>): Promise<DomainError> {
  try {
    await promise
  } catch (error) {
    if (error instanceof DomainError) return error
    throw error
  }
  throw new Error('expected a DomainError, the promise resolved')
}

/** Whatever `promise` rejects with; fails the test when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected a rejection, it resolved')
}

/** Every event published on the bus from now on, in order (the array fills as they come). */
export function events(t: TestApp): DomainEvent[] {
  const seen: DomainEvent[] = []
  t.deps.bus.subscribe((e) => seen.push(e))
  return seen
}
