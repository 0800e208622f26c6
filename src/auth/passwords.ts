// OWASP's baseline for argon2id (m=19 MiB, t=2, p=1): ~50 ms here, and a third of the memory of
// Bun's default, which matters when many logins arrive at once. Stored hashes carry their own
// parameters, so raising these later still verifies old hashes.
const OPTIONS = { algorithm: 'argon2id', memoryCost: 19_456, timeCost: 2 } as const

export const hashPassword = (password: string): Promise<string> => Bun.password.hash(password, OPTIONS)

/** False for a wrong password and for a stored hash that is malformed (verify would throw). */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  try {
    return await Bun.password.verify(password, hash)
  } catch {
    return false
  }
}

let dummyHash: Promise<string> | undefined

/** Verifying against this for unknown users makes their login cost the same as a wrong password. */
export const dummyPasswordHash = (): Promise<string> => (dummyHash ??= hashPassword(`dummy-${crypto.randomUUID()}`))
