import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * For tests that need a disk of their own (a small tmpfs that fills up, a volume mounted
 * read-only) or a server that file modes apply to. Mounting needs root with CAP_SYS_ADMIN: the
 * suite runs as root here and in CI. Where mounting is not permitted (a normal user, a container
 * without the capability), those tests are skipped with a warning, except under CI=true, where
 * they run and fail.
 */

const run = (command: string[]) => Bun.spawnSync(command, { stdout: 'pipe', stderr: 'pipe' })

function mountPermitted(): boolean {
  if (!Bun.which('mount') || process.getuid?.() !== 0) return false
  const dir = mkdtempSync(join(tmpdir(), 'pneumatic-mount-check-'))
  try {
    if (!run(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]).success) return false
    run(['umount', dir])
    return true
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export const skipMountTests = !mountPermitted() && process.env.CI !== 'true'
if (skipMountTests) {
  console.warn('[mount tests] SKIPPED: this process may not mount a tmpfs (it needs root with CAP_SYS_ADMIN). With CI=true these tests fail instead.')
}

export type Tmpfs = {
  dir: string
  /** Writes a file until the file system refuses more (ENOSPC); its path. */
  fill(): string
  /** Free bytes, as an unprivileged process sees them. */
  free(): number
  remountReadOnly(): void
  [Symbol.dispose](): void
}

/** A tmpfs of `bytes` on a fresh directory, unmounted and removed on dispose. */
export function mountTmpfs(bytes: number): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), 'pneumatic-tmpfs-'))
  const mounted = run(['mount', '-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', dir])
  if (!mounted.success) {
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`mount -t tmpfs failed: ${mounted.stderr.toString().trim()}`)
  }
  return {
    dir,
    fill() {
      const path = join(dir, 'filler')
      const fd = openSync(path, 'w')
      try {
        for (const size of [1 << 16, 1 << 12, 1]) {
          const chunk = Buffer.alloc(size, 0x2e)
          try {
            for (;;) writeSync(fd, chunk)
          } catch (error) {
            if ((error as { code?: string }).code !== 'ENOSPC') throw error
          }
        }
      } finally {
        closeSync(fd)
      }
      return path
    },
    free() {
      const { bavail, bsize } = statfsSync(dir)
      return bavail * bsize
    },
    remountReadOnly() {
      const remounted = run(['mount', '-o', 'remount,ro', dir])
      if (!remounted.success) throw new Error(`remount read-only failed: ${remounted.stderr.toString().trim()}`)
    },
    [Symbol.dispose]() {
      const unmounted = run(['umount', dir])
      if (!unmounted.success) run(['umount', '-l', dir])
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/**
 * A command prefix that runs a process without root's power to ignore file modes (the
 * CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH capabilities), so a file's mode applies to it as to
 * any user; it still reads the repository and bun wherever they are. Nothing is needed when this
 * process is not root: modes apply already.
 */
export function obeyingFileModes(): string[] {
  if (process.getuid?.() !== 0) return []
  if (!Bun.which('setpriv')) throw new Error('setpriv (util-linux) is needed to run a process without CAP_DAC_OVERRIDE')
  return ['setpriv', '--bounding-set=-dac_override,-dac_read_search']
}
